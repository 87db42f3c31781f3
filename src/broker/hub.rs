//! One instance's fan-out point: a broadcast channel per room with subscribers, the users'
//! inboxes (`myEvents`), the revocation set (whose entries close the sockets of the sessions
//! they name), and a signal telling subscribers to catch up from the database.
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::{
    Event, PresenceChange, Revocations, RoomEvent, Typing, UserCache,
    inbox::Inboxes,
    interest::{Change, Interest, Topic},
    shared::{Memo, Shared},
};

/// What a room's subscribers hear.
#[derive(Debug, Clone)]
pub enum RoomNews {
    Event(RoomEvent),
    Typing(Typing),
    /// A member came online or went offline.
    Presence(PresenceChange),
    Deleted,
}

/// A room with subscribers here.
struct Room {
    sender: broadcast::Sender<Shared<RoomNews>>,
    /// The memos of its latest deliveries (`Hub::RECENT`), oldest first.
    recent: VecDeque<Memo>,
}

/// Announcements of presence changes held for the relay while it is busy; past that it misses
/// some, as a subscriber misses what was said while it was away: presence is live only.
const PRESENCE_BUFFER: usize = 256;

pub struct Hub {
    rooms: Mutex<HashMap<Uuid, Room>>,
    /// What this instance needs to hear, for an engine that routes by it.
    interest: Arc<Interest>,
    pub(super) inboxes: Mutex<Inboxes>,
    /// Events a room's channel holds for subscribers that are busy (`WS_SUBSCRIBER_BUFFER`):
    /// the bound on a room's memory, and on how far behind a subscriber may fall.
    pub(super) room_buffer: usize,
    resync: watch::Sender<u64>,
    revocations: Arc<Revocations>,
    /// Presence changes, for the task that relays them to the users' rooms (it needs the
    /// database to know which: `service::chat::presence`).
    presence: broadcast::Sender<Arc<[PresenceChange]>>,
    users: Arc<dyn UserCache>,
}

impl Hub {
    /// Deliveries to a room whose memos are kept (`broker::shared`): its subscribers handle
    /// a delivery within moments of each other unless they have fallen behind, and what a
    /// memo holds is a few copies of the event (answers and payloads, per selection).
    const RECENT: usize = 32;

    pub fn new(
        revocations: Arc<Revocations>,
        room_buffer: usize,
        users: Arc<dyn UserCache>,
    ) -> Arc<Self> {
        let interest = Arc::new(Interest::default());
        Arc::new(Self {
            users,
            rooms: Mutex::new(HashMap::new()),
            inboxes: Mutex::new(Inboxes::new(interest.clone())),
            interest,
            room_buffer,
            resync: watch::channel(0).0,
            revocations,
            presence: broadcast::channel(PRESENCE_BUFFER).0,
        })
    }

    /// Starts receiving a room's events. Subscribe, and wait until the room is `heard`,
    /// before reading the database, so nothing committed in between is missed.
    pub fn subscribe(self: &Arc<Self>, room_id: Uuid) -> RoomSubscription {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = rooms
            .entry(room_id)
            .or_insert_with(|| {
                self.interest.take(Topic::Room(room_id));
                Room {
                    sender: broadcast::channel(self.room_buffer).0,
                    recent: VecDeque::with_capacity(Self::RECENT + 1),
                }
            })
            .sender
            .subscribe();
        RoomSubscription {
            receiver,
            room_id,
            hub: self.clone(),
        }
    }

    /// Resolves once the broker hears `topic`: at once unless it routes by interest.
    pub async fn heard(&self, topic: Topic) {
        self.interest.heard(topic).await;
    }

    /// Makes the hub tell the broker what this instance needs to hear. For an engine that
    /// routes by interest; once.
    pub(super) fn route_interest(&self) -> tokio::sync::mpsc::UnboundedReceiver<Change> {
        let changes = self.interest.route();
        // Everyone hears revocations and the rest, for as long as the instance runs.
        self.interest.take(Topic::Everyone);
        changes
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Changes whenever events may have been missed (the Postgres listener reconnected).
    pub fn resyncs(&self) -> watch::Receiver<u64> {
        self.resync.subscribe()
    }

    pub fn dispatch(&self, event: Event) {
        match event {
            Event::Room(event) => {
                self.inboxes().room_event(&event);
                self.send_to_room(event.room_id(), RoomNews::Event(event));
            }
            Event::RoomDeleted { room_id } => {
                self.inboxes().room_deleted(room_id);
                self.send_to_room(room_id, RoomNews::Deleted);
            }
            Event::Typing(typing) => self.send_to_room(typing.room_id, RoomNews::Typing(typing)),
            Event::ReadUpTo {
                user_id,
                room_id,
                seq,
            } => self.inboxes().read_up_to(user_id, room_id, seq),
            Event::Presence(changes) => {
                // No receiver: the relay has stopped with the server.
                let _ = self.presence.send(changes.into());
            }
            Event::Revoked(sessions) => {
                for session in sessions {
                    self.revocations.insert(session, Duration::ZERO);
                }
            }
            Event::UserChanged(user_id) => self.users.forget(user_id),
        }
    }

    /// Presence changes as every instance hears them.
    pub fn presence_changes(&self) -> broadcast::Receiver<Arc<[PresenceChange]>> {
        self.presence.subscribe()
    }

    /// Whether anyone here is subscribed to a room.
    pub fn has_rooms(&self) -> bool {
        !self
            .rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Tells a room's subscribers here that a member came online or went offline.
    pub fn send_presence(&self, room_id: Uuid, change: PresenceChange) {
        self.send_to_room(room_id, RoomNews::Presence(change));
    }

    pub(super) fn inboxes(&self) -> std::sync::MutexGuard<'_, Inboxes> {
        self.inboxes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every subscriber to read what it may have missed from the database.
    pub fn resync(&self) {
        self.users.forget_all();
        self.resync.send_modify(|generation| *generation += 1);
    }

    fn send_to_room(&self, room_id: Uuid, event: RoomNews) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(room) = rooms.get_mut(&room_id) {
            let delivery = Shared::heard(event);
            room.recent.push_back(delivery.memo.clone());
            if room.recent.len() > Self::RECENT
                && let Some(old) = room.recent.pop_front()
            {
                old.forget();
            }
            // No receivers is fine: nobody here is subscribed.
            let _ = room.sender.send(delivery);
        }
    }
}

/// A room's events for one subscriber; the room's channel goes when its last subscriber does.
pub struct RoomSubscription {
    receiver: broadcast::Receiver<Shared<RoomNews>>,
    room_id: Uuid,
    hub: Arc<Hub>,
}

impl RoomSubscription {
    pub async fn recv(&mut self) -> Result<Shared<RoomNews>, broadcast::error::RecvError> {
        self.receiver.recv().await
    }
}

impl Drop for RoomSubscription {
    fn drop(&mut self) {
        let mut rooms = self.hub.rooms.lock().unwrap_or_else(|e| e.into_inner());
        // Our receiver is still alive here, hence 1. Subscribing takes the same lock, so the
        // count cannot change under us.
        if rooms
            .get(&self.room_id)
            .is_some_and(|room| room.sender.receiver_count() <= 1)
        {
            rooms.remove(&self.room_id);
            self.hub.interest.release(Topic::Room(self.room_id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::inbox::tests::hub;

    #[tokio::test]
    async fn a_room_keeps_the_memos_of_its_latest_deliveries_only() {
        let hub = hub(1024);
        let room_id = Uuid::now_v7();
        let mut subscription = hub.subscribe(room_id);
        for _ in 0..=Hub::RECENT {
            hub.send_to_room(room_id, RoomNews::Deleted);
        }
        let mut kept = Vec::new();
        for _ in 0..=Hub::RECENT {
            let delivery = subscription.recv().await.unwrap();
            kept.push(delivery.memo.get::<()>().is_some());
        }
        // The oldest is forgotten; the latest `RECENT` still have a place.
        assert!(!kept[0]);
        assert!(kept[1..].iter().all(|&kept| kept));
    }
}
