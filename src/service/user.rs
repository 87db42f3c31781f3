//! Looking up and listing users, and the `promote` admin command.
use std::{collections::HashMap, sync::Arc, time::Instant};

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, Func},
};
use uuid::Uuid;

use crate::{
    entity::user::{self, Role},
    error::{AppError, AppResult},
};

pub async fn find(db: &DatabaseConnection, id: Uuid) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// Users in sign-up order (ids are UUIDv7, so id order is creation order), after `after`.
pub async fn list(
    db: &DatabaseConnection,
    after: Option<Uuid>,
    limit: u64,
) -> AppResult<Vec<user::Model>> {
    let mut query = user::Entity::find().order_by_asc(user::Column::Id);
    if let Some(after) = after {
        query = query.filter(user::Column::Id.gt(after));
    }
    Ok(query.limit(limit).all(db).await?)
}

/// Makes `username` (any case) an ADMIN. Takes effect on the user's next token.
pub async fn promote(db: &DatabaseConnection, username: &str) -> AppResult<user::Model> {
    let found = user::Entity::find()
        .filter(Func::lower(Expr::col(user::Column::Username)).eq(username.to_lowercase()))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    user::Entity::update_many()
        .col_expr(user::Column::Role, Expr::value(Role::Admin))
        .filter(user::Column::Id.eq(found.id))
        .exec(db)
        .await?;
    Ok(user::Model {
        role: Role::Admin,
        ..found
    })
}

/// Users by id, kept for a short while. Messages name their author, and a message fanned out
/// to a thousand subscribers must not cost a thousand reads (nor one per notification); `me`,
/// the most frequent query of all, must not cost one per request either. Usernames and
/// emails never change; a promotion shows here within the TTL (and in tokens from the next
/// refresh).
pub struct UserCache {
    db: DatabaseConnection,
    ttl: std::time::Duration,
    entries: std::sync::Mutex<HashMap<Uuid, (Arc<user::Model>, Instant)>>,
}

/// Entries kept before the cache starts over; bounds memory whatever the traffic.
const USER_CACHE_MAX: usize = 100_000;

impl UserCache {
    pub fn new(db: DatabaseConnection, ttl: std::time::Duration) -> Self {
        Self {
            db,
            ttl,
            entries: Default::default(),
        }
    }

    pub async fn get(&self, id: Uuid) -> AppResult<Option<Arc<user::Model>>> {
        if let Some(user) = self.cached(id) {
            return Ok(Some(user));
        }
        let Some(user) = find(&self.db, id).await? else {
            return Ok(None);
        };
        let user = Arc::new(user);
        self.put(user.clone());
        Ok(Some(user))
    }

    pub fn put(&self, user: Arc<user::Model>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= USER_CACHE_MAX {
            entries.clear();
        }
        entries.insert(user.id, (user, Instant::now() + self.ttl));
    }

    fn cached(&self, id: Uuid) -> Option<Arc<user::Model>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&id)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(user, _)| user.clone())
    }
}
