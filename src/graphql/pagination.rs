//! Relay cursor pagination arguments: parsed once into a `Page`, with the API's limits
//! (default 50, at most 100, `first` and `last` not together).
use async_graphql::connection::{
    self as relay, CursorType, DefaultConnectionName, DefaultEdgeName, DisableNodesField,
    EmptyFields,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::{AppError, AppResult};
pub use crate::service::{Direction, Window};

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 100;

/// What a page costs in a document's complexity: its selection, once per item it can hold
/// (`rooms(first: 100) { messages(first: 100) { ... } }` costs ten thousand selections).
pub fn page_cost(first: Option<i32>, last: Option<i32>) -> usize {
    let size = first
        .or(last)
        .map_or(DEFAULT_PAGE_SIZE, |n| (n.max(1) as u64).min(MAX_PAGE_SIZE));
    size as usize
}

/// A Relay connection: `edges { cursor node }` and `pageInfo`.
pub type Connection<C, N> = relay::Connection<
    C,
    N,
    EmptyFields,
    EmptyFields,
    DefaultConnectionName,
    DefaultEdgeName,
    DisableNodesField,
>;

/// The connection of one page: each item becomes a `(cursor, node)` edge.
pub fn connection<T, C: CursorType + Send + Sync, N: async_graphql::OutputType>(
    window: Window<T>,
    edge: impl FnMut(T) -> (C, N),
) -> Connection<C, N> {
    let mut connection = Connection::new(window.has_previous, window.has_next);
    connection.edges.extend(
        window
            .items
            .into_iter()
            .map(edge)
            .map(|(cursor, node)| relay::Edge::new(cursor, node)),
    );
    connection
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<C> {
    pub direction: Direction,
    pub cursor: Option<C>,
    pub limit: u64,
}

impl<C: CursorType> Page<C> {
    /// `first`/`after` only.
    pub fn forward(first: Option<i32>, after: Option<String>) -> AppResult<Self> {
        Self::new(first, after, None, None)
    }

    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> AppResult<Self> {
        if first.is_some() && last.is_some() {
            return Err(AppError::bad_input(
                "last",
                "first and last cannot be used together",
            ));
        }
        if last.is_some() && after.is_some() {
            return Err(AppError::bad_input(
                "after",
                "use after with first, not with last",
            ));
        }
        if first.is_some() && before.is_some() {
            return Err(AppError::bad_input(
                "before",
                "use before with last, not with first",
            ));
        }
        let backward = last.is_some() || before.is_some();
        let (direction, size, size_field, cursor, cursor_field) = if backward {
            (Direction::Backward, last, "last", before, "before")
        } else {
            (Direction::Forward, first, "first", after, "after")
        };
        let limit = match size {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if n < 0 => {
                return Err(AppError::bad_input(
                    size_field,
                    format!("{size_field} must not be negative"),
                ));
            }
            Some(n) if n as u64 > MAX_PAGE_SIZE => {
                return Err(AppError::bad_input(
                    size_field,
                    format!("{size_field} must be at most {MAX_PAGE_SIZE}"),
                ));
            }
            Some(n) => n as u64,
        };
        let cursor = cursor
            .map(|s| C::decode_cursor(&s))
            .transpose()
            .map_err(|_| AppError::bad_input(cursor_field, "invalid cursor"))?;
        Ok(Self {
            direction,
            cursor,
            limit,
        })
    }
}

/// Declares a list's cursor type: a newtype over the key the list is ordered by, encoded as
/// `kind:key` (`cursor!(RoomCursor(Uuid), "room")`).
macro_rules! cursor {
    ($(#[$meta:meta])* $name:ident($key:ty), $kind:literal) => {
        $(#[$meta])*
        pub struct $name(pub $key);

        impl async_graphql::connection::CursorType for $name {
            type Error = $crate::graphql::pagination::InvalidCursor;

            fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
                $crate::graphql::pagination::decode_cursor($kind, s).map(Self)
            }

            fn encode_cursor(&self) -> String {
                $crate::graphql::pagination::encode_cursor($kind, &self.0)
            }
        }
    };
}
pub(crate) use cursor;

/// Cursors are opaque to clients: base64url of `kind:value`, so a cursor from one list is
/// refused by another instead of being silently misread.
pub fn encode_cursor(kind: &str, value: impl std::fmt::Display) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{value}"))
}

/// Longer than any cursor we hand out (`active:`, a time in microseconds and a UUID, in base64,
/// is 75): refused before it is decoded.
pub const MAX_CURSOR_BYTES: usize = 80;

pub fn decode_cursor<T: std::str::FromStr>(kind: &str, s: &str) -> Result<T, InvalidCursor> {
    if s.len() > MAX_CURSOR_BYTES {
        return Err(InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| InvalidCursor)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| InvalidCursor)?;
    let value = text
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or(InvalidCursor)?;
    value.parse().map_err(|_| InvalidCursor)
}

#[derive(Debug, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

#[cfg(test)]
mod tests {
    use super::*;

    cursor!(Seq(i64), "seq");

    #[test]
    fn cursors_round_trip_and_are_typed() {
        let c = Seq(42).encode_cursor();
        assert_eq!(Seq::decode_cursor(&c).unwrap().0, 42);
        assert!(decode_cursor::<i64>("user", &c).is_err());
        assert!(Seq::decode_cursor("not base64!").is_err());
        // A cursor of the right kind, padded past the limit.
        let long = encode_cursor("seq", format!("{}42", "0".repeat(MAX_CURSOR_BYTES)));
        assert!(decode_cursor::<i64>("seq", &long).is_err());
    }

    #[test]
    fn limits_and_directions() {
        let p = Page::<Seq>::new(None, None, None, None).unwrap();
        assert_eq!(
            (p.direction, p.limit),
            (Direction::Forward, DEFAULT_PAGE_SIZE)
        );
        let p = Page::<Seq>::new(None, None, Some(3), Some(Seq(9).encode_cursor())).unwrap();
        assert_eq!(
            (p.direction, p.limit, p.cursor.map(|c| c.0)),
            (Direction::Backward, 3, Some(9))
        );
        let field = |r: AppResult<Page<Seq>>| match r {
            Err(AppError::BadUserInput { field, .. }) => field,
            _ => panic!("expected BAD_USER_INPUT"),
        };
        assert_eq!(field(Page::new(Some(1), None, Some(1), None)), "last");
        assert_eq!(field(Page::new(Some(101), None, None, None)), "first");
        assert_eq!(field(Page::new(None, None, Some(-1), None)), "last");
        assert_eq!(
            field(Page::new(None, Some("zz".into()), None, None)),
            "after"
        );
    }
}
