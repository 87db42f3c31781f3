//! What mail proves: that a user reads mail at their address (verification), and that
//! whoever asks for a new password does (reset).
//!
//! Each mail carries a token of 256 random bits; the database keeps its SHA-256 only (a
//! token that long needs no slow hash), so a copy of the database verifies nothing and
//! resets nothing. A token works once, until it expires.
//!
//! `requestPasswordReset` answers the same, and as fast, whether or not the address has an
//! account: the lookup and the mail happen after the answer.
use std::{net::IpAddr, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, sea_query::Expr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Auth, Viewer};
use crate::{
    domain::{Email, Password},
    entity::{
        email_token::{self, Purpose},
        now, session, user,
    },
    error::{AppError, AppResult, on_unique_violation},
    mail::Mail,
    service::{begin_write, detached},
};

/// Tokens we mail are 43 characters; a longer one is not ours and is not even hashed.
const MAX_TOKEN: usize = 128;

const BAD_TOKEN: &str = "the token is invalid, used or expired";

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Auth {
    /// Stores a new token for `user_id`, mailed to `email`; returns the token.
    pub(super) async fn store_token(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        purpose: Purpose,
        email: &str,
    ) -> AppResult<String> {
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let ttl = match purpose {
            Purpose::Verify | Purpose::Change => self.verification_ttl,
            Purpose::Reset => self.reset_ttl,
        };
        let created_at = now();
        email_token::ActiveModel {
            token_hash: Set(hash_token(&token)),
            user_id: Set(user_id),
            purpose: Set(purpose),
            email: Set(email.to_owned()),
            created_at: Set(created_at),
            expires_at: Set(created_at + ttl),
        }
        .insert(conn)
        .await?;
        Ok(token)
    }

    /// Queues the mail that carries `token`.
    pub(super) fn mail_token(&self, purpose: Purpose, to: &str, token: &str) {
        let hours = |ttl: chrono::TimeDelta| match ttl.num_hours() {
            0 => format!("{} minutes", ttl.num_minutes()),
            1 => "an hour".to_owned(),
            n => format!("{n} hours"),
        };
        let (kind, subject, intro, path, ttl, outro) = match purpose {
            Purpose::Verify => (
                "verify",
                "Confirm your email address",
                "To confirm that this is your address",
                "verify-email",
                self.verification_ttl,
                "If you did not sign up, ignore this mail.",
            ),
            Purpose::Change => (
                "change",
                "Confirm your new email address",
                "To move your account to this address",
                "verify-email",
                self.verification_ttl,
                "If you did not ask for it, ignore this mail.",
            ),
            Purpose::Reset => (
                "reset",
                "Reset your password",
                "To choose a new password",
                "reset-password",
                self.reset_ttl,
                "It signs you out everywhere. If you did not ask for it,\n\
                 ignore this mail: your password stays as it is.",
            ),
        };
        // Short lines, the link on one of its own: no line needs folding on the way.
        let text = format!(
            "{intro}, open this link\n(or give this code to the app):\n\n    {}\n\n\
             It works once, for {}.\n{outro}\n",
            self.mailer.link(path, token),
            hours(ttl),
        );
        self.mailer.send(Mail {
            kind,
            to: to.to_owned(),
            subject: subject.to_owned(),
            text,
        });
    }

    /// Mails the viewer a new verification link; false (and no mail) if their address is
    /// verified already.
    pub async fn resend_verification(&self, viewer: &Viewer) -> AppResult<bool> {
        self.verification_per_user.check(&viewer.user_id)?;
        let account = user::Entity::find_by_id(viewer.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(AppError::Unauthenticated("user no longer exists"))?;
        if account.email_verified_at.is_some() {
            return Ok(false);
        }
        let token = self
            .store_token(&self.writer, account.id, Purpose::Verify, &account.email)
            .await?;
        self.mail_token(Purpose::Verify, &account.email, &token);
        Ok(true)
    }

    /// Verifies the address the token was mailed to: the user's own (if it still is), or the
    /// one they asked to move to (`changeEmail`), which becomes theirs.
    pub async fn verify_email(
        self: &Arc<Self>,
        token: &str,
        client: IpAddr,
    ) -> AppResult<user::Model> {
        self.token_per_ip.check(&client.into())?;
        let this = self.clone();
        let token = token.to_owned();
        detached(async move {
            let txn = begin_write(&this.writer).await?;
            let (claimed, account) = this
                .claim(&txn, &token, &[Purpose::Verify, Purpose::Change])
                .await?;
            let moving = claimed.purpose == Purpose::Change && claimed.email != account.email;
            // The address changed since the mail went out: the link proves nothing now.
            if !moving && claimed.email != account.email {
                return Err(AppError::bad_input("token", BAD_TOKEN));
            }
            let verified_at = match moving {
                true => now(),
                false => account.email_verified_at.unwrap_or_else(now),
            };
            let user_id = account.id;
            let mut account: user::ActiveModel = account.into();
            account.email = Set(claimed.email.clone());
            account.email_verified_at = Set(Some(verified_at));
            let account = account
                .update(&txn)
                .await
                .map_err(|e| on_unique_violation(e, "users", &[("uq_users_email", "email")]))?;
            // Other links to this address have nothing left to prove; after a move, links
            // mailed to the old address (a reset, a verification) go too.
            let spent =
                email_token::Entity::delete_many().filter(email_token::Column::UserId.eq(user_id));
            let spent = match moving {
                true => spent.filter(email_token::Column::Purpose.ne(Purpose::Change)),
                false => spent
                    .filter(email_token::Column::Purpose.eq(Purpose::Verify))
                    .filter(email_token::Column::Email.eq(claimed.email.clone())),
            };
            spent.exec(&txn).await?;
            this.changed(txn, user_id).await?;
            Ok(account)
        })
        .await
    }

    /// Mails a reset link if `email` belongs to an account. Answers the same either way,
    /// before looking: only the rate limits (per address asked about and per client) show.
    pub fn request_password_reset(self: &Arc<Self>, email: Email, client: IpAddr) -> AppResult<()> {
        self.reset_per_ip.check(&client.into())?;
        self.reset_per_email.check(&email.as_str().to_owned())?;
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.mail_reset(email).await {
                tracing::error!(error = %err, "password reset not mailed");
            }
        });
        Ok(())
    }

    async fn mail_reset(&self, email: Email) -> AppResult<()> {
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?;
        let Some(account) = found else {
            return Ok(());
        };
        let token = self
            .store_token(&self.writer, account.id, Purpose::Reset, &account.email)
            .await?;
        self.mail_token(Purpose::Reset, &account.email, &token);
        Ok(())
    }

    /// Sets a new password with a mailed token, and ends every session of the account (their
    /// sockets close with 4403 on every instance). Returns how many sessions ended.
    pub async fn reset_password(
        self: &Arc<Self>,
        token: &str,
        password: Password,
        client: IpAddr,
    ) -> AppResult<u64> {
        self.token_per_ip.check(&client.into())?;
        // Hashed before the token is claimed: a hash is slow, and a transaction should not
        // wait for one. The token is checked first, without claiming it, so that a bad one
        // costs no hash.
        self.usable(token, Purpose::Reset).await?;
        let password_hash = self.hasher.hash(&password).await?;
        let (this, token) = (self.clone(), token.to_owned());
        let (user_id, ended) = detached(async move {
            let txn = begin_write(&this.writer).await?;
            let (claimed, account) = this.claim(&txn, &token, &[Purpose::Reset]).await?;
            let mut update = user::Entity::update_many()
                .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
                .filter(user::Column::Id.eq(account.id));
            // The reset proved the mailbox too.
            if account.email_verified_at.is_none() && account.email == claimed.email {
                update = update.col_expr(user::Column::EmailVerifiedAt, Expr::value(now()));
            }
            update.exec(&txn).await?;
            // Every other reset link of the account dies with this one.
            email_token::Entity::delete_many()
                .filter(email_token::Column::UserId.eq(account.id))
                .filter(email_token::Column::Purpose.eq(Purpose::Reset))
                .exec(&txn)
                .await?;
            let ended = this
                .revoke_in(&txn, session::Column::UserId.eq(account.id).into())
                .await?;
            this.changed(txn, account.id).await?;
            this.revoked(&ended);
            Ok((account.id, ended.len() as u64))
        })
        .await?;
        tracing::info!(user = %user_id, sessions_ended = ended, "password reset");
        Ok(ended)
    }

    /// The live token `token` for `purpose`, without claiming it.
    async fn usable(&self, token: &str, purpose: Purpose) -> AppResult<email_token::Model> {
        if token.len() > MAX_TOKEN {
            return Err(AppError::bad_input("token", BAD_TOKEN));
        }
        email_token::Entity::find_by_id(hash_token(token))
            .filter(email_token::Column::Purpose.eq(purpose))
            .filter(email_token::Column::ExpiresAt.gt(now()))
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::bad_input("token", BAD_TOKEN))
    }

    /// Takes the token out of the database, once (of two uses at once, one finds it), and
    /// its account, locked until `txn` ends.
    async fn claim(
        &self,
        txn: &impl ConnectionTrait,
        token: &str,
        purposes: &[Purpose],
    ) -> AppResult<(email_token::Model, user::Model)> {
        if token.len() > MAX_TOKEN {
            return Err(AppError::bad_input("token", BAD_TOKEN));
        }
        let claimed = email_token::Entity::delete_many()
            .filter(email_token::Column::TokenHash.eq(hash_token(token)))
            .filter(email_token::Column::Purpose.is_in(purposes.iter().copied()))
            .filter(email_token::Column::ExpiresAt.gt(now()))
            .exec_with_returning(txn)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::bad_input("token", BAD_TOKEN))?;
        let account = user::Entity::find_by_id(claimed.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or_else(|| AppError::bad_input("token", BAD_TOKEN))?;
        Ok((claimed, account))
    }
}

/// How long tokens of each purpose live, for `Auth::new`.
pub(super) fn ttl(config: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(config).unwrap_or(chrono::TimeDelta::MAX)
}
