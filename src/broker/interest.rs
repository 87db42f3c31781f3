//! What this instance follows, for an engine that routes by interest (NATS): the rooms that
//! have subscribers here or members whose inbox is open here, the users whose inbox is open
//! here, and what every instance hears. The hub counts who needs what; the first to need a
//! topic has the engine subscribe to it, the last to let go has it unsubscribe.
//!
//! An engine that carries everything to every instance (LISTEN/NOTIFY, the in-memory broker)
//! routes nothing: nothing is counted and every topic is followed already.
use std::{
    collections::{HashMap, hash_map::Entry},
    sync::{Mutex, OnceLock},
};

use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::db::QUERY_DEADLINE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Room(Uuid),
    User(Uuid),
    /// What every instance hears: revocations, presence, changed users.
    Everyone,
}

/// What the engine is asked to do, in the order the hub decided it.
pub enum Change {
    /// Subscribe, and say `true` on the sender once the subscription is in force.
    Follow(Topic, watch::Sender<bool>),
    Unfollow(Topic),
}

#[derive(Default)]
pub(super) struct Interest {
    engine: OnceLock<mpsc::UnboundedSender<Change>>,
    /// Each topic followed: how many need it, and whether the engine hears it yet.
    topics: Mutex<HashMap<Topic, (usize, watch::Receiver<bool>)>>,
}

impl Interest {
    /// From now on, changes go to the receiver. Once per hub.
    pub fn route(&self) -> mpsc::UnboundedReceiver<Change> {
        let (sender, receiver) = mpsc::unbounded_channel();
        assert!(self.engine.set(sender).is_ok(), "one engine routes a hub");
        receiver
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, (usize, watch::Receiver<bool>)>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more needs `topic`.
    pub fn take(&self, topic: Topic) {
        let Some(engine) = self.engine.get() else {
            return;
        };
        match self.topics().entry(topic) {
            Entry::Occupied(mut entry) => entry.get_mut().0 += 1,
            Entry::Vacant(entry) => {
                let (heard, hearing) = watch::channel(false);
                // Sent under the lock, so the engine sees follows and unfollows in order. No
                // receiver: the engine stopped with the server.
                let _ = engine.send(Change::Follow(topic, heard));
                entry.insert((1, hearing));
            }
        }
    }

    /// One fewer needs `topic`.
    pub fn release(&self, topic: Topic) {
        let Some(engine) = self.engine.get() else {
            return;
        };
        let mut topics = self.topics();
        if let Entry::Occupied(mut entry) = topics.entry(topic) {
            entry.get_mut().0 -= 1;
            if entry.get().0 == 0 {
                entry.remove();
                let _ = engine.send(Change::Unfollow(topic));
            }
        }
    }

    /// Resolves once the engine hears `topic` (at once where it hears everything, or where
    /// nobody follows it). Bounded: an engine that is away subscribes when it is back, and
    /// its subscribers then catch up from the database anyway.
    pub async fn heard(&self, topic: Topic) {
        let hearing = self
            .topics()
            .get(&topic)
            .map(|(_, hearing)| hearing.clone());
        if let Some(mut hearing) = hearing {
            let _ = tokio::time::timeout(QUERY_DEADLINE, hearing.wait_for(|heard| *heard)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(receiver: &mut mpsc::UnboundedReceiver<Change>) -> Vec<(Topic, bool)> {
        let mut seen = Vec::new();
        while let Ok(change) = receiver.try_recv() {
            seen.push(match change {
                Change::Follow(topic, _) => (topic, true),
                Change::Unfollow(topic) => (topic, false),
            });
        }
        seen
    }

    #[test]
    fn the_first_to_need_a_topic_follows_it_and_the_last_to_let_go_unfollows_it() {
        let interest = Interest::default();
        let room = Topic::Room(Uuid::now_v7());
        // Nothing routed: nothing counted.
        interest.take(room);
        interest.release(room);
        let mut receiver = interest.route();
        interest.take(room);
        interest.take(room);
        interest.release(room);
        assert_eq!(changes(&mut receiver), [(room, true)]);
        interest.release(room);
        assert_eq!(changes(&mut receiver), [(room, false)]);
        // Letting go of what nobody follows changes nothing.
        interest.release(room);
        interest.take(room);
        assert_eq!(changes(&mut receiver), [(room, true)]);
    }

    #[tokio::test]
    async fn heard_waits_for_the_engine_and_not_where_nothing_routes() {
        let interest = Interest::default();
        let user = Topic::User(Uuid::now_v7());
        interest.heard(user).await;
        let mut receiver = interest.route();
        interest.take(user);
        let Ok(Change::Follow(_, heard)) = receiver.try_recv() else {
            panic!("followed");
        };
        let waiting = interest.heard(user);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), &mut waiting)
                .await
                .is_err(),
            "not heard yet"
        );
        heard.send_replace(true);
        waiting.await;
    }
}
