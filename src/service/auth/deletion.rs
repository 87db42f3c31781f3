//! Deleting an account. The row stays, scrubbed: the user's messages keep an author, and
//! rooms keep their seqs without gaps. Its name and email are freed for a new account, its
//! sessions end (tokens refused, sockets closed, on every instance, at once) and it can no
//! longer log in.
use std::net::IpAddr;

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::{Auth, Viewer};
use crate::{
    domain::{Password, Username},
    entity::{membership, now, user},
    error::{AppError, AppResult},
};

impl Auth {
    /// Deletes the viewer's account once they confirm it with their password (a stolen
    /// access token alone must not be enough). Password checks count against the account's
    /// login rate limits.
    pub async fn delete_account(
        &self,
        viewer: &Viewer,
        password: Password,
        client: IpAddr,
    ) -> AppResult<()> {
        let account = user::Entity::find_by_id(viewer.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(AppError::Unauthenticated("user no longer exists"))?;
        self.login.check(&account.username.to_lowercase(), client)?;
        if !self
            .hasher
            .verify(&password, Some(&account.password_hash))
            .await?
        {
            return Err(AppError::bad_input("password", "the password is wrong"));
        }

        let sessions = self.live_sessions(account.id).await?;
        let txn = self.db.begin().await?;
        let tag = account.id.simple().to_string();
        user::Entity::update(user::ActiveModel {
            id: Set(account.id),
            username: Set(format!("{}{}", Username::DELETED_PREFIX, &tag[8..])),
            // Unique, and no address at all (.invalid is reserved for that).
            email: Set(format!("{tag}@deleted.invalid")),
            // No hash verifies against this; logins skip deleted accounts anyway.
            password_hash: Set(String::new()),
            deleted_at: Set(Some(now())),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        membership::Entity::delete_many()
            .filter(membership::Column::UserId.eq(account.id))
            .exec(&txn)
            .await?;
        let ended = self.revoke_in(&txn, &sessions).await?;
        txn.commit().await?;
        self.revoked(&sessions);
        tracing::info!(user = %account.id, sessions = ended, "account deleted");
        Ok(())
    }
}
