//! Changing how a user is known: their username at once, their address once the new one is
//! verified. Either change reaches every instance's copy of the user (`Event::UserChanged`).
use std::net::IpAddr;

use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};

use super::{Auth, Viewer};
use crate::{
    broker::Event,
    domain::{Email, Password, Username},
    entity::{email_token::Purpose, user},
    error::{AppError, AppResult, on_unique_violation},
    mail::Mail,
    service::begin_write,
};

impl Auth {
    /// Commits a transaction that changed `user_id`'s row, and tells every instance.
    pub(super) async fn changed(
        &self,
        txn: DatabaseTransaction,
        user_id: uuid::Uuid,
    ) -> AppResult<()> {
        let event = Event::UserChanged(user_id);
        self.broker.stage(&txn, &event).await?;
        txn.commit().await?;
        self.broker.committed(event);
        Ok(())
    }

    /// Renames the viewer: the rules of `register`, and CONFLICT if the name is taken.
    pub async fn change_username(
        &self,
        viewer: &Viewer,
        username: Username,
    ) -> AppResult<user::Model> {
        let txn = begin_write(&self.writer).await?;
        let account = user::Entity::find_by_id(viewer.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&txn)
            .await?
            .ok_or(AppError::Unauthenticated("user no longer exists"))?;
        let renamed = user::Entity::update(user::ActiveModel {
            id: Set(account.id),
            username: Set(username.into_inner()),
            ..Default::default()
        })
        .exec(&txn)
        .await
        .map_err(|e| on_unique_violation(e, "users", &[("uq_users_username", "username")]))?;
        self.changed(txn, account.id).await?;
        Ok(renamed)
    }

    /// Starts moving the viewer to a new address, once they confirm their password: mails a
    /// link to the new address (which becomes theirs when it is opened, `verifyEmail`) and a
    /// notice to the old one.
    pub async fn change_email(
        &self,
        viewer: &Viewer,
        password: Password,
        new_email: Email,
        client: IpAddr,
    ) -> AppResult<()> {
        self.verification_per_user.check(&viewer.user_id)?;
        let account = self
            .confirm_password(viewer, &password, "currentPassword", client)
            .await?;
        if account.email == new_email.as_str() {
            return Err(AppError::bad_input(
                "newEmail",
                "this is already your address",
            ));
        }
        let taken = user::Entity::find()
            .filter(user::Column::Email.eq(new_email.as_str()))
            .one(&self.db)
            .await?;
        if taken.is_some() {
            return Err(taken_email());
        }
        let token = self
            .store_token(
                &self.writer,
                account.id,
                Purpose::Change,
                new_email.as_str(),
            )
            .await?;
        self.mail_token(Purpose::Change, new_email.as_str(), &token);
        self.mailer.send(Mail {
            kind: "notice",
            to: account.email,
            subject: "Your address is being changed".to_owned(),
            text: format!(
                "Someone signed in as {} asked to move this account to\n\n    {}\n\n\
                 It moves once that address is confirmed. If it was not you,\n\
                 change your password now: whoever asked knows it.\n",
                account.username,
                new_email.as_str(),
            ),
        });
        Ok(())
    }
}

/// An address that belongs to another account, as `changeEmail` and `verifyEmail` say it.
pub(super) fn taken_email() -> AppError {
    AppError::Conflict {
        field: "newEmail",
        message: "newEmail is already taken".into(),
    }
}
