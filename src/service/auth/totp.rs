//! Two-factor login with time-based codes (TOTP, RFC 6238: SHA-1, 6 digits, 30 s steps, one
//! step of clock skew either way), as every authenticator app speaks it.
//!
//! `enableTotp` makes a secret (160 random bits) and hands it out once, as base32 and as an
//! `otpauth://` URI for a QR code; `confirmTotp` with a code from the app turns it on and
//! returns ten recovery codes (80 random bits each, stored as SHA-256 hashes, single use).
//! The secret is stored sealed under a key derived from the server's secret: a copy of the
//! database alone does not give anyone the codes.
//!
//! With TOTP on, `login` checks the password and answers `MFA_REQUIRED` with a challenge
//! instead of tokens: a sealed, five-minute proof that the password was right, which
//! `verifyLogin` takes with a code to open the session. A code is accepted once: the user's
//! row keeps the time step of the last one, and only later steps pass. Codes count against
//! the account's login rate limits.
use std::time::{SystemTime, UNIX_EPOCH};

use base32::Alphabet;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect,
};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Totp};
use uuid::Uuid;

use super::{Auth, Device, Issued, Viewer};
use crate::{
    domain::Password,
    entity::{now, recovery_code, user},
    error::{AppError, AppResult},
    service::begin_write,
};

/// Recovery codes handed out by `confirmTotp`.
pub const RECOVERY_CODES: usize = 10;
/// How long a login challenge lasts.
pub const CHALLENGE_SECONDS: u64 = 300;
/// Longer than any code or recovery code we accept: not even looked at.
const MAX_CODE: usize = 64;

/// What `enableTotp` hands out, once.
pub struct TotpSetup {
    pub secret: String,
    pub uri: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hash_code(code: &str) -> String {
    hex::encode(Sha256::digest(normal_code(code).as_bytes()))
}

/// A recovery code as typed: any case, with or without dashes and spaces.
fn normal_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Auth {
    fn totp(&self, secret: Vec<u8>, account: &str) -> AppResult<Totp> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(30)
            .with_secret(secret)
            .with_issuer(Some(self.issuer.clone()))
            .with_account_name(account.replace(':', ""))
            .build()
            .map_err(|e| anyhow::anyhow!("build a TOTP: {e:?}").into())
    }

    /// The user's TOTP, from their sealed secret.
    fn totp_of(&self, account: &user::Model) -> AppResult<Option<Totp>> {
        let Some(sealed) = &account.totp_secret else {
            return Ok(None);
        };
        let secret = self
            .totp_seal
            .open(sealed)
            .ok_or_else(|| anyhow::anyhow!("a TOTP secret that does not open"))?;
        self.totp(secret, &account.username).map(Some)
    }

    /// Makes a new secret for the viewer, not in use until `confirm_totp`.
    pub async fn enable_totp(&self, viewer: &Viewer) -> AppResult<TotpSetup> {
        let account = self.account(viewer).await?;
        if account.totp_enabled_at.is_some() {
            return Err(AppError::Forbidden(
                "two-factor login is on already: turn it off first",
            ));
        }
        let secret = rand::random::<[u8; 20]>().to_vec();
        let totp = self.totp(secret.clone(), &account.username)?;
        let uri = totp
            .to_url()
            .map_err(|e| anyhow::anyhow!("TOTP URI: {e:?}"))?;
        user::Entity::update(user::ActiveModel {
            id: Set(account.id),
            totp_secret: Set(Some(self.totp_seal.seal(&secret))),
            totp_last_step: Set(None),
            ..Default::default()
        })
        .exec(&self.writer)
        .await?;
        Ok(TotpSetup {
            secret: base32::encode(Alphabet::Rfc4648 { padding: false }, &secret),
            uri,
        })
    }

    /// Turns TOTP on with a code from the app; returns the recovery codes (shown only now).
    pub async fn confirm_totp(&self, viewer: &Viewer, code: &str) -> AppResult<Vec<String>> {
        let txn = begin_write(&self.writer).await?;
        let account = locked(&txn, viewer.user_id).await?;
        if account.totp_enabled_at.is_some() {
            return Err(AppError::Forbidden("two-factor login is on already"));
        }
        if account.totp_secret.is_none() {
            return Err(AppError::Forbidden("call enableTotp first"));
        }
        let step = self.check_code(&account, code)?;
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let code = base32::encode(
                Alphabet::Rfc4648 { padding: false },
                &rand::random::<[u8; 10]>(),
            )
            .to_lowercase();
            let code = format!(
                "{}-{}-{}-{}",
                &code[0..4],
                &code[4..8],
                &code[8..12],
                &code[12..16]
            );
            recovery_code::ActiveModel {
                code_hash: Set(hash_code(&code)),
                user_id: Set(account.id),
                created_at: Set(now()),
            }
            .insert(&txn)
            .await?;
            codes.push(code);
        }
        user::Entity::update(user::ActiveModel {
            id: Set(account.id),
            totp_enabled_at: Set(Some(now())),
            totp_last_step: Set(Some(step)),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        self.changed(txn, account.id).await?;
        Ok(codes)
    }

    /// Turns TOTP off, with the password and a code (or a recovery code).
    pub async fn disable_totp(
        &self,
        viewer: &Viewer,
        password: Password,
        code: &str,
        client: std::net::IpAddr,
    ) -> AppResult<()> {
        self.confirm_password(viewer, &password, "password", client)
            .await?;
        let txn = begin_write(&self.writer).await?;
        let account = locked(&txn, viewer.user_id).await?;
        if account.totp_enabled_at.is_none() {
            return Err(AppError::Forbidden("two-factor login is off"));
        }
        self.second_factor(&txn, &account, code).await?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(account.id))
            .exec(&txn)
            .await?;
        user::Entity::update(user::ActiveModel {
            id: Set(account.id),
            totp_secret: Set(None),
            totp_enabled_at: Set(None),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        self.changed(txn, account.id).await
    }

    /// The challenge `login` answers with when the account has TOTP on.
    pub(super) fn challenge(&self, user_id: Uuid) -> AppError {
        let expires = unix_now() + CHALLENGE_SECONDS;
        let mut plain = user_id.as_bytes().to_vec();
        plain.extend_from_slice(&expires.to_be_bytes());
        AppError::MfaRequired {
            challenge: self.challenge_seal.seal(&plain),
            expires_in: CHALLENGE_SECONDS,
        }
    }

    /// Finishes a login that `login` answered with a challenge: a code (or a recovery code)
    /// opens the session.
    pub async fn verify_login(
        &self,
        challenge: &str,
        code: &str,
        device: &Device,
    ) -> AppResult<Issued> {
        let invalid = || AppError::Unauthenticated("invalid or expired challenge");
        let plain = (challenge.len() <= 256)
            .then(|| self.challenge_seal.open(challenge))
            .flatten()
            .ok_or_else(invalid)?;
        let (id, expires) = plain.split_at_checked(16).ok_or_else(invalid)?;
        let expires = u64::from_be_bytes(expires.try_into().map_err(|_| invalid())?);
        if expires <= unix_now() {
            return Err(invalid());
        }
        let user_id = Uuid::from_slice(id).map_err(|_| invalid())?;
        let txn = begin_write(&self.writer).await?;
        let account = locked(&txn, user_id).await.map_err(|_| invalid())?;
        self.login
            .check(&account.username.to_lowercase(), device.ip)?;
        if account.totp_enabled_at.is_none() {
            // Turned off since the password was checked: the password was enough.
            tracing::debug!(user = %user_id, "challenge answered after TOTP was turned off");
        } else {
            self.second_factor(&txn, &account, code).await?;
        }
        let (session_id, refresh_token) = self.start_session(&txn, account.id, device).await?;
        txn.commit().await?;
        self.issue(account, session_id, refresh_token)
    }

    /// Checks a code, or else a recovery code (spending it), for `account`, whose row `txn`
    /// holds; records the code's step so that it is not accepted again.
    async fn second_factor(
        &self,
        txn: &DatabaseTransaction,
        account: &user::Model,
        code: &str,
    ) -> AppResult<()> {
        if let Ok(step) = self.check_code(account, code) {
            user::Entity::update(user::ActiveModel {
                id: Set(account.id),
                totp_last_step: Set(Some(step)),
                ..Default::default()
            })
            .exec(txn)
            .await?;
            return Ok(());
        }
        if code.len() > MAX_CODE {
            return Err(bad_code());
        }
        let spent = recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::CodeHash.eq(hash_code(code)))
            .filter(recovery_code::Column::UserId.eq(account.id))
            .exec(txn)
            .await?
            .rows_affected;
        if spent == 0 {
            metrics::counter!("auth_second_factor_failures_total").increment(1);
            return Err(bad_code());
        }
        Ok(())
    }

    /// The time step of a valid, unused code for `account`.
    fn check_code(&self, account: &user::Model, code: &str) -> AppResult<i64> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_code());
        }
        let totp = self.totp_of(account)?.ok_or_else(bad_code)?;
        let step = totp.check(code, unix_now()).ok_or_else(bad_code)? as i64;
        if account.totp_last_step.is_some_and(|last| step <= last) {
            // Used already (or an earlier one was): a code works once.
            return Err(bad_code());
        }
        Ok(step)
    }

    async fn account(&self, viewer: &Viewer) -> AppResult<user::Model> {
        user::Entity::find_by_id(viewer.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(AppError::Unauthenticated("user no longer exists"))
    }
}

fn bad_code() -> AppError {
    AppError::bad_input("code", "the code is wrong, used or expired")
}

/// The user's row, held until `txn` ends: two codes at once cannot both pass.
async fn locked(txn: &DatabaseTransaction, user_id: Uuid) -> AppResult<user::Model> {
    user::Entity::find_by_id(user_id)
        .filter(user::Column::DeletedAt.is_null())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(AppError::Unauthenticated("user no longer exists"))
}
