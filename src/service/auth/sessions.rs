//! Sessions: the refresh-token chain (rotation, reuse detection and its grace interval),
//! logout, and revocation, which takes effect here at once and on every other instance
//! through the broker.
//!
//! Each link of a chain is derived from the one before it (an HMAC under a server key), and
//! the access token issued with a link takes its time and id from that link. So whoever
//! presents the same token gets the same answer: two tabs refreshing at once, or a client
//! whose answer was lost on the way, receive the same pair within
//! `REFRESH_TOKEN_REUSE_INTERVAL_SECONDS`, instead of revoking the session. Without the
//! server key, a link says nothing of the next one.
use std::{net::IpAddr, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Auth, AuthError, Device, Issued, TokenError, Viewer};
use crate::{
    broker::Event,
    entity::{now, refresh_token, session, user},
    error::{AppError, AppResult},
    service::{begin_write, detached},
};

/// Refresh tokens we issue are 43 characters. A longer one is not ours and is not even hashed:
/// its length is the client's to choose.
const MAX_REFRESH_TOKEN: usize = 128;

/// A refresh token as stored: the access token issued with it is derived from it.
pub(super) struct StoredToken {
    token: String,
    created_at: DateTime<Utc>,
}

impl Auth {
    /// Exchanges a refresh token for a new access token and the next refresh token.
    pub async fn refresh(
        self: &Arc<Self>,
        refresh_token: &str,
        client: IpAddr,
    ) -> AppResult<Issued> {
        self.refresh_per_ip.check(&client.into())?;
        if refresh_token.len() > MAX_REFRESH_TOKEN {
            return Err(AppError::Unauthenticated("invalid refresh token"));
        }
        let hash = hash_refresh_token(refresh_token);
        // A first look, without a lock: what is refused here costs no transaction.
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
        if stored.used_at.is_none() && stored.expires_at <= now() {
            return Err(AppError::Unauthenticated("refresh token expired"));
        }
        match self.rotate(refresh_token, &hash, session.id).await? {
            Rotated::Issued(issued) => Ok(*issued),
            Rotated::Reused => Err(self.reuse_detected(session.id).await),
        }
    }

    /// Claims the token and stores its successor, in one transaction that holds the session's
    /// row: a logout or an account deletion either committed before (and is seen here) or
    /// waits for this one (and revokes what it issued).
    async fn rotate(&self, token: &str, hash: &str, session_id: Uuid) -> AppResult<Rotated> {
        let txn = begin_write(&self.writer).await?;
        // Of two concurrent refreshes with one token, exactly one matches `used_at IS NULL`.
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now()))
            .filter(refresh_token::Column::TokenHash.eq(hash))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        let session = session::Entity::find_by_id(session_id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or(AppError::Unauthenticated("invalid refresh token"))?;
        if session.revoked_at.is_some() {
            return Err(AppError::Unauthenticated("session revoked"));
        }
        let user = user::Entity::find_by_id(session.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&txn)
            .await?
            .ok_or(AppError::Unauthenticated("user no longer exists"))?;
        let next = self.successor(token);
        let issued = if claimed {
            session::Entity::update_many()
                .col_expr(session::Column::LastUsedAt, Expr::value(now()))
                .filter(session::Column::Id.eq(session.id))
                .exec(&txn)
                .await?;
            self.store_refresh_token(&txn, session.id, next).await?
        } else {
            // Used before: by this client a moment ago (its answer lost, or a second tab), or
            // by someone who copied it. Only the first gets the same pair again.
            let used_at = refresh_token::Entity::find_by_id(hash.to_owned())
                .one(&txn)
                .await?
                .and_then(|t| t.used_at);
            let successor = refresh_token::Entity::find_by_id(hash_refresh_token(&next))
                .one(&txn)
                .await?;
            match (used_at, successor) {
                (Some(used_at), Some(successor)) if now() - used_at <= self.reuse_interval => {
                    StoredToken {
                        token: next,
                        created_at: successor.created_at,
                    }
                }
                _ => return Ok(Rotated::Reused),
            }
        };
        txn.commit().await?;
        Ok(Rotated::Issued(Box::new(
            self.issue(user, session.id, issued)?,
        )))
    }

    /// The viewer a refresh token stands for, without rotating it: how a browser's socket
    /// signs in with its session cookie. The token must be its session's latest, or have been
    /// exchanged within the reuse interval (another tab refreshing just then); the viewer
    /// lasts as long as an access token issued now would.
    pub async fn authenticate_refresh_token(
        &self,
        refresh_token: &str,
    ) -> Result<Viewer, AuthError> {
        let checked = self.check_refresh_token(refresh_token).await;
        super::or_unavailable(checked, "authenticate by a refresh cookie")
    }

    /// `Err` is a failure of the database.
    async fn check_refresh_token(
        &self,
        refresh_token: &str,
    ) -> AppResult<Result<Viewer, AuthError>> {
        let invalid = Ok(Err(AuthError::Token(TokenError::Invalid)));
        if refresh_token.len() > MAX_REFRESH_TOKEN {
            return invalid;
        }
        let found = refresh_token::Entity::find_by_id(hash_refresh_token(refresh_token))
            .find_also_related(session::Entity)
            .one(&self.db)
            .await?;
        let Some((stored, Some(session))) = found else {
            return invalid;
        };
        if session.revoked_at.is_some() || self.revocations.is_revoked(&session.id) {
            return Ok(Err(AuthError::Revoked));
        }
        let current = match stored.used_at {
            None => stored.expires_at > now(),
            Some(used_at) => now() - used_at <= self.reuse_interval,
        };
        if !current {
            return Ok(Err(AuthError::Token(TokenError::Expired)));
        }
        let user = user::Entity::find_by_id(session.user_id)
            .filter(user::Column::DeletedAt.is_null())
            .one(&self.db)
            .await?;
        let Some(user) = user else {
            return Ok(Err(AuthError::Revoked));
        };
        Ok(Ok(Viewer {
            user_id: user.id,
            session_id: session.id,
            role: user.role,
            expires_at: Utc::now().timestamp() + self.tokens.ttl().as_secs() as i64,
        }))
    }

    /// Ends the session the refresh token belongs to. Any token of the chain will do, used or
    /// not: whoever holds one may end the session. False if there was nothing to end.
    pub async fn logout(self: &Arc<Self>, refresh_token: &str) -> AppResult<bool> {
        if refresh_token.len() > MAX_REFRESH_TOKEN {
            return Ok(false);
        }
        let stored = refresh_token::Entity::find_by_id(hash_refresh_token(refresh_token))
            .one(&self.db)
            .await?;
        match stored {
            Some(stored) => {
                let which = session::Column::Id.eq(stored.session_id);
                Ok(self.revoke_sessions(which.into()).await? == 1)
            }
            None => Ok(false),
        }
    }

    async fn reuse_detected(self: &Arc<Self>, session_id: Uuid) -> AppError {
        tracing::warn!(%session_id, "refresh token reuse detected; revoking the session");
        metrics::counter!("auth_refresh_reuse_total").increment(1);
        match self
            .revoke_sessions(session::Column::Id.eq(session_id).into())
            .await
        {
            Ok(_) => AppError::Unauthenticated("refresh token already used; session revoked"),
            Err(err) => err,
        }
    }

    /// Marks the live sessions `which` selects revoked in the database, refuses their access
    /// tokens here from now on, and announces it, so every instance does the same and closes
    /// their sockets. Returns how many it ended.
    pub(super) async fn revoke_sessions(self: &Arc<Self>, which: Condition) -> AppResult<u64> {
        let this = self.clone();
        detached(async move {
            let txn = begin_write(&this.writer).await?;
            let ids = this.revoke_in(&txn, which).await?;
            txn.commit().await?;
            this.revoked(&ids);
            Ok(ids.len() as u64)
        })
        .await
    }

    /// The part of a revocation inside the transaction: the rows (locked until the commit),
    /// and the announcement (which goes out if and only if the transaction commits).
    pub(super) async fn revoke_in(
        &self,
        txn: &DatabaseTransaction,
        which: Condition,
    ) -> AppResult<Vec<Uuid>> {
        let ids: Vec<Uuid> = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now()))
            .filter(which)
            .filter(session::Column::RevokedAt.is_null())
            .exec_with_returning(txn)
            .await?
            .into_iter()
            .map(|session| session.id)
            .collect();
        if !ids.is_empty() {
            super::external::revoke_identities(txn, &ids).await?;
            self.broker.stage(txn, &Event::Revoked(ids.clone())).await?;
        }
        Ok(ids)
    }

    /// After the commit: refused here at once, without waiting for the announcement to come
    /// back, and announced to the other instances.
    pub(super) fn revoked(&self, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            self.revocations.insert(*id, Duration::ZERO);
        }
        self.broker.committed(Event::Revoked(ids.to_vec()));
    }

    /// Opens a session with the first link of its chain (random: nothing comes before it).
    pub(super) async fn start_session(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        device: &Device,
    ) -> AppResult<(Uuid, StoredToken)> {
        let client_ip = Some(device.ip.to_string());
        let session_id =
            insert_session(conn, user_id, device.user_agent.clone(), client_ip).await?;
        let first = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let stored = self.store_refresh_token(conn, session_id, first).await?;
        Ok((session_id, stored))
    }

    async fn store_refresh_token(
        &self,
        conn: &impl ConnectionTrait,
        session_id: Uuid,
        token: String,
    ) -> AppResult<StoredToken> {
        let stored = StoredToken {
            created_at: now(),
            token,
        };
        refresh_token::Entity::insert(refresh_token::ActiveModel {
            token_hash: Set(hash_refresh_token(&stored.token)),
            session_id: Set(session_id),
            created_at: Set(stored.created_at),
            expires_at: Set(stored.created_at + self.refresh_ttl),
            used_at: Set(None),
        })
        .exec_without_returning(conn)
        .await?;
        Ok(stored)
    }

    /// The link after `token`: the same every time it is asked for.
    fn successor(&self, token: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.successor_key).expect("HMAC takes any key");
        mac.update(token.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The pair for `refresh`: its access token is issued at the refresh token's creation and
    /// named after its hash, so the same refresh token always comes with the same access token.
    pub(super) fn issue(
        &self,
        user: user::Model,
        session_id: Uuid,
        refresh: StoredToken,
    ) -> AppResult<Issued> {
        let issued_at = refresh.created_at.timestamp();
        let digest = Sha256::new()
            .chain_update(b"jti:")
            .chain_update(refresh.token.as_bytes())
            .finalize();
        let mut jti = [0; 16];
        jti.copy_from_slice(&digest[..16]);
        let jti = Uuid::from_bytes(jti);
        let access_token = self
            .tokens
            .issue(user.id, session_id, user.role, issued_at, jti)?;
        let expires_at = issued_at + self.tokens.ttl().as_secs() as i64;
        Ok(Issued {
            access_token,
            refresh_token: refresh.token,
            expires_in: (expires_at - Utc::now().timestamp()).max(0) as u64,
            user,
        })
    }
}

enum Rotated {
    Issued(Box<Issued>),
    /// Used before, and not within the grace interval: the session is revoked.
    Reused,
}

/// Refresh tokens carry 256 random bits (or an HMAC of such), so a fast unsalted hash is
/// enough: there is nothing to brute-force, only a stolen database to make useless.
fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A session's row: live, never refreshed, opened by this user agent from this address.
pub(super) async fn insert_session(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    user_agent: Option<String>,
    client_ip: Option<String>,
) -> AppResult<Uuid> {
    let session = session::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        created_at: Set(now()),
        revoked_at: Set(None),
        last_used_at: Set(None),
        user_agent: Set(user_agent),
        client_ip: Set(client_ip),
    }
    .insert(conn)
    .await?;
    Ok(session.id)
}
