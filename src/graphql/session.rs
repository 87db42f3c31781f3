//! `sessions`, `revokeSession`, `logoutAll`: the viewer's sessions (devices) and ending them.
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{
    guard::{SignedIn, viewer},
    parse_id, state, to_int,
};
use crate::{entity::session, error::AppResult};

/// One of the viewer's sessions: a login, and the refreshes that kept it going.
pub struct Session {
    row: session::Model,
    /// Whether the request comes with this session's access token.
    current: bool,
}

#[Object]
impl Session {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// When the login that opened it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// Its last refresh (its login, before the first).
    async fn last_used_at(&self) -> DateTime<Utc> {
        self.row.last_used_at.unwrap_or(self.row.created_at)
    }

    /// The `User-Agent` of that login (at most 256 characters); null if it sent none.
    async fn user_agent(&self) -> Option<&str> {
        self.row.user_agent.as_deref()
    }

    /// The client's address at that login (behind a trusted proxy, what it forwarded).
    async fn client_address(&self) -> Option<&str> {
        self.row.client_ip.as_deref()
    }

    /// Whether this is the session of the token the request came with.
    async fn current(&self) -> bool {
        self.current
    }
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The viewer's live sessions, the most recently used first (at most 100).
    #[graphql(guard = "SignedIn")]
    async fn sessions(&self, ctx: &Context<'_>) -> AppResult<Vec<Session>> {
        let viewer = viewer(ctx)?;
        let sessions = state(ctx)?.auth.sessions(viewer).await?;
        Ok(sessions
            .into_iter()
            .map(|row| Session {
                current: row.id == viewer.session_id,
                row,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Ends one of the viewer's sessions (the current one too): its tokens stop working and
    /// its sockets close with 4403, on every instance. False if it had ended already;
    /// NOT_FOUND if the viewer has no such session.
    #[graphql(guard = "SignedIn")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> AppResult<bool> {
        let id = parse_id("id", &id)?;
        state(ctx)?.auth.revoke_session(viewer(ctx)?, id).await
    }

    /// Ends every session of the signed-in user, or with `exceptCurrent` every one but the
    /// current; returns how many were live.
    #[graphql(guard = "SignedIn")]
    async fn logout_all(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] except_current: Option<bool>,
    ) -> AppResult<i32> {
        let except_current = except_current.unwrap_or(false);
        let ended = state(ctx)?
            .auth
            .logout_all(viewer(ctx)?, except_current)
            .await?;
        Ok(to_int(ended))
    }
}
