//! Deleting an account. The row stays, scrubbed: the user's messages keep an author, and
//! rooms keep their seqs without gaps. Its name and email are freed for a new account, its
//! sessions end (tokens refused, sockets closed, on every instance, at once) and it can no
//! longer log in.
use std::{net::IpAddr, sync::Arc};

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{Auth, Viewer};
use crate::{
    broker::Event,
    domain::{Password, Username},
    entity::{email_token, now, recovery_code, session, user},
    error::AppResult,
    service::{begin_write, chat::leave_all, detached},
};

impl Auth {
    /// Deletes the viewer's account once they confirm it with their password (a stolen
    /// access token alone must not be enough). Password checks count against the account's
    /// login rate limits.
    pub async fn delete_account(
        self: &Arc<Self>,
        viewer: &Viewer,
        password: Password,
        client: IpAddr,
    ) -> AppResult<()> {
        let account = self
            .confirm_password(viewer, &password, "password", client)
            .await?;
        let this = self.clone();
        let ended = detached(async move { this.scrub(account.id).await }).await?;
        tracing::info!(user = %viewer.user_id, sessions = ended, "account deleted");
        Ok(())
    }

    /// Scrubs the row and ends every session, in one transaction: a login that has checked
    /// the password by now either opened its session before (and it is revoked here) or
    /// finds the account deleted (see `login`). Returns how many sessions it ended.
    async fn scrub(&self, user_id: Uuid) -> AppResult<usize> {
        let txn = begin_write(&self.writer).await?;
        let tag = user_id.simple().to_string();
        user::Entity::update(user::ActiveModel {
            id: Set(user_id),
            username: Set(format!("{}{}", Username::DELETED_PREFIX, &tag[8..])),
            // Unique, and no address at all (.invalid is reserved for that).
            email: Set(format!("{tag}@deleted.invalid")),
            // No hash verifies against this; logins skip deleted accounts anyway.
            password_hash: Set(String::new()),
            totp_secret: Set(None),
            totp_enabled_at: Set(None),
            deleted_at: Set(Some(now())),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        // A link mailed before must not reset or verify anything now.
        email_token::Entity::delete_many()
            .filter(email_token::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        // It leaves its rooms; those it owned go to their next members.
        let left = leave_all(&txn, user_id).await?;
        for event in &left {
            self.broker.stage(&txn, event).await?;
        }
        let sessions = self
            .revoke_in(&txn, session::Column::UserId.eq(user_id).into())
            .await?;
        // Every instance's copy of the user is stale: its messages now name `deleted_…`.
        let changed = Event::UserChanged(user_id);
        self.broker.stage(&txn, &changed).await?;
        txn.commit().await?;
        for event in left {
            self.broker.committed(event);
        }
        self.broker.committed(changed);
        self.revoked(&sessions);
        Ok(sessions.len())
    }
}
