//! Revoked sessions, checked on every authenticated request without a database round-trip.
//!
//! An access token is a signed statement that stays valid until `exp`; revoking its session
//! must still stop it at once. Each instance keeps the ids of sessions revoked within the last
//! access-token lifetime (older ones can no longer have a live token) and refuses tokens that
//! carry one. The set is filled from the database at start-up and on every revocation, local
//! or announced by another instance.
//!
//! Sockets outlive the check of their token, so they watch their session: every entry into the
//! set, whatever its source (a local logout, another instance's announcement, a re-read after
//! the listener reconnected), cancels the watch of that session's sockets, and only theirs.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use uuid::Uuid;

use crate::entity::{now, session};

pub struct Revocations {
    /// Session id → when the entry may be forgotten.
    revoked: RwLock<HashMap<Uuid, Instant>>,
    /// Watched sessions: the token their sockets wait on, and how many watch it.
    watched: Mutex<HashMap<Uuid, (CancellationToken, usize)>>,
    /// How long a revoked session can still have unexpired tokens.
    horizon: Duration,
}

/// One socket's watch on its session, given back when dropped.
pub struct SessionWatch {
    revocations: Arc<Revocations>,
    session_id: Uuid,
    token: CancellationToken,
}

impl SessionWatch {
    /// Completes when the session is revoked (at once if it already is).
    pub fn revoked(&self) -> WaitForCancellationFutureOwned {
        self.token.clone().cancelled_owned()
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        let mut watched = lock(&self.revocations.watched);
        if let Some((_, watchers)) = watched.get_mut(&self.session_id) {
            *watchers -= 1;
            if *watchers == 0 {
                watched.remove(&self.session_id);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Revocations {
    pub fn new(horizon: Duration) -> Self {
        Self {
            revoked: RwLock::new(HashMap::new()),
            watched: Mutex::new(HashMap::new()),
            horizon,
        }
    }

    /// Starts watching `session_id` for a revocation.
    pub fn watch(self: &Arc<Self>, session_id: Uuid) -> SessionWatch {
        let token = {
            let mut watched = lock(&self.watched);
            let (token, watchers) = watched
                .entry(session_id)
                .or_insert_with(|| (CancellationToken::new(), 0));
            *watchers += 1;
            token.clone()
        };
        // `insert` records first and cancels watches after: a revocation that found no watch
        // to cancel is in the set by now.
        if self.is_revoked(&session_id) {
            token.cancel();
        }
        SessionWatch {
            revocations: self.clone(),
            session_id,
            token,
        }
    }

    pub fn horizon(&self) -> Duration {
        self.horizon
    }

    /// Records a revocation that happened `age` ago. Returns false if it was already known.
    pub fn insert(&self, session_id: Uuid, age: Duration) -> bool {
        let now = Instant::now();
        let Some(remaining) = self.horizon.checked_sub(age) else {
            return false;
        };
        let new = {
            let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
            // Forgetting is done here rather than by a timer: the map is only as large as the
            // revocations of the last token lifetime, and revocations are rare next to reads.
            revoked.retain(|_, forget_at| *forget_at > now);
            revoked.insert(session_id, now + remaining).is_none()
        };
        if let Some((token, _)) = lock(&self.watched).get(&session_id) {
            token.cancel();
        }
        new
    }

    /// Fills the set from the database: at start-up, and whenever announcements may have been
    /// missed (the Postgres listener reconnected).
    pub async fn load_recent(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let now = now();
        let since = now - self.horizon;
        let recent: Vec<(Uuid, Option<chrono::DateTime<Utc>>)> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .column(session::Column::RevokedAt)
            .filter(session::Column::RevokedAt.gt(since))
            .into_tuple()
            .all(db)
            .await?;
        for (id, revoked_at) in recent {
            let age = revoked_at.map_or(Duration::ZERO, |t| (now - t).to_std().unwrap_or_default());
            self.insert(id, age);
        }
        Ok(())
    }

    pub fn is_revoked(&self, session_id: &Uuid) -> bool {
        let revoked = self.revoked.read().unwrap_or_else(|e| e.into_inner());
        revoked.get(session_id).is_some_and(|t| *t > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_the_token_lifetime_only() {
        let r = Revocations::new(Duration::from_secs(60));
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        assert!(r.insert(a, Duration::ZERO));
        assert!(!r.insert(a, Duration::ZERO));
        assert!(r.is_revoked(&a));
        // Revoked longer ago than any token lives: nothing left to refuse.
        assert!(!r.insert(b, Duration::from_secs(61)));
        assert!(!r.is_revoked(&b));
    }

    #[tokio::test]
    async fn watches_end_with_their_session_only() {
        let r = Arc::new(Revocations::new(Duration::from_secs(60)));
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let (first, second, other) = (r.watch(a), r.watch(a), r.watch(b));
        r.insert(a, Duration::ZERO);
        first.revoked().await;
        second.revoked().await;
        assert!(!other.token.is_cancelled());
        // Watching a session revoked already ends at once.
        r.watch(a).revoked().await;
        drop((first, second, other));
        assert!(lock(&r.watched).is_empty(), "watches are given back");
    }
}
