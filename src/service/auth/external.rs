//! Users of an identity provider (`JWT_JWKS_URL`). Each subject (`sub`) is a local user,
//! created the first time one of its tokens arrives, and its tokens act in a session of ours,
//! so that everything sessions do works for them too: `sessions` lists it, and `logoutAll`,
//! `revokeSession` or an account's deletion revoke it (tokens refused and sockets closed at
//! once, on every instance).
//!
//! We cannot revoke the provider's tokens, so a revocation marks the subject's identity: its
//! tokens issued (`iat`) until then are refused for good, and the first one issued after opens
//! a new session. The mapping is cached for as long as the revocation set remembers a
//! revocation, so a revoked session is always noticed: by the set, or by the database.
use std::{
    num::NonZeroUsize,
    sync::Mutex,
    time::{Duration, Instant},
};

use lru::LruCache;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::Expr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    Auth, AuthError, TokenError, Viewer,
    jwks::{ExternalClaims, KeySet},
    sessions,
};
use crate::{
    domain::{Email, Username},
    entity::{external_identity, now, session, user, user::Role},
    error::{AppResult, is_unique_violation},
    service::begin_write,
};

/// Subjects whose mapping one instance keeps in memory.
const CACHED: usize = 10_000;

/// The longest `sub` we store.
const MAX_SUBJECT: usize = 255;

pub struct ExternalUsers {
    keys: KeySet,
    cache: Mutex<LruCache<String, Mapped>>,
    /// How long a cached mapping is trusted (the revocation set's horizon).
    cache_for: Duration,
}

/// A subject, as it maps here.
#[derive(Clone)]
struct Mapped {
    user_id: Uuid,
    role: Role,
    session_id: Uuid,
    /// Tokens issued at or before this second are refused.
    not_before: Option<i64>,
    at: Instant,
}

impl ExternalUsers {
    pub fn new(keys: KeySet, cache_for: Duration) -> Self {
        Self {
            keys,
            cache: Mutex::new(LruCache::new(NonZeroUsize::new(CACHED).expect("not zero"))),
            cache_for,
        }
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    fn cached(&self, subject: &str) -> Option<Mapped> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(subject)
            .filter(|m| m.at.elapsed() < self.cache_for)
            .cloned()
    }

    fn remember(&self, subject: &str, mapped: Mapped) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.put(subject.to_owned(), mapped);
    }
}

impl Auth {
    /// The provider's token, verified and mapped to a local user and session. `Err` of the
    /// outer result is a failure of the database.
    pub(super) async fn authenticate_external(
        &self,
        external: &ExternalUsers,
        token: &str,
    ) -> AppResult<Result<Viewer, AuthError>> {
        let claims = match external.keys.verify(token).await {
            Ok(claims) => claims,
            Err(err) => return Ok(Err(err.into())),
        };
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUBJECT {
            return Ok(Err(AuthError::Token(TokenError::Invalid)));
        }
        let cached = external
            .cached(&claims.sub)
            .filter(|m| !self.revocations.is_revoked(&m.session_id));
        let mapped = match cached {
            Some(mapped) => mapped,
            None => match self.map_subject(external, &claims).await? {
                Some(mapped) => {
                    external.remember(&claims.sub, mapped.clone());
                    mapped
                }
                None => return Ok(Err(AuthError::Revoked)),
            },
        };
        if mapped.not_before.is_some_and(|second| claims.iat <= second) {
            return Ok(Err(AuthError::Revoked));
        }
        Ok(Ok(Viewer {
            user_id: mapped.user_id,
            session_id: mapped.session_id,
            role: mapped.role,
            expires_at: claims.exp,
        }))
    }

    /// The subject's user and live session: found, or made. `None` if its user was deleted,
    /// or the token was issued before the subject's last revocation.
    async fn map_subject(
        &self,
        external: &ExternalUsers,
        claims: &ExternalClaims,
    ) -> AppResult<Option<Mapped>> {
        let issuer = external.keys.issuer();
        // Twice at most: a second pass reads what another instance created meanwhile.
        for _ in 0..2 {
            let identity =
                external_identity::Entity::find_by_id((issuer.to_owned(), claims.sub.clone()))
                    .one(&self.db)
                    .await?;
            let Some(identity) = identity else {
                if let Some(mapped) = self.create_external_user(issuer, claims).await? {
                    return Ok(Some(mapped));
                }
                continue;
            };
            let Some(user) = user::Entity::find_by_id(identity.user_id)
                .filter(user::Column::DeletedAt.is_null())
                .one(&self.db)
                .await?
            else {
                return Ok(None);
            };
            let not_before = identity.not_before.map(|at| at.timestamp());
            let mapped = |session_id| Mapped {
                user_id: user.id,
                role: user.role,
                session_id,
                not_before,
                at: Instant::now(),
            };
            // A token from before the revocation opens nothing: it is refused.
            if not_before.is_some_and(|second| claims.iat <= second) {
                return Ok(None);
            }
            let live = match identity.session_id {
                Some(id) => session::Entity::find_by_id(id)
                    .filter(session::Column::RevokedAt.is_null())
                    .one(&self.db)
                    .await?
                    .map(|s| s.id),
                None => None,
            };
            if let Some(session_id) = live {
                return Ok(Some(mapped(session_id)));
            }
            if let Some(session_id) = self.reopen(&identity).await? {
                return Ok(Some(mapped(session_id)));
            }
        }
        Err(anyhow::anyhow!("an external identity changed under two attempts to map it").into())
    }

    /// A new session for an identity whose last one was revoked; `None` if another instance
    /// opened one first (the identity no longer names the revoked one).
    async fn reopen(&self, identity: &external_identity::Model) -> AppResult<Option<Uuid>> {
        let txn = begin_write(&self.writer).await?;
        let session_id = insert_session(&txn, identity.user_id).await?;
        let mut update = external_identity::Entity::update_many()
            .col_expr(
                external_identity::Column::SessionId,
                Expr::value(session_id),
            )
            .filter(external_identity::Column::Issuer.eq(&identity.issuer))
            .filter(external_identity::Column::Subject.eq(&identity.subject));
        update = match identity.session_id {
            Some(old) => update.filter(external_identity::Column::SessionId.eq(old)),
            None => update.filter(external_identity::Column::SessionId.is_null()),
        };
        if update.exec(&txn).await?.rows_affected == 1 {
            txn.commit().await?;
            Ok(Some(session_id))
        } else {
            Ok(None)
        }
    }

    /// The subject's first token: a user, a session and the identity that ties them, named
    /// after its `preferred_username` and `email` where they are free (an address another
    /// account has is not taken over: that account stays its owner's). `None` if another
    /// instance created the identity first.
    async fn create_external_user(
        &self,
        issuer: &str,
        claims: &ExternalClaims,
    ) -> AppResult<Option<Mapped>> {
        let digest = hex::encode(Sha256::digest(format!("{issuer}\n{}", claims.sub)));
        let fallback = (
            format!("user_{}", &digest[..12]),
            format!("{}@external.invalid", &digest[..24]),
        );
        let preferred = (
            claims
                .preferred_username
                .as_deref()
                .and_then(|name| Username::parse("username", name).ok())
                .map_or_else(|| fallback.0.clone(), Username::into_inner),
            claims
                .email
                .as_deref()
                .and_then(|email| Email::parse("email", email).ok())
                .map(Email::into_inner),
        );
        let verified = preferred.1.is_some() && claims.email_verified;
        let attempts = [
            (
                preferred.0,
                preferred.1.unwrap_or(fallback.1.clone()),
                verified,
            ),
            (fallback.0, fallback.1, false),
        ];
        for (username, email, verified) in attempts {
            let txn = begin_write(&self.writer).await?;
            let user = user::ActiveModel {
                id: Set(Uuid::now_v7()),
                username: Set(username),
                email: Set(email),
                password_hash: Set(self.hasher.unknowable()),
                role: Set(Role::User),
                created_at: Set(now()),
                email_verified_at: Set(verified.then(now)),
                ..Default::default()
            }
            .insert(&txn)
            .await;
            let user = match user {
                Ok(user) => user,
                // Taken: the next attempt, with names made from the subject.
                Err(err) if is_unique_violation(&err) => continue,
                Err(err) => return Err(err.into()),
            };
            let session_id = insert_session(&txn, user.id).await?;
            let identity = external_identity::ActiveModel {
                issuer: Set(issuer.to_owned()),
                subject: Set(claims.sub.clone()),
                user_id: Set(user.id),
                session_id: Set(Some(session_id)),
                not_before: Set(None),
                created_at: Set(now()),
            }
            .insert(&txn)
            .await;
            match identity {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => return Ok(None),
                Err(err) => return Err(err.into()),
            }
            txn.commit().await?;
            tracing::info!(user_id = %user.id, "created a user for an identity provider's subject");
            return Ok(Some(Mapped {
                user_id: user.id,
                role: user.role,
                session_id,
                not_before: None,
                at: Instant::now(),
            }));
        }
        Ok(None)
    }
}

/// A session for a subject's tokens: no refresh tokens (the provider refreshes them).
async fn insert_session(conn: &impl ConnectionTrait, user_id: Uuid) -> AppResult<Uuid> {
    sessions::insert_session(conn, user_id, Some("identity provider".into()), None).await
}

/// Marks the identities whose sessions `ids` were just revoked: their tokens issued until now
/// are refused from now on.
pub(super) async fn revoke_identities(conn: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<()> {
    external_identity::Entity::update_many()
        .col_expr(external_identity::Column::NotBefore, Expr::value(now()))
        .filter(external_identity::Column::SessionId.is_in(ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(())
}
