//! How many sockets each user holds on this instance, for `WS_MAX_SOCKETS_PER_USER` (one user,
//! or one stolen token, must not be able to take every file descriptor of the server), and for
//! presence: a user's first socket here brings them online, their last takes them offline.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use uuid::Uuid;

use crate::service::chat::Presence;

pub struct Sockets {
    per_user: Mutex<HashMap<Uuid, usize>>,
    /// 0: no limit.
    max_per_user: usize,
    presence: Arc<Presence>,
}

/// One socket's place in its user's count, given back when dropped.
pub struct Claim {
    sockets: Arc<Sockets>,
    user_id: Uuid,
}

impl Sockets {
    pub fn new(max_per_user: usize, presence: Arc<Presence>) -> Arc<Self> {
        Arc::new(Self {
            per_user: Mutex::new(HashMap::new()),
            max_per_user,
            presence,
        })
    }

    /// A place for one more socket of `user_id`, or `None` if the user holds the most allowed.
    pub fn claim(self: &Arc<Self>, user_id: Uuid) -> Option<Claim> {
        let mut per_user = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        let held = per_user.entry(user_id).or_default();
        if self.max_per_user > 0 && *held >= self.max_per_user {
            return None;
        }
        *held += 1;
        if *held == 1 {
            self.presence.set(user_id, true);
        }
        Some(Claim {
            sockets: self.clone(),
            user_id,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut per_user = self
            .sockets
            .per_user
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(held) = per_user.get_mut(&self.user_id) {
            *held -= 1;
            if *held == 0 {
                per_user.remove(&self.user_id);
                self.sockets.presence.set(self.user_id, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_counted_per_user_and_given_back() {
        let sockets = Sockets::new(2, Arc::default());
        let (ana, bo) = (Uuid::now_v7(), Uuid::now_v7());
        let first = sockets.claim(ana).unwrap();
        let _second = sockets.claim(ana).unwrap();
        assert!(sockets.claim(ana).is_none());
        assert!(sockets.claim(bo).is_some(), "other users are not affected");
        drop(first);
        assert!(sockets.claim(ana).is_some());
    }

    #[test]
    fn zero_means_no_limit() {
        let sockets = Sockets::new(0, Arc::default());
        let user = Uuid::now_v7();
        let claims: Vec<_> = (0..100).filter_map(|_| sockets.claim(user)).collect();
        assert_eq!(claims.len(), 100);
    }
}
