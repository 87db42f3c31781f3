//! Accounts: registration, login, refresh-token rotation, logout, and access-token checks.
//!
//! A login opens a session. The session holds a chain of refresh tokens: each is single use and
//! exchanging it (`refresh`) yields the next one. A token that has already been exchanged can
//! only be presented again by someone who copied it, so that revokes the whole session.
mod deletion;
mod password;
mod revocation;
mod token;

use std::{net::IpAddr, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, ExprTrait,
    QueryFilter, QuerySelect, TransactionTrait,
    sea_query::{Expr, Func},
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use password::PasswordHasher;
pub use revocation::{Revocations, SessionWatch};
pub use token::{LEEWAY_SECONDS, TokenError, TokenKeys, is_expired};

use crate::{
    broker::{Broker, Event},
    config::{AuthConfig, RateLimits, SigningConfig},
    domain::{Email, Password, Username, reject_nul},
    entity::{now, refresh_token, session, user, user::Role},
    error::{AppError, AppResult, on_unique_violation},
    service::rate_limit::{ClientNet, RateLimit},
};

/// One message for an unknown login and for a wrong password: telling them apart would let
/// anyone find out who has an account.
const BAD_CREDENTIALS: &str = "invalid login or password";

/// Refresh tokens we issue are 43 characters. A longer one is not ours and is not even hashed:
/// its length is the client's to choose.
const MAX_REFRESH_TOKEN: usize = 128;

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
}

impl AuthError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "missing access token",
            Self::Token(TokenError::Expired) => "access token expired",
            Self::Token(TokenError::Invalid) => "invalid access token",
            Self::Revoked => "session revoked",
        }
    }
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        AppError::Unauthenticated(err.message())
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
    broker: Arc<dyn Broker>,
    hasher: PasswordHasher,
    tokens: TokenKeys,
    revocations: Arc<Revocations>,
    refresh_ttl: Duration,
    login: LoginLimits,
    register_per_ip: RateLimit<ClientNet>,
    refresh_per_ip: RateLimit<ClientNet>,
    refresh_per_user: RateLimit<Uuid>,
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

/// How long a revoked session can still have unexpired access tokens: the revocation set must
/// remember it that long.
pub fn revocation_horizon(config: &AuthConfig) -> Duration {
    config.access_token_ttl + Duration::from_secs(LEEWAY_SECONDS)
}

impl Auth {
    pub async fn new(
        db: DatabaseConnection,
        config: &AuthConfig,
        limits: &RateLimits,
        revocations: Arc<Revocations>,
        broker: Arc<dyn Broker>,
    ) -> anyhow::Result<Self> {
        let tokens = TokenKeys::new(config, || {
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
        let auth = Self {
            broker,
            hasher: PasswordHasher::new(config.hash_concurrency)?,
            tokens,
            revocations,
            refresh_ttl: config.refresh_token_ttl,
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
            db,
        };
        auth.load_recent_revocations().await?;
        Ok(auth)
    }

    /// Checks an access token: signature, claims, and the session's revocation. No database.
    pub fn authenticate(&self, access_token: &str) -> Result<Viewer, AuthError> {
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

    pub async fn register(&self, input: Registration, client: IpAddr) -> AppResult<Issued> {
        // Before the hash: each registration costs the server an Argon2 computation.
        self.register_per_ip.check(&client.into())?;
        let password_hash = self.hasher.hash(&input.password).await?;
        let txn = self.db.begin().await?;
        let user = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            username: Set(input.username.into_inner()),
            email: Set(input.email.into_inner()),
            password_hash: Set(password_hash),
            role: Set(Role::User),
            created_at: Set(now()),
            deleted_at: Set(None),
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
        let (session_id, refresh_token) = self.start_session(&txn, user.id).await?;
        txn.commit().await?;
        self.issue(user, session_id, refresh_token)
    }

    pub async fn login(
        &self,
        login: &str,
        password: Password,
        client: IpAddr,
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
        self.login.check(&key, client)?;

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
        let txn = self.db.begin().await?;
        let (session_id, refresh_token) = self.start_session(&txn, user.id).await?;
        txn.commit().await?;
        self.issue(user, session_id, refresh_token)
    }

    /// Exchanges a refresh token for a new access token and the next refresh token.
    pub async fn refresh(&self, refresh_token: &str, client: IpAddr) -> AppResult<Issued> {
        self.refresh_per_ip.check(&client.into())?;
        if refresh_token.len() > MAX_REFRESH_TOKEN {
            return Err(AppError::Unauthenticated("invalid refresh token"));
        }
        let hash = hash_refresh_token(refresh_token);
        let found = refresh_token::Entity::find_by_id(hash.clone())
            .find_also_related(session::Entity)
            .one(&self.db)
            .await?;
        let Some((stored, Some(session))) = found else {
            return Err(AppError::Unauthenticated("invalid refresh token"));
        };
        if session.revoked_at.is_some() {
            return Err(AppError::Unauthenticated("session revoked"));
        }
        // Before the token is claimed: a refused refresh leaves it usable.
        self.refresh_per_user.check(&session.user_id)?;
        if stored.used_at.is_some() {
            return Err(self.reuse_detected(session.id).await);
        }
        if stored.expires_at <= now() {
            return Err(AppError::Unauthenticated("refresh token expired"));
        }

        let txn = self.db.begin().await?;
        // Claim the token with a conditional update: of two concurrent refreshes with the same
        // token exactly one matches `used_at IS NULL`; the other is reuse.
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now()))
            .filter(refresh_token::Column::TokenHash.eq(hash))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !claimed {
            txn.rollback().await?;
            return Err(self.reuse_detected(session.id).await);
        }
        let next = self.store_refresh_token(&txn, session.id).await?;
        let user = user::Entity::find_by_id(session.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&txn)
            .await?
            .ok_or(AppError::Unauthenticated("user no longer exists"))?;
        txn.commit().await?;
        self.issue(user, session.id, next)
    }

    /// Ends the session the refresh token belongs to. Any token of the chain will do, used or
    /// not: whoever holds one may end the session. False if there was nothing to end.
    pub async fn logout(&self, refresh_token: &str) -> AppResult<bool> {
        if refresh_token.len() > MAX_REFRESH_TOKEN {
            return Ok(false);
        }
        let stored = refresh_token::Entity::find_by_id(hash_refresh_token(refresh_token))
            .one(&self.db)
            .await?;
        match stored {
            Some(stored) => Ok(self.revoke_sessions(&[stored.session_id]).await? == 1),
            None => Ok(false),
        }
    }

    /// Ends every live session of the viewer; returns how many.
    pub async fn logout_all(&self, viewer: &Viewer) -> AppResult<u64> {
        let ids = self.live_sessions(viewer.user_id).await?;
        self.revoke_sessions(&ids).await
    }

    async fn live_sessions(&self, user_id: Uuid) -> AppResult<Vec<Uuid>> {
        Ok(session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    async fn reuse_detected(&self, session_id: Uuid) -> AppError {
        tracing::warn!(%session_id, "refresh token reuse detected; revoking the session");
        metrics::counter!("auth_refresh_reuse_total").increment(1);
        match self.revoke_sessions(&[session_id]).await {
            Ok(_) => AppError::Unauthenticated("refresh token already used; session revoked"),
            Err(err) => err,
        }
    }

    /// Marks sessions revoked in the database, refuses their access tokens here from now on,
    /// and announces it, so every instance does the same and closes their sockets.
    async fn revoke_sessions(&self, ids: &[Uuid]) -> AppResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin().await?;
        let revoked = self.revoke_in(&txn, ids).await?;
        txn.commit().await?;
        self.revoked(ids);
        Ok(revoked)
    }

    /// The part of a revocation inside the transaction: the rows, and the announcement
    /// (which goes out if and only if the transaction commits).
    async fn revoke_in(&self, txn: &DatabaseTransaction, ids: &[Uuid]) -> AppResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let revoked = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now()))
            .filter(session::Column::Id.is_in(ids.iter().copied()))
            .filter(session::Column::RevokedAt.is_null())
            .exec(txn)
            .await?
            .rows_affected;
        self.broker
            .stage(txn, &Event::Revoked(ids.to_vec()))
            .await?;
        Ok(revoked)
    }

    /// After the commit: refused here at once, without waiting for the announcement to come
    /// back, and announced to the other instances.
    fn revoked(&self, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            self.revocations.insert(*id, Duration::ZERO);
        }
        self.broker.committed(Event::Revoked(ids.to_vec()));
    }

    /// Fills the revocation set from the database: at start-up, and whenever announcements
    /// may have been missed.
    pub async fn load_recent_revocations(&self) -> AppResult<()> {
        let now = now();
        let since = now - self.revocations.horizon();
        let recent: Vec<(Uuid, Option<chrono::DateTime<Utc>>)> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .column(session::Column::RevokedAt)
            .filter(session::Column::RevokedAt.gt(since))
            .into_tuple()
            .all(&self.db)
            .await?;
        for (id, revoked_at) in recent {
            let age = revoked_at.map_or(Duration::ZERO, |t| (now - t).to_std().unwrap_or_default());
            self.revocations.insert(id, age);
        }
        Ok(())
    }

    async fn start_session(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
    ) -> AppResult<(Uuid, String)> {
        let session = session::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            created_at: Set(now()),
            revoked_at: Set(None),
        }
        .insert(conn)
        .await?;
        let refresh_token = self.store_refresh_token(conn, session.id).await?;
        Ok((session.id, refresh_token))
    }

    async fn store_refresh_token(
        &self,
        conn: &impl ConnectionTrait,
        session_id: Uuid,
    ) -> AppResult<String> {
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = now();
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            token_hash: Set(hash_refresh_token(&token)),
            session_id: Set(session_id),
            created_at: Set(now),
            expires_at: Set(now + self.refresh_ttl),
            used_at: Set(None),
        })
        .exec_without_returning(conn)
        .await?;
        Ok(token)
    }

    fn issue(
        &self,
        user: user::Model,
        session_id: Uuid,
        refresh_token: String,
    ) -> AppResult<Issued> {
        Ok(Issued {
            access_token: self.tokens.issue(user.id, session_id, user.role)?,
            refresh_token,
            expires_in: self.tokens.ttl().as_secs(),
            user,
        })
    }
}

/// Refresh tokens carry 256 random bits, so a fast unsalted hash is enough: there is nothing
/// to brute-force, only a stolen database to make useless.
fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
