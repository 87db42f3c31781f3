//! Looking up, finding, listing and promoting users (`promote` is an admin command of the
//! CLI).
use std::{collections::HashMap, sync::Arc, time::Instant};

use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, ExprTrait, Order, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, Func, LikeExpr},
};
use uuid::Uuid;

use crate::{
    broker::UserCache,
    config::RateLimits,
    domain::{Username, check_length},
    entity::user::{self, Role},
    error::{AppError, AppResult},
    service::{Window, after_id, rate_limit::RateLimit},
};

/// Users: looked up by id through a short-lived cache, listed, and promoted.
///
/// Messages name their author, and a message fanned out to a thousand subscribers must not
/// cost a thousand reads (nor one per notification); `me`, the most frequent query of all,
/// must not cost one per request either. A change to a user's name or address reaches every
/// instance's cache as an event (`Event::UserChanged`); a promotion (a CLI command) shows
/// within the TTL, and in tokens from the next refresh.
pub struct Users {
    db: DatabaseConnection,
    entries: std::sync::Mutex<HashMap<Uuid, (Arc<user::Model>, Instant)>>,
    /// Searches per user: each is a scan of the usernames with this prefix, and a quick way
    /// to list every account if unbounded.
    search_per_user: RateLimit<Uuid>,
}

/// The most users one search returns.
pub const MAX_FOUND: u64 = 20;

/// How long a user row is reused from memory (`me`, authors of fanned-out messages).
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Entries kept before the cache starts over; bounds memory whatever the traffic.
const USER_CACHE_MAX: usize = 100_000;

impl Users {
    pub fn new(db: DatabaseConnection, limits: &RateLimits) -> Self {
        Self {
            db,
            entries: Default::default(),
            search_per_user: RateLimit::per_minute("search_user", limits.search_per_user),
        }
    }

    /// The user named `username` (in any case), unless deleted.
    pub async fn by_username(&self, username: &str) -> AppResult<Option<user::Model>> {
        if username.len() > Username::MAX {
            return Ok(None);
        }
        Ok(user::Entity::find()
            .filter(Func::lower(Expr::col(user::Column::Username)).eq(username.to_lowercase()))
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?)
    }

    /// Users whose username starts with `prefix` (in any case), in username order, at most
    /// `limit` (1 to `MAX_FOUND`); deleted accounts are not found.
    pub async fn search(
        &self,
        viewer: Uuid,
        prefix: &str,
        limit: u64,
    ) -> AppResult<Vec<user::Model>> {
        if !(1..=MAX_FOUND).contains(&limit) {
            return Err(AppError::bad_input(
                "first",
                format!("first must be between 1 and {MAX_FOUND}"),
            ));
        }
        // Only what a username may hold: no pattern characters but `_`, which is escaped.
        check_length("prefix", "prefix", prefix, 1..=Username::MAX)?;
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(AppError::bad_input(
                "prefix",
                "prefix may contain only letters, digits and _",
            ));
        }
        self.search_per_user.check(&viewer)?;
        let pattern = format!("{}%", prefix.to_lowercase().replace('_', "\\_"));
        let lowered = Func::lower(Expr::col(user::Column::Username));
        Ok(user::Entity::find()
            .filter(Expr::expr(lowered.clone()).like(LikeExpr::new(pattern).escape('\\')))
            .filter(user::Column::DeletedAt.is_null())
            .order_by(Expr::expr(lowered), Order::Asc)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Users in sign-up order, after `after`.
    pub async fn list(&self, after: Option<Uuid>, limit: u64) -> AppResult<Window<user::Model>> {
        after_id(
            &self.db,
            user::Entity::find(),
            user::Column::Id,
            after,
            limit,
        )
        .await
    }

    /// Makes `username` (any case) an ADMIN. Takes effect on the user's next token.
    pub async fn promote(&self, username: &str) -> AppResult<user::Model> {
        let found = user::Entity::find()
            .filter(Func::lower(Expr::col(user::Column::Username)).eq(username.to_lowercase()))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        user::Entity::update_many()
            .col_expr(user::Column::Role, Expr::value(Role::Admin))
            .filter(user::Column::Id.eq(found.id))
            .exec(&self.db)
            .await?;
        Ok(user::Model {
            role: Role::Admin,
            ..found
        })
    }

    pub async fn get(&self, id: Uuid) -> AppResult<Option<Arc<user::Model>>> {
        Ok(self.fetch(id).await?)
    }

    /// The user as the database has it now (and so the cache, from now on).
    pub async fn fresh(&self, id: Uuid) -> AppResult<Option<Arc<user::Model>>> {
        UserCache::forget(self, id);
        self.get(id).await
    }

    async fn fetch(&self, id: Uuid) -> Result<Option<Arc<user::Model>>, DbErr> {
        if let Some(user) = self.cached(id) {
            return Ok(Some(user));
        }
        let Some(user) = user::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        let user = Arc::new(user);
        self.put(user.clone());
        Ok(Some(user))
    }

    fn put(&self, user: Arc<user::Model>) {
        let mut entries = self.entries();
        if entries.len() >= USER_CACHE_MAX {
            entries.clear();
        }
        entries.insert(user.id, (user, Instant::now() + CACHE_TTL));
    }

    fn cached(&self, id: Uuid) -> Option<Arc<user::Model>> {
        self.entries()
            .get(&id)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(user, _)| user.clone())
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Arc<user::Model>, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl UserCache for Users {
    async fn author(&self, id: Uuid) -> Result<Option<Arc<user::Model>>, DbErr> {
        self.fetch(id).await
    }

    fn forget(&self, id: Uuid) {
        self.entries().remove(&id);
    }

    fn forget_all(&self) {
        self.entries().clear();
    }
}
