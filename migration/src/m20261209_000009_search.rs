//! Full-text search of messages (`searchMessages`), by each database's own engine: on Postgres
//! a `tsvector` column generated from the body, under a GIN index; on SQLite an FTS5 index
//! kept by triggers. Both index the body of every message that is not deleted, split into
//! words by the `simple` rules (Postgres) or `unicode61` (SQLite): words in any case, not
//! stemmed, accents kept, so that a search finds the same messages on either database and in
//! any language. Existing messages are indexed here.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Postgres: generated, so it follows every insert, edit and deletion by itself (a deleted
/// message's is NULL: in no search). Stored, so ranking reads it instead of parsing each body
/// again; adding it rewrites the table once, which indexes what is there.
const PG_UP: &[&str] = &[
    "ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS \
     (CASE WHEN deleted_at IS NULL THEN to_tsvector('simple', body) END) STORED",
    "CREATE INDEX ix_messages_search ON messages USING GIN (search_vector)",
];

const PG_DOWN: &[&str] = &[
    "DROP INDEX ix_messages_search",
    "ALTER TABLE messages DROP COLUMN search_vector",
];

/// SQLite: an external-content FTS5 table, which holds only the index and reads bodies from
/// `messages` (for ranking), so bodies are not stored twice.
///
/// FTS5 keys its rows by an integer. `messages` has none of its own (its key is a UUID), and
/// its implicit rowid is not a key to keep: SQLite may renumber the rowids of such a table on
/// VACUUM, which would leave the index pointing at other messages. So each message gets a
/// `search_key`, an ordinary column that nothing renumbers, assigned on insert (the largest
/// one plus one, found through its unique index).
///
/// The triggers index a message's body when it is inserted, swap the old words for the new
/// when it is edited, and drop them when it is deleted (`deleted_at` set, or the row removed,
/// as when its room is deleted): FTS5 must be told exactly what it indexed to remove it, and
/// that is the old row.
const SQLITE_UP: &[&str] = &[
    "ALTER TABLE messages ADD COLUMN search_key integer",
    "UPDATE messages SET search_key = rowid",
    "CREATE UNIQUE INDEX uq_messages_search_key ON messages (search_key)",
    "CREATE VIRTUAL TABLE message_search USING fts5(body, content = 'messages', \
     content_rowid = 'search_key', tokenize = 'unicode61 remove_diacritics 0')",
    "INSERT INTO message_search (rowid, body) \
     SELECT search_key, body FROM messages WHERE deleted_at IS NULL",
    "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN \
         UPDATE messages SET search_key = (SELECT coalesce(max(search_key), 0) + 1 FROM messages) \
         WHERE rowid = new.rowid; \
         INSERT INTO message_search (rowid, body) \
         SELECT search_key, body FROM messages WHERE rowid = new.rowid AND deleted_at IS NULL; \
     END",
    "CREATE TRIGGER messages_search_update AFTER UPDATE OF body, deleted_at ON messages BEGIN \
         INSERT INTO message_search (message_search, rowid, body) \
         SELECT 'delete', old.search_key, old.body WHERE old.deleted_at IS NULL; \
         INSERT INTO message_search (rowid, body) \
         SELECT new.search_key, new.body WHERE new.deleted_at IS NULL; \
     END",
    "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN \
         INSERT INTO message_search (message_search, rowid, body) \
         SELECT 'delete', old.search_key, old.body WHERE old.deleted_at IS NULL; \
     END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER messages_search_delete",
    "DROP TRIGGER messages_search_update",
    "DROP TRIGGER messages_search_insert",
    "DROP TABLE message_search",
    "DROP INDEX uq_messages_search_key",
    "ALTER TABLE messages DROP COLUMN search_key",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, PG_UP, SQLITE_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, PG_DOWN, SQLITE_DOWN).await
    }
}

async fn run(manager: &SchemaManager<'_>, postgres: &[&str], sqlite: &[&str]) -> Result<(), DbErr> {
    let statements = match manager.get_database_backend() {
        sea_orm::DbBackend::Postgres => postgres,
        sea_orm::DbBackend::Sqlite => sqlite,
        backend => {
            return Err(DbErr::Migration(format!(
                "message search is not built for {backend:?}"
            )));
        }
    };
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}
