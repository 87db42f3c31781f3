//! A user's sessions as they see them: where each began (address and user agent at login),
//! when it was last used, and ending one, or all but the current one; and changing the
//! password, which ends every session but the current one.
use std::{net::IpAddr, sync::Arc};

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{Auth, Viewer};
use crate::{
    domain::Password,
    entity::{now, session, user},
    error::{AppError, AppResult},
    service::{begin_write, detached},
};

/// The most sessions `sessions` lists (the most recently used): a client shows a screenful,
/// and a user who logged in a thousand times ends the rest with `logoutAll`.
pub const MAX_SESSIONS_LISTED: u64 = 100;

/// The longest `User-Agent` a session keeps, in characters.
pub const MAX_USER_AGENT: usize = 256;

/// Where a login comes from, as the session it opens remembers.
#[derive(Debug, Clone)]
pub struct Device {
    pub ip: IpAddr,
    /// Its `User-Agent` (at most `MAX_USER_AGENT` characters); `None` if it sent none.
    pub user_agent: Option<String>,
}

impl Device {
    /// A device known by its address alone.
    pub fn at(ip: IpAddr) -> Self {
        Self {
            ip,
            user_agent: None,
        }
    }
}

impl Auth {
    /// The viewer's live sessions (not ended, and used within the refresh token lifetime),
    /// the most recently used first.
    pub async fn sessions(&self, viewer: &Viewer) -> AppResult<Vec<session::Model>> {
        let since = now() - self.refresh_ttl;
        Ok(session::Entity::find()
            .filter(session::Column::UserId.eq(viewer.user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(
                Condition::any()
                    .add(session::Column::LastUsedAt.gt(since))
                    .add(session::Column::CreatedAt.gt(since)),
            )
            .order_by_desc(Expr::cust("COALESCE(last_used_at, created_at)"))
            .order_by_desc(session::Column::Id)
            .limit(MAX_SESSIONS_LISTED)
            .all(&self.db)
            .await?)
    }

    /// Ends one of the viewer's sessions: its tokens are refused and its sockets closed, on
    /// every instance. False if it had ended already; NOT_FOUND if it is not the viewer's.
    pub async fn revoke_session(self: &Arc<Self>, viewer: &Viewer, id: Uuid) -> AppResult<bool> {
        let which = Condition::all()
            .add(session::Column::Id.eq(id))
            .add(session::Column::UserId.eq(viewer.user_id));
        let found = session::Entity::find()
            .filter(which.clone())
            .one(&self.db)
            .await?;
        if found.is_none() {
            return Err(AppError::NotFound("session"));
        }
        Ok(self.revoke_sessions(which).await? == 1)
    }

    /// Ends every live session of the viewer, or every one but the current; returns how many.
    pub async fn logout_all(
        self: &Arc<Self>,
        viewer: &Viewer,
        except_current: bool,
    ) -> AppResult<u64> {
        let mut which = Condition::all().add(session::Column::UserId.eq(viewer.user_id));
        if except_current {
            which = which.add(session::Column::Id.ne(viewer.session_id));
        }
        self.revoke_sessions(which).await
    }

    /// Sets a new password once the viewer proves the current one, and ends every other
    /// session (whoever else held one, held it with the old password). The current session
    /// goes on. Password checks count against the account's login rate limits.
    pub async fn change_password(
        self: &Arc<Self>,
        viewer: &Viewer,
        current: Password,
        new: Password,
        client: IpAddr,
    ) -> AppResult<u64> {
        let account = self
            .confirm_password(viewer, &current, "currentPassword", client)
            .await?;
        let password_hash = self.hasher.hash(&new).await?;
        let (this, user_id, current_session) = (self.clone(), account.id, viewer.session_id);
        let ended = detached(async move {
            let txn = begin_write(&this.writer).await?;
            user::Entity::update_many()
                .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
                .filter(user::Column::Id.eq(user_id))
                .filter(user::Column::DeletedAt.is_null())
                .exec(&txn)
                .await?;
            let others = Condition::all()
                .add(session::Column::UserId.eq(user_id))
                .add(session::Column::Id.ne(current_session));
            let ended = this.revoke_in(&txn, others).await?;
            txn.commit().await?;
            this.revoked(&ended);
            Ok(ended.len() as u64)
        })
        .await?;
        tracing::info!(user = %viewer.user_id, sessions_ended = ended, "password changed");
        Ok(ended)
    }
}

/// A `User-Agent` as a session keeps it: at most `MAX_USER_AGENT` characters, control
/// characters (a tab is the one a header may hold) made spaces; `None` when nothing is left.
pub fn user_agent(value: &str) -> Option<String> {
    let kept: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_USER_AGENT)
        .collect();
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cut_and_cleaned() {
        assert_eq!(user_agent("curl/8.5.0").as_deref(), Some("curl/8.5.0"));
        assert_eq!(user_agent(" \u{7} "), None);
        assert_eq!(user_agent("a\tb").as_deref(), Some("a b"));
        let long = "x".repeat(10 * MAX_USER_AGENT);
        assert_eq!(user_agent(&long).map(|s| s.len()), Some(MAX_USER_AGENT));
    }
}
