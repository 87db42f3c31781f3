//! Revoked sessions, checked on every authenticated request without a database round-trip.
//!
//! An access token is a signed statement that stays valid until `exp`; revoking its session
//! must still stop it at once. Each instance keeps the ids of sessions revoked within the last
//! access-token lifetime (older ones can no longer have a live token) and refuses tokens that
//! carry one. The set is filled from the database at start-up and on every revocation, local
//! or announced by another instance.
use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use uuid::Uuid;

pub struct Revocations {
    /// Session id → when the entry may be forgotten.
    revoked: RwLock<HashMap<Uuid, Instant>>,
    /// How long a revoked session can still have unexpired tokens.
    horizon: Duration,
}

impl Revocations {
    pub fn new(horizon: Duration) -> Self {
        Self {
            revoked: RwLock::new(HashMap::new()),
            horizon,
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
        let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        // Forgetting is done here rather than by a timer: the map is only as large as the
        // revocations of the last token lifetime, and revocations are rare next to reads.
        revoked.retain(|_, forget_at| *forget_at > now);
        revoked.insert(session_id, now + remaining).is_none()
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
}
