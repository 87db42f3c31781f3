//! Business rules as plain async functions and services over a `DatabaseConnection`; they know
//! nothing of GraphQL or HTTP, so they are usable from the CLI as well.
pub mod auth;
pub mod chat;
pub mod rate_limit;
pub mod user;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use crate::error::AppResult;

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
    let mut items = query.limit(limit + 1).all(db).await?;
    let has_next = items.len() as u64 > limit;
    items.truncate(limit as usize);
    Ok(Window {
        items,
        has_previous: after.is_some(),
        has_next,
    })
}
