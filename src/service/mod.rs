//! Business rules as plain async functions and services over a `DatabaseConnection`; they know
//! nothing of GraphQL or HTTP, so they are usable from the CLI as well.
pub mod auth;
pub mod chat;
pub mod rate_limit;
pub mod user;

use std::future::Future;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Select, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use uuid::Uuid;

use crate::error::AppResult;

/// Starts a transaction that will write. On SQLite it takes the write lock at once (`BEGIN
/// IMMEDIATE`): one that read first and wrote later would fail with SQLITE_BUSY whenever
/// another writer committed in between, where it should wait its turn. On Postgres the
/// transaction locks rows as it goes (`lock_exclusive` where a read decides a write).
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Runs a write to its end in a task of its own, whatever becomes of the request that asked
/// for it. A request is dropped when its client goes away, or when a WebSocket `complete`
/// follows a mutation: dropped between a commit and what follows it, a stored message would
/// reach no subscriber and a stored logout would leave the session's tokens working here.
pub async fn detached<T: Send + 'static>(
    write: impl Future<Output = AppResult<T>> + Send + 'static,
) -> AppResult<T> {
    tokio::spawn(write).await?
}

/// Which way a page of a list is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `first`/`after`: ascending from the cursor.
    Forward,
    /// `last`/`before`: the items just before the cursor.
    Backward,
}

/// One page of a list, in the list's order, and whether anything lies before or after it.
pub struct Window<T> {
    pub items: Vec<T>,
    pub has_previous: bool,
    pub has_next: bool,
}

/// The page of `query`'s rows that follows `after` in `id` order (ids are UUIDv7, so id order
/// is creation order): `limit` of them. One row more is read, to tell whether another page
/// follows without counting.
pub async fn after_id<E: EntityTrait>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    id: E::Column,
    after: Option<Uuid>,
    limit: u64,
) -> AppResult<Window<E::Model>> {
    let mut query = query.order_by_asc(id);
    if let Some(after) = after {
        query = query.filter(id.gt(after));
    }
    first_rows(db, query, after.is_some(), limit).await
}

/// The first `limit` rows of `query` (which is ordered and starts after a cursor, if
/// `after_cursor`). One row more is read, to tell whether another page follows.
pub async fn first_rows<E: EntityTrait>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    after_cursor: bool,
    limit: u64,
) -> AppResult<Window<E::Model>> {
    let mut items = query.limit(limit + 1).all(db).await?;
    let has_next = items.len() as u64 > limit;
    items.truncate(limit as usize);
    Ok(Window {
        items,
        has_previous: after_cursor,
        has_next,
    })
}
