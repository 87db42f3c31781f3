//! Parse-once newtypes: a value of one of these types is valid by construction, so the layers
//! below never re-check. Each parser names the GraphQL input field it guards.
use std::ops::RangeInclusive;

mod chat;
mod email;
mod password;
mod username;

pub use chat::{ClientMsgId, Emoji, MessageBody, Note, RoomName, SearchText, mentioned_usernames};
pub use email::Email;
pub use password::Password;
pub use username::Username;

/// Why an input was refused, and which input field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

impl InvalidInput {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Refuses text whose length in characters (not bytes) is outside `range`, in the words every
/// length rule uses: "{what} must be 3–32 characters long".
pub(crate) fn check_length(
    field: &'static str,
    what: &str,
    s: &str,
    range: RangeInclusive<usize>,
) -> Result<(), InvalidInput> {
    if !range.contains(&s.chars().count()) {
        let (min, max) = range.into_inner();
        return Err(InvalidInput::new(
            field,
            format!("{what} must be {min}–{max} characters long"),
        ));
    }
    Ok(())
}

/// Refuses U+0000 in text that is stored or looked up: Postgres text cannot hold it (SQLite
/// can), so letting it through would be an internal error on one database and not the other.
pub fn reject_nul(field: &'static str, s: &str) -> Result<(), InvalidInput> {
    if s.contains('\0') {
        return Err(InvalidInput::new(
            field,
            format!("{field} must not contain NUL characters"),
        ));
    }
    Ok(())
}
