//! `User`, `me` and the admin listing.
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    guard::{HasRole, SignedIn, viewer, viewer_opt},
    loaders,
    pagination::{Connection, Page, connection, cursor, page_cost},
    state,
};
use crate::{
    entity::user::{self, Role as StoredRole},
    error::{AppError, AppResult},
    service::chat::PresenceState,
};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::entity::user::Role")]
pub enum Role {
    User,
    Admin,
}

pub struct User {
    row: Arc<user::Model>,
    /// Shown to the user themself even before they hold a token (register, login).
    own: bool,
}

impl User {
    pub fn new(row: impl Into<Arc<user::Model>>) -> Self {
        Self {
            row: row.into(),
            own: false,
        }
    }

    /// The user the request just authenticated as.
    pub fn own(row: impl Into<Arc<user::Model>>) -> Self {
        Self {
            row: row.into(),
            own: true,
        }
    }

    /// Whether the viewer may see this user's address: they are the user, or an admin.
    fn private_visible(&self, ctx: &Context<'_>) -> bool {
        self.own
            || viewer_opt(ctx)
                .is_some_and(|v| v.user_id == self.row.id || v.role == StoredRole::Admin)
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    async fn username(&self) -> &str {
        &self.row.username
    }

    /// Visible to the user themself and to admins; null for everyone else.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        self.private_visible(ctx).then_some(self.row.email.as_str())
    }

    /// Whether the user proved they read mail at `email` (`verifyEmail`); null where `email`
    /// is.
    async fn email_verified(&self, ctx: &Context<'_>) -> Option<bool> {
        self.private_visible(ctx)
            .then_some(self.row.email_verified_at.is_some())
    }

    /// Whether logging in takes a code from an authenticator app; null where `email` is.
    async fn totp_enabled(&self, ctx: &Context<'_>) -> Option<bool> {
        self.private_visible(ctx)
            .then_some(self.row.totp_enabled_at.is_some())
    }

    async fn role(&self) -> Role {
        self.row.role.into()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// Whether they have a socket open (on any instance). Visible to the user themself, to
    /// admins, and to those who share a room with them; null for everyone else.
    async fn online(&self, ctx: &Context<'_>) -> AppResult<Option<bool>> {
        Ok(self.presence(ctx).await?.map(|p| p.online))
    }

    /// When they last came online or went offline, whichever was last; null if they never
    /// connected. Visible as `online` is.
    async fn last_seen_at(&self, ctx: &Context<'_>) -> AppResult<Option<DateTime<Utc>>> {
        Ok(self.presence(ctx).await?.and_then(|p| p.last_seen_at))
    }
}

impl User {
    /// The user's presence, if the viewer may see it.
    async fn presence(&self, ctx: &Context<'_>) -> AppResult<Option<PresenceState>> {
        let visible = match viewer_opt(ctx) {
            _ if self.own => true,
            None => false,
            Some(v) if v.user_id == self.row.id || v.role == StoredRole::Admin => true,
            Some(v) => loaders(ctx)?
                .sharing
                .load_one((v.user_id, self.row.id))
                .await?
                .is_some(),
        };
        if !visible {
            return Ok(None);
        }
        loaders(ctx)?.presence.load_one(self.row.id).await
    }
}

cursor!(UserCursor(Uuid), "user");

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The signed-in user.
    #[graphql(guard = "SignedIn")]
    async fn me(&self, ctx: &Context<'_>) -> AppResult<User> {
        let viewer = viewer(ctx)?;
        state(ctx)?
            .users
            .get(viewer.user_id)
            .await?
            .map(User::own)
            .ok_or(AppError::Unauthenticated("user no longer exists"))
    }

    /// The user with this username (in any case), or null if there is none.
    #[graphql(guard = "SignedIn")]
    async fn user(&self, ctx: &Context<'_>, username: String) -> AppResult<Option<User>> {
        Ok(state(ctx)?
            .users
            .by_username(&username)
            .await?
            .map(User::new))
    }

    /// Users whose username starts with `prefix` (1–32 letters, digits and `_`, in any case),
    /// in username order: `first` of them (at most 20). Emails are not shown to other users.
    #[graphql(
        guard = "SignedIn",
        complexity = "first.clamp(1, 20) as usize * child_complexity"
    )]
    async fn search_users(
        &self,
        ctx: &Context<'_>,
        prefix: String,
        #[graphql(default = 10)] first: i32,
    ) -> AppResult<Vec<User>> {
        let first = u64::try_from(first).unwrap_or(0);
        let found = state(ctx)?
            .users
            .search(viewer(ctx)?.user_id, &prefix, first)
            .await?;
        Ok(found.into_iter().map(User::new).collect())
    }

    /// Every user, in sign-up order. ADMIN only.
    #[graphql(
        guard = "HasRole(StoredRole::Admin)",
        complexity = "page_cost(first, None) * child_complexity"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<Connection<UserCursor, User>> {
        let page = Page::<UserCursor>::forward(first, after)?;
        let after = page.cursor.map(|c| c.0);
        let users = state(ctx)?.users.list(after, page.limit).await?;
        Ok(connection(users, |row| {
            (UserCursor(row.id), User::new(row))
        }))
    }
}
