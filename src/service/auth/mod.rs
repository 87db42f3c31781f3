//! Accounts: registration, login and access-token checks here; refresh-token rotation,
//! logout and revocation in `sessions`; the sessions a user sees and ends, and password
//! changes, in `devices`; account deletion in `deletion`; mailed links in `email`; two-factor
//! login in `totp`; an identity provider's tokens in `jwks` (its keys) and `external` (its
//! users).
//!
//! A login opens a session. The session holds a chain of refresh tokens: each is single use and
//! exchanging it (`refresh`) yields the next one. A token that has already been exchanged, and
//! is presented again after a short grace interval, can only come from someone who copied it,
//! so that revokes the whole session.
mod deletion;
mod devices;
mod email;
mod external;
mod housekeeping;
mod jwks;
mod password;
mod profile;
mod sessions;
mod token;
mod totp;

use std::{net::IpAddr, sync::Arc, time::Duration};

use anyhow::Context;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, Func},
};
use uuid::Uuid;

/// A socket's watch on its session (the broker's), as the transport holds it.
pub use crate::broker::SessionWatch;
pub use devices::{Device, MAX_SESSIONS_LISTED, user_agent};
use external::ExternalUsers;
pub use housekeeping::Purged;
use jwks::KeySet;
pub use password::PasswordHasher;
pub use token::{LEEWAY_SECONDS, TokenError, TokenKeys, is_expired};
pub use totp::{CHALLENGE_SECONDS, RECOVERY_CODES, TotpSetup};

use crate::{
    broker::{Broker, Revocations, seal::Seal},
    config::{AuthConfig, RateLimits, SigningConfig},
    db::Pools,
    domain::{Email, Password, Username, reject_nul},
    entity::{email_token::Purpose, now, user, user::Role},
    error::{AppError, AppResult, on_unique_violation},
    mail::Mailer,
    service::{
        begin_write,
        rate_limit::{ClientNet, RateLimit},
    },
};

/// One message for an unknown login and for a wrong password: telling them apart would let
/// anyone find out who has an account.
const BAD_CREDENTIALS: &str = "invalid login or password";

/// The authenticated caller, as proven by a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
    /// The token's `exp`, in seconds since the epoch: refused from then on.
    pub expires_at: i64,
}

/// Why an access token does not authenticate; the text is what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing access token")]
    Missing,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("session revoked")]
    Revoked,
    /// The check itself failed (the database); logged where it did.
    #[error("could not check the access token")]
    Unavailable,
}

impl AuthError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "missing access token",
            Self::Token(TokenError::Expired) => "access token expired",
            Self::Token(TokenError::Invalid) => "invalid access token",
            Self::Revoked => "session revoked",
            Self::Unavailable => "could not check the access token",
        }
    }
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unavailable => anyhow::anyhow!(err.message()).into(),
            _ => AppError::Unauthenticated(err.message()),
        }
    }
}

/// What `register`, `login` and `refresh` hand back.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub user: user::Model,
}

pub struct Registration {
    pub email: Email,
    pub username: Username,
    pub password: Password,
}

pub struct Auth {
    db: DatabaseConnection,
    /// Where writes go (see `db::Pools`).
    writer: DatabaseConnection,
    broker: Arc<dyn Broker>,
    hasher: PasswordHasher,
    tokens: TokenKeys,
    /// Derives each refresh token from the one before it (see `sessions`).
    successor_key: [u8; 32],
    revocations: Arc<Revocations>,
    refresh_ttl: Duration,
    /// How long a used refresh token still gets its successor back instead of revoking.
    reuse_interval: chrono::TimeDelta,
    login: LoginLimits,
    register_per_ip: RateLimit<ClientNet>,
    refresh_per_ip: RateLimit<ClientNet>,
    refresh_per_user: RateLimit<Uuid>,
    mailer: Arc<Mailer>,
    verification_ttl: chrono::TimeDelta,
    reset_ttl: chrono::TimeDelta,
    verification_per_user: RateLimit<Uuid>,
    reset_per_email: RateLimit<String>,
    reset_per_ip: RateLimit<ClientNet>,
    /// Mailed tokens tried (`verifyEmail`, `resetPassword`) per client.
    token_per_ip: RateLimit<ClientNet>,
    /// TOTP secrets at rest, and login challenges (see `totp`).
    totp_seal: Seal,
    challenge_seal: Seal,
    /// Names this service in authenticator apps (`JWT_ISSUER`).
    issuer: String,
    /// The identity provider whose tokens are accepted too (`JWT_JWKS_URL`).
    external: Option<ExternalUsers>,
}

/// How often a password may be tried. The tight limit is per account *and* address: a
/// stranger who guesses at someone's account uses up only their own allowance, never the
/// owner's. The looser one per account stops guessing spread over many addresses (and only
/// such an attack can lock the owner out, for as long as it lasts).
struct LoginLimits {
    per_account_ip: RateLimit<(String, ClientNet)>,
    per_account: RateLimit<String>,
    per_ip: RateLimit<ClientNet>,
}

impl LoginLimits {
    /// `account` is the login as typed (email or username), lowercased.
    fn check(&self, account: &str, client: IpAddr) -> AppResult<()> {
        let net = ClientNet::from(client);
        self.per_ip.check(&net)?;
        self.per_account_ip.check(&(account.to_owned(), net))?;
        self.per_account.check(&account.to_owned())
    }
}

/// A check that needed the database: its failure is logged here, and the caller is told only
/// that the credentials could not be checked.
fn or_unavailable(
    checked: AppResult<Result<Viewer, AuthError>>,
    what: &'static str,
) -> Result<Viewer, AuthError> {
    checked.unwrap_or_else(|err| {
        tracing::error!(error = ?err, "{what}");
        Err(AuthError::Unavailable)
    })
}

/// How long a revoked session can still have unexpired access tokens: the revocation set must
/// remember it that long.
pub fn revocation_horizon(config: &AuthConfig) -> Duration {
    config.access_token_ttl + Duration::from_secs(LEEWAY_SECONDS)
}

/// The signing keys, from which the server's other secrets derive (see `TokenKeys::derive_key`).
pub fn signing_keys(config: &AuthConfig) -> anyhow::Result<TokenKeys> {
    let keys = TokenKeys::new(config, || {
        tracing::warn!(
            "JWT_SECRET is not set: signing with a random secret generated for this run. \
             Tokens will not survive a restart nor work across instances. \
             Set JWT_SECRET (and APP_ENV=production) for any real deployment."
        );
        rand::random::<[u8; 32]>().to_vec()
    })?;
    if let SigningConfig::EdDsa { .. } = config.signing {
        tracing::info!("signing access tokens with EdDSA (Ed25519)");
    }
    Ok(keys)
}

/// What `Auth` works with besides the database and its settings.
pub struct AuthDeps {
    pub tokens: TokenKeys,
    pub revocations: Arc<Revocations>,
    pub broker: Arc<dyn Broker>,
    pub mailer: Arc<Mailer>,
}

impl Auth {
    pub fn new(
        pools: Pools,
        deps: AuthDeps,
        config: &AuthConfig,
        limits: &RateLimits,
    ) -> anyhow::Result<Self> {
        let AuthDeps {
            tokens,
            revocations,
            broker,
            mailer,
        } = deps;
        let external = match &config.external {
            Some(provider) => Some(ExternalUsers::new(
                KeySet::new(provider)?,
                revocation_horizon(config),
            )),
            None => None,
        };
        Ok(Self {
            external,
            totp_seal: Seal::new(
                tokens.derive_key("chat-server totp secret v1"),
                "totp secret",
            ),
            challenge_seal: Seal::new(
                tokens.derive_key("chat-server login challenge v1"),
                "login challenge",
            ),
            issuer: config.issuer.clone(),
            mailer,
            verification_ttl: email::ttl(config.verification_ttl),
            reset_ttl: email::ttl(config.password_reset_ttl),
            verification_per_user: RateLimit::per_minute(
                "verification_user",
                limits.verification_per_user,
            ),
            reset_per_email: RateLimit::per_minute("reset_email", limits.password_reset_per_email),
            reset_per_ip: RateLimit::per_minute("reset_ip", limits.password_reset_per_ip),
            token_per_ip: RateLimit::per_minute("mail_token_ip", limits.password_reset_per_ip),
            broker,
            hasher: PasswordHasher::new(config.hash_concurrency)?,
            successor_key: tokens.derive_key("chat-server refresh token successor v1"),
            tokens,
            revocations,
            refresh_ttl: config.refresh_token_ttl,
            reuse_interval: chrono::TimeDelta::from_std(config.refresh_reuse_interval)
                .context("REFRESH_TOKEN_REUSE_INTERVAL_SECONDS")?,
            login: LoginLimits {
                per_account_ip: RateLimit::per_minute(
                    "login_account_ip",
                    limits.login_per_account_ip,
                ),
                per_account: RateLimit::per_minute("login_account", limits.login_per_account),
                per_ip: RateLimit::per_minute("login_ip", limits.login_per_ip),
            },
            register_per_ip: RateLimit::per_minute("register_ip", limits.register_per_ip),
            refresh_per_ip: RateLimit::per_minute("refresh_ip", limits.refresh_per_ip),
            refresh_per_user: RateLimit::per_minute("refresh_user", limits.refresh_per_user),
            db: pools.reads,
            writer: pools.writes,
        })
    }

    /// Fetches the identity provider's keys, if there is one: at start-up, before the first
    /// token needs them.
    pub async fn prefetch_keys(&self) {
        if let Some(external) = &self.external {
            external.keys().prefetch().await;
        }
    }

    /// Checks an access token: ours, or the identity provider's (by its `iss`).
    pub async fn authenticate(&self, access_token: &str) -> Result<Viewer, AuthError> {
        if let Some(external) = &self.external
            && KeySet::claims_issuer(access_token).as_deref() == Some(external.keys().issuer())
        {
            let checked = self.authenticate_external(external, access_token).await;
            return or_unavailable(checked, "authenticate an identity provider's token");
        }
        self.authenticate_own(access_token)
    }

    /// Checks one of our access tokens: signature, claims, and the session's revocation. No
    /// database.
    fn authenticate_own(&self, access_token: &str) -> Result<Viewer, AuthError> {
        let claims = self.tokens.verify(access_token)?;
        if self.revocations.is_revoked(&claims.sid) {
            return Err(AuthError::Revoked);
        }
        Ok(Viewer {
            user_id: claims.sub,
            session_id: claims.sid,
            role: claims.role,
            expires_at: claims.exp,
        })
    }

    /// Whether a viewer authenticated a while ago (a socket's) still is: token unexpired,
    /// session not revoked.
    pub fn recheck(&self, viewer: &Viewer) -> Result<(), AuthError> {
        if is_expired(viewer.expires_at) {
            return Err(AuthError::Token(TokenError::Expired));
        }
        if self.revocations.is_revoked(&viewer.session_id) {
            return Err(AuthError::Revoked);
        }
        Ok(())
    }

    /// Watches a viewer's session for its revocation (sockets close at once).
    pub fn watch_session(&self, viewer: &Viewer) -> SessionWatch {
        self.revocations.watch(viewer.session_id)
    }

    pub async fn register(&self, input: Registration, device: &Device) -> AppResult<Issued> {
        // Before the hash: each registration costs the server an Argon2 computation.
        self.register_per_ip.check(&device.ip.into())?;
        let password_hash = self.hasher.hash(&input.password).await?;
        let txn = begin_write(&self.writer).await?;
        let user = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            username: Set(input.username.into_inner()),
            email: Set(input.email.into_inner()),
            password_hash: Set(password_hash),
            role: Set(Role::User),
            created_at: Set(now()),
            ..Default::default()
        }
        .insert(&txn)
        .await
        // Uniqueness is the database's job: two racing registrations get one CONFLICT.
        .map_err(|e| {
            on_unique_violation(
                e,
                "users",
                &[
                    ("uq_users_email", "email"),
                    ("uq_users_username", "username"),
                ],
            )
        })?;
        let (session_id, refresh_token) = self.start_session(&txn, user.id, device).await?;
        let verification = self
            .store_token(&txn, user.id, Purpose::Verify, &user.email)
            .await?;
        txn.commit().await?;
        self.mail_token(Purpose::Verify, &user.email, &verification);
        self.issue(user, session_id, refresh_token)
    }

    pub async fn login(
        &self,
        login: &str,
        password: Password,
        device: &Device,
    ) -> AppResult<Issued> {
        let login = login.trim();
        if login.is_empty() || login.len() > Email::MAX {
            return Err(AppError::bad_input(
                "login",
                "login must be an email or a username",
            ));
        }
        reject_nul("login", login)?;
        let key = login.to_lowercase();
        self.login.check(&key, device.ip)?;

        let column = if key.contains('@') {
            user::Column::Email.into_expr()
        } else {
            Func::lower(Expr::col(user::Column::Username)).into()
        };
        let found = user::Entity::find()
            .filter(Expr::expr(column).eq(key))
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?;
        // With no such user the hasher verifies against a dummy hash: same work, same answer.
        let matched = self
            .hasher
            .verify(&password, found.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let user = match found {
            Some(user) if matched => user,
            _ => {
                metrics::counter!("auth_login_failures_total").increment(1);
                return Err(AppError::Unauthenticated(BAD_CREDENTIALS));
            }
        };
        let txn = begin_write(&self.writer).await?;
        // Held until the commit: an account deletion either committed before (the account is
        // gone now) or waits, and then ends this session with the others.
        let user = user::Entity::find_by_id(user.id)
            .filter(user::Column::DeletedAt.is_null())
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or(AppError::Unauthenticated(BAD_CREDENTIALS))?;
        if user.totp_enabled_at.is_some() {
            // No session yet: the challenge proves the password, a code finishes it.
            return Err(self.challenge(user.id));
        }
        let (session_id, refresh_token) = self.start_session(&txn, user.id, device).await?;
        txn.commit().await?;
        self.issue(user, session_id, refresh_token)
    }

    /// The viewer's account, once they show they know its password (`field`): a stolen
    /// access token alone must not be enough for what only the owner may do. Each check
    /// counts against the account's login rate limits.
    async fn confirm_password(
        &self,
        viewer: &Viewer,
        password: &Password,
        field: &'static str,
        client: IpAddr,
    ) -> AppResult<user::Model> {
        let account = user::Entity::find_by_id(viewer.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?
            .ok_or(AppError::Unauthenticated("user no longer exists"))?;
        self.login.check(&account.username.to_lowercase(), client)?;
        if !self
            .hasher
            .verify(password, Some(&account.password_hash))
            .await?
        {
            return Err(AppError::bad_input(field, "the password is wrong"));
        }
        Ok(account)
    }
}
