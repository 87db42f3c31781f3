//! Purging what no longer counts: refresh tokens past their expiry, and sessions that can no
//! longer have a live token (left with no unexpired refresh token, or revoked longer ago than
//! an access token lives); and mailed tokens past their expiry. Without it both tables grow by a row per login and per refresh,
//! for good. Every instance purges on a schedule; the deletes are the same wherever they run.
//!
//! Deletes go a batch at a time, so a purge never holds many locks or a long transaction.
use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, ExprTrait, QueryFilter,
    sea_query::{Expr, IntoCondition, Query},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Auth;
use crate::{
    entity::{email_token, now, refresh_token, session},
    error::AppResult,
    service::begin_write,
};

const BATCH: u64 = 1000;

/// What one purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub mail_tokens: u64,
}

impl Auth {
    /// Purges every `interval`, until `shutdown`.
    pub fn purge_periodically(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
                match self.purge().await {
                    Ok(purged) => tracing::debug!(?purged, "purged expired sessions"),
                    Err(err) => tracing::warn!(error = %err, "purging expired sessions failed"),
                }
            }
        });
    }

    pub async fn purge(&self) -> AppResult<Purged> {
        let now = now();
        let mut purged = Purged::default();
        loop {
            let (tokens, sessions) = self.purge_expired(now).await?;
            purged.refresh_tokens += tokens;
            purged.sessions += sessions;
            if tokens < BATCH {
                break;
            }
        }
        // Older revocations are out of the revocation set, and their tokens long expired.
        // Their refresh tokens go with them (the foreign key cascades).
        let revoked_before = now - self.revocations.horizon();
        purged.sessions += self
            .delete_in_batches::<session::Entity>(
                session::Column::Id,
                session::Column::RevokedAt
                    .lte(revoked_before)
                    .into_condition(),
            )
            .await?;
        purged.mail_tokens += self
            .delete_in_batches::<email_token::Entity>(
                email_token::Column::TokenHash,
                email_token::Column::ExpiresAt.lte(now).into_condition(),
            )
            .await?;
        Ok(purged)
    }

    /// Deletes the rows of `E` that match `which`, `BATCH` at a time (by their key, `key`);
    /// returns how many.
    async fn delete_in_batches<E: EntityTrait>(
        &self,
        key: E::Column,
        which: Condition,
    ) -> AppResult<u64> {
        let mut deleted = 0;
        loop {
            let batch = Query::select()
                .column(key)
                .from(E::default())
                .cond_where(which.clone())
                .limit(BATCH)
                .to_owned();
            let rows = E::delete_many()
                .filter(key.in_subquery(batch))
                .exec(&self.writer)
                .await?
                .rows_affected;
            deleted += rows;
            if rows < BATCH {
                return Ok(deleted);
            }
        }
    }

    /// One batch of expired refresh tokens, and the sessions they leave with none: each
    /// refresh renews a session's expiry with its new token, so a session whose last token
    /// expired can never be renewed, and its last access token expired long ago.
    async fn purge_expired(&self, now: DateTime<Utc>) -> AppResult<(u64, u64)> {
        let txn = begin_write(&self.writer).await?;
        let batch = Query::select()
            .column(refresh_token::Column::TokenHash)
            .from(refresh_token::Entity)
            .and_where(refresh_token::Column::ExpiresAt.lte(now))
            .limit(BATCH)
            .to_owned();
        let expired = refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::TokenHash.in_subquery(batch))
            .exec_with_returning(&txn)
            .await?;
        let touched: HashSet<Uuid> = expired.iter().map(|token| token.session_id).collect();
        let token_left = Query::select()
            .expr(Expr::val(1))
            .from(refresh_token::Entity)
            .and_where(
                Expr::col((refresh_token::Entity, refresh_token::Column::SessionId))
                    .equals((session::Entity, session::Column::Id)),
            )
            .to_owned();
        let sessions = session::Entity::delete_many()
            .filter(session::Column::Id.is_in(touched))
            .filter(Expr::exists(token_left).not())
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok((expired.len() as u64, sessions))
    }
}
