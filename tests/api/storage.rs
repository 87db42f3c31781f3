//! What the database is asked to promise: an answered write survives a power failure (SQLite
//! syncs every commit to its log), and what runs in the background and after every reconnect
//! (re-reading revocations, catching up, checking membership, purging) is served by an index.
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};

use crate::{db_tests, helpers::*};

db_tests! {
    async fn background_queries_are_served_by_indexes(db) {
        let app = spawn_app(&db).await;
        let conn = Database::connect(app.db.url.as_str()).await.unwrap();
        let backend = conn.get_database_backend();
        let (time, id) = match backend {
            DbBackend::Postgres => ("now()", "'00000000-0000-0000-0000-000000000000'::uuid"),
            _ => ("'2026-01-01T00:00:00Z'", "'00000000-0000-0000-0000-000000000000'"),
        };
        let queries = [
            ("revocations to re-read", format!("SELECT id, revoked_at FROM sessions WHERE revoked_at > {time}")),
            ("sessions long revoked", format!("SELECT id FROM sessions WHERE revoked_at <= {time}")),
            ("a user's live sessions", format!("SELECT id FROM sessions WHERE user_id = {id} AND revoked_at IS NULL")),
            ("expired refresh tokens", format!("SELECT token_hash FROM refresh_tokens WHERE expires_at <= {time}")),
            ("a session's refresh tokens", format!("SELECT 1 FROM refresh_tokens WHERE session_id = {id}")),
            ("a room's messages from a seq", format!("SELECT id FROM messages WHERE room_id = {id} AND seq >= 5 ORDER BY seq LIMIT 100")),
            ("a room's messages from an event seq", format!("SELECT id FROM messages WHERE room_id = {id} AND event_seq >= 5 ORDER BY event_seq LIMIT 100")),
            ("a room's other events from a seq", format!("SELECT kind FROM room_events WHERE room_id = {id} AND seq >= 5 ORDER BY seq LIMIT 100")),
            ("a page's reactions", format!("SELECT message_id, emoji, COUNT(user_id) FROM reactions WHERE message_id IN ({id}, {id}) GROUP BY message_id, emoji")),
            ("a member's unread mentions", format!("SELECT 1 FROM message_mentions mm JOIN messages m ON m.id = mm.message_id WHERE mm.user_id = {id} AND m.room_id = {id} AND m.seq > 5 AND m.deleted_at IS NULL LIMIT 1000")),
            ("a member's unread messages", format!("SELECT 1 FROM messages WHERE room_id = {id} AND seq > 5 AND author_id <> {id} AND deleted_at IS NULL LIMIT 1000")),
            ("a user's rooms", format!("SELECT m.room_id, r.last_event_seq FROM memberships m JOIN rooms r ON r.id = m.room_id WHERE m.user_id = {id}")),
            ("a membership", format!("SELECT joined_at FROM memberships WHERE room_id = {id} AND user_id = {id}")),
            ("a page of members", format!("SELECT user_id FROM memberships WHERE room_id = {id} AND user_id > {id} ORDER BY user_id LIMIT 51")),
            ("a ban", format!("SELECT 1 FROM room_bans WHERE room_id = {id} AND user_id = {id}")),
            ("a direct room", "SELECT id FROM rooms WHERE direct_key = 'a:b'".to_owned()),
        ];
        let mut queries = queries.to_vec();
        if backend == DbBackend::Postgres {
            // A SQLite server has few users: its LIKE ... ESCAPE scans them.
            queries.push(("users by a name's start", r"SELECT id FROM users WHERE lower(username) LIKE 'ab\_%' ESCAPE '' ORDER BY lower(username) LIMIT 20".to_owned()));
            queries.push(("messages by their words", "SELECT id FROM messages WHERE search_vector @@ plainto_tsquery('simple', 'word')".to_owned()));
        } else {
            // FTS5 finds words in an index of its own; what its triggers and the ranking read
            // of `messages` is by the search key.
            queries.push(("the newest search key", "SELECT max(search_key) FROM messages".to_owned()));
            queries.push(("a body by its search key", "SELECT body FROM messages WHERE search_key = 5".to_owned()));
        }
        for (what, sql) in queries {
            let txn = conn.begin().await.unwrap();
            let explain = match backend {
                // The tables are nearly empty, where a scan is cheapest: forbid it, to see
                // whether an index could serve the query at all.
                DbBackend::Postgres => {
                    txn.execute_unprepared("SET LOCAL enable_seqscan = off").await.unwrap();
                    format!("EXPLAIN {sql}")
                }
                _ => format!("EXPLAIN QUERY PLAN {sql}"),
            };
            let plan: Vec<String> = txn
                .query_all_raw(Statement::from_string(backend, explain))
                .await
                .unwrap()
                .iter()
                .map(|row| match backend {
                    DbBackend::Postgres => row.try_get_by_index::<String>(0).unwrap(),
                    _ => row.try_get::<String>("", "detail").unwrap(),
                })
                .collect();
            txn.rollback().await.unwrap();
            let scans = plan.iter().any(|line| line.contains("Seq Scan") || line.starts_with("SCAN"));
            assert!(!scans, "{what} scans a table: {plan:#?}");
        }
        conn.close().await.ok();
    }
}

#[tokio::test]
async fn sqlite_syncs_every_commit_to_its_log() {
    let app = spawn_app(&Backend::Sqlite).await;
    let config = test_config(&app.db);
    let pools = chat_server::db::connect(&config.database).await.unwrap();
    for conn in [pools.reads, pools.writes] {
        for (pragma, wanted) in [("journal_mode", "wal"), ("synchronous", "2")] {
            let row = conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    format!("PRAGMA {pragma}"),
                ))
                .await
                .unwrap()
                .unwrap();
            let value = row
                .try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
                .unwrap();
            assert_eq!(value, wanted, "PRAGMA {pragma}");
        }
    }
}
