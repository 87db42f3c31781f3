//! Sessions: the refresh-token chain (rotation and reuse detection), logout, and revocation,
//! which takes effect here at once and on every other instance through the broker.
use std::{net::IpAddr, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, QueryFilter, QuerySelect, TransactionTrait, sea_query::Expr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Auth, Issued, Viewer};
use crate::{
    broker::Event,
    entity::{now, refresh_token, session, user},
    error::{AppError, AppResult},
};

/// Refresh tokens we issue are 43 characters. A longer one is not ours and is not even hashed:
/// its length is the client's to choose.
const MAX_REFRESH_TOKEN: usize = 128;

impl Auth {
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

    pub(super) async fn live_sessions(&self, user_id: Uuid) -> AppResult<Vec<Uuid>> {
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
    pub(super) async fn revoke_in(
        &self,
        txn: &DatabaseTransaction,
        ids: &[Uuid],
    ) -> AppResult<u64> {
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
    pub(super) fn revoked(&self, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            self.revocations.insert(*id, Duration::ZERO);
        }
        self.broker.committed(Event::Revoked(ids.to_vec()));
    }

    pub(super) async fn start_session(
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

    pub(super) fn issue(
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
