//! Finding messages by their words (`searchMessages`), with each database's own full-text
//! search over the index that migration `m20261209_000009_search` keeps:
//!
//! - Postgres: `messages.search_vector @@ plainto_tsquery('simple', text)`, ranked by
//!   `ts_rank`. `plainto_tsquery` reads the text as plain words, every one of which must be
//!   there, and fails on nothing: punctuation and operators are not words.
//!   (`websearch_to_tsquery` would give `OR`, `-` and quotes a meaning that SQLite's side
//!   does not have.)
//! - SQLite: `message_search MATCH` the same words, each quoted as an FTS5 string (see
//!   `fts5_query`), ranked by how often they occur.
//!
//! A text without a word in it (`*`, `?!`) finds nothing on either, and is not looked for.
//!
//! Both split bodies into words without stemming or dropping any (`simple`, `unicode61`), so
//! the two find the same messages, in any language: whole words, in any case. (Nearly: their
//! rules differ at the edges; Postgres also keeps `foo-bar` and `a@b.c` whole, for one.)
//!
//! A page's cursor is the rank and id of its last result, and the next page is what ranks
//! below it; that needs a rank that depends on the message and the search alone. `ts_rank`
//! does. FTS5's `bm25` does not: it weighs each word by how rare it is among all messages and
//! each body against their average length, which every message sent anywhere changes, so
//! between two pages every rank would move and the cursor would point at another place (pages
//! would repeat or skip results). Hence the count of occurrences on SQLite, which FTS5 gives
//! through `highlight` (one marker after each). Equal ranks are common (a word once) and go
//! newest first, by id (UUIDv7, so time-ordered, and unique: every result has one place).
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, ExprTrait, Order,
    sea_query::{Condition, Expr, Func, Query, SelectStatement},
};
use uuid::Uuid;

use super::{Chat, ChatMessage, access::readable_rooms};
use crate::{
    domain::SearchText,
    entity::message,
    error::AppResult,
    service::{Window, auth::Viewer},
};

/// Where a page of results starts: after the result of this rank and message id.
pub type SearchAfter = (f32, Uuid);

/// A message found, and how well it matched: higher is better. Ranks compare within one
/// database only (each has its own measure).
pub struct Found {
    pub message: ChatMessage,
    pub rank: f32,
}

/// Which rooms a search looks in.
enum Scope {
    /// Every room the user may read.
    Readable(Uuid),
    /// This one (which the user may read).
    Room(Uuid),
}

impl Chat {
    /// The messages with every word of `text`, best match first, of the rooms `viewer` may
    /// read, or of `room_id` alone (NOT_FOUND and FORBIDDEN as for its history). Deleted
    /// messages are not found; edited ones are, by their words as they are now.
    pub async fn search_messages(
        &self,
        viewer: &Viewer,
        text: &SearchText,
        room_id: Option<Uuid>,
        after: Option<SearchAfter>,
        limit: u64,
    ) -> AppResult<Window<Found>> {
        self.message_search_per_user.check(&viewer.user_id)?;
        let scope = match room_id {
            Some(room_id) => Scope::Room(self.readable_room(viewer, room_id).await?.id),
            None => Scope::Readable(viewer.user_id),
        };
        if text.words().next().is_none() {
            return Ok(Window {
                items: Vec::new(),
                has_previous: after.is_some(),
                has_next: false,
            });
        }
        let query = ranked(
            self.db.get_database_backend(),
            text,
            scope,
            after,
            limit + 1,
        )?;
        let mut hits = self
            .db
            .query_all(&query)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("", "id")?, row.try_get("", "rank")?)))
            .collect::<Result<Vec<(Uuid, f32)>, DbErr>>()?;
        let has_next = hits.len() as u64 > limit;
        hits.truncate(limit as usize);
        let ids: Vec<Uuid> = hits.iter().map(|(id, _)| *id).collect();
        let mut messages = self.messages_by_id(&ids).await?;
        // Read just after the ranking: a message deleted in between is left out.
        let items = hits
            .into_iter()
            .filter_map(|(id, rank)| {
                let message = messages.remove(&id)?;
                message
                    .message
                    .deleted_at
                    .is_none()
                    .then_some(Found { message, rank })
            })
            .collect();
        Ok(Window {
            items,
            has_previous: after.is_some(),
            has_next,
        })
    }
}

/// The ids and ranks of the first `limit` results after `after`, best first.
fn ranked(
    backend: DbBackend,
    text: &SearchText,
    scope: Scope,
    after: Option<SearchAfter>,
    limit: u64,
) -> AppResult<SelectStatement> {
    let mut hits = Query::select();
    hits.column((message::Entity, message::Column::Id));
    match backend {
        DbBackend::Postgres => {
            // The query is parsed once, in FROM, rather than once per message ranked.
            let words = Func::cust("plainto_tsquery")
                .arg(Expr::cust("'simple'"))
                .arg(text.as_str());
            hits.expr_as(
                Expr::cust(r#"ts_rank("messages"."search_vector", "words")"#),
                Hits::Rank,
            )
            .from(message::Entity)
            .from_function(words, Hits::Words)
            .and_where(Expr::cust(r#""messages"."search_vector" @@ "words""#));
        }
        DbBackend::Sqlite => {
            // `highlight` gives the body with "#" after each occurrence of the words: the
            // occurrences are how much longer it is.
            hits.expr_as(
                Expr::cust(concat!(
                    r#"CAST(length(highlight("message_search", 0, '', '#'))"#,
                    r#" - length("messages"."body") AS REAL)"#,
                )),
                Hits::Rank,
            )
            .from(MessageSearch::Table)
            .inner_join(
                message::Entity,
                Expr::col((message::Entity, MessageSearch::SearchKey))
                    .equals((MessageSearch::Table, MessageSearch::Rowid)),
            )
            .and_where(Expr::cust_with_values(
                r#""message_search" MATCH ?"#,
                [fts5_query(text)],
            ));
        }
        other => return Err(anyhow::anyhow!("no message search on {other:?}").into()),
    }
    // The indexes hold no deleted message already; this says so where it is read.
    hits.and_where(Expr::col((message::Entity, message::Column::DeletedAt)).is_null());
    let room = Expr::col((message::Entity, message::Column::RoomId));
    hits.and_where(match scope {
        Scope::Room(room_id) => room.eq(room_id),
        Scope::Readable(user_id) => room.in_subquery(readable_rooms(user_id)),
    });

    let rank = || Expr::col((Hits::Table, Hits::Rank));
    let id = || Expr::col((Hits::Table, Hits::Id));
    let mut page = Query::select();
    page.column((Hits::Table, Hits::Id))
        .column((Hits::Table, Hits::Rank))
        .from_subquery(hits, Hits::Table);
    if let Some((after_rank, after_id)) = after {
        page.cond_where(
            Condition::any()
                .add(rank().lt(after_rank))
                .add(rank().eq(after_rank).and(id().lt(after_id))),
        );
    }
    page.order_by_expr(rank(), Order::Desc)
        .order_by_expr(id(), Order::Desc)
        .limit(limit);
    Ok(page)
}

/// `text` as an FTS5 query that finds every one of its words: each word an FTS5 string, in
/// double quotes (a word holds none; one would be doubled), which FTS5 reads as a word and
/// never as syntax. `"foo`, `AND OR NEAR(` and `*` are the words `foo`; `AND`, `OR` and
/// `NEAR`; and none. Splitting at whatever is not a letter or digit, as `plainto_tsquery`
/// does, makes `NEAR(foo,` two words rather than a phrase.
fn fts5_query(text: &SearchText) -> String {
    text.words()
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The ranked results, as a subquery; and on Postgres the parsed search, in FROM.
#[derive(sea_orm::DeriveIden)]
enum Hits {
    Table,
    Id,
    Rank,
    Words,
}

/// SQLite's FTS5 index of message bodies, and the column of `messages` its rows are keyed by.
#[derive(sea_orm::DeriveIden)]
enum MessageSearch {
    Table,
    Rowid,
    SearchKey,
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};

    use super::*;

    fn text(s: &str) -> SearchText {
        SearchText::parse("query", s).unwrap()
    }

    #[test]
    fn every_word_of_the_text_is_a_quoted_string() {
        assert_eq!(fts5_query(&text("deploy  friday")), r#""deploy" "friday""#);
        assert_eq!(fts5_query(&text(r#""foo"#)), r#""foo""#);
        assert_eq!(fts5_query(&text("AND OR NEAR(")), r#""AND" "OR" "NEAR""#);
        assert_eq!(fts5_query(&text("body:a*b \"c\"")), r#""body" "a" "b" "c""#);
        assert_eq!(fts5_query(&text("* ^ (")), "");
    }

    #[test]
    fn the_text_is_a_bound_value_on_both_databases() {
        let after = Some((0.5, Uuid::nil()));
        let hostile = text("'); DROP TABLE messages; --");
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let scope = Scope::Readable(Uuid::nil());
            let query = ranked(backend, &hostile, scope, after, 11).unwrap();
            let sql = match backend {
                DbBackend::Postgres => query.build(PostgresQueryBuilder).0,
                _ => query.build(SqliteQueryBuilder).0,
            };
            assert!(!sql.contains("DROP"), "{sql}");
            assert!(sql.contains("ORDER BY"), "{sql}");
        }
    }
}
