//! Users' inboxes: what one `myEvents` subscription hears of all the rooms its user is in, in
//! one channel, not one per room.
//!
//! The hub keeps, for each inbox, where its user stands in each room (member or not, as of
//! which event), and an index from rooms to the inboxes of their members, so that a room's
//! event reaches its members' inboxes without a query. Where the user stands comes from the
//! database when the inbox opens (and again after a resync) and then from the membership
//! events heard: whichever is newer by event seq wins, so an event that commits while the
//! database is read is neither lost nor undone by the read, whatever order the two arrive in.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    Hub, RoomEvent,
    interest::{Interest, Topic},
};
use crate::entity::room_event::EventKind;

/// What an inbox hears: in the user's rooms, every message, settings change and change of
/// their own role; their own arrivals, departures and read markers; rooms deleted.
#[derive(Debug, Clone)]
pub enum Mine {
    Event(RoomEvent),
    RoomDeleted(Uuid),
    /// The user read a room up to message `seq` (on any of their devices).
    ReadUpTo {
        room_id: Uuid,
        seq: i64,
    },
}

/// One inbox, registered with its instance's hub until dropped.
pub struct Inbox {
    id: u64,
    hub: Arc<Hub>,
    receiver: mpsc::Receiver<Mine>,
}

/// An inbox fell further behind than the hub buffers (`WS_SUBSCRIBER_BUFFER`): it hears
/// nothing more.
#[derive(Debug)]
pub struct FellBehind;

pub(super) struct Inboxes {
    /// The hub's: an inbox needs its user's topic, and the topics of the user's rooms.
    interest: Arc<Interest>,
    next_id: u64,
    inboxes: HashMap<u64, Entry>,
    by_user: HashMap<Uuid, Vec<u64>>,
    /// The inboxes of each room's members.
    by_room: HashMap<Uuid, HashSet<u64>>,
}

struct Entry {
    user_id: Uuid,
    /// Gone once the inbox fell behind. (A channel that allocates as it fills: most inboxes
    /// never hold more than a few events.)
    sender: Option<mpsc::Sender<Mine>>,
    rooms: HashMap<Uuid, Standing>,
}

impl Entry {
    fn send(&mut self, mine: Mine) {
        if let Some(sender) = &self.sender
            && sender.try_send(mine).is_err()
        {
            self.sender = None;
        }
    }
}

/// Where a user stands in a room, as of the event `seq`.
#[derive(Debug, Clone, Copy)]
struct Standing {
    member: bool,
    seq: i64,
    /// Learned since the last read began: a read must not undo it if it is newer.
    fresh: bool,
}

impl Hub {
    /// Opens an inbox for `user_id`. It hears nothing of rooms until `read` says which
    /// rooms the user is in; read them after opening it, so nothing in between is missed.
    pub fn inbox(self: &Arc<Self>, user_id: Uuid) -> Inbox {
        let mut inboxes = self.inboxes();
        let id = inboxes.next_id;
        inboxes.next_id += 1;
        let (sender, receiver) = mpsc::channel(self.room_buffer);
        inboxes.inboxes.insert(
            id,
            Entry {
                user_id,
                sender: Some(sender),
                rooms: HashMap::new(),
            },
        );
        let ids = inboxes.by_user.entry(user_id).or_default();
        ids.push(id);
        if ids.len() == 1 {
            inboxes.interest.take(Topic::User(user_id));
        }
        drop(inboxes);
        Inbox {
            id,
            hub: self.clone(),
            receiver,
        }
    }
}

impl Inbox {
    /// Before (re)reading the user's rooms: what is heard from now on is newer than the read
    /// may be, and what was known before is superseded by it.
    pub fn reading(&self) {
        let mut inboxes = self.hub.inboxes();
        if let Some(entry) = inboxes.inboxes.get_mut(&self.id) {
            for standing in entry.rooms.values_mut() {
                standing.fresh = false;
            }
        }
    }

    /// The rooms the user is in, read from the database after `reading`, each with its
    /// newest event seq at the time.
    pub fn read(&self, rooms: impl IntoIterator<Item = (Uuid, i64)>) {
        let mut inboxes = self.hub.inboxes();
        let Some(entry) = inboxes.inboxes.get_mut(&self.id) else {
            return;
        };
        let mut read = HashMap::new();
        for (room_id, seq) in rooms {
            let standing = match entry.rooms.get(&room_id) {
                Some(heard) if heard.fresh && heard.seq > seq => *heard,
                _ => Standing {
                    member: true,
                    seq,
                    fresh: true,
                },
            };
            read.insert(room_id, standing);
        }
        // Heard during the read and not in it: newer than the read.
        for (room_id, heard) in &entry.rooms {
            if heard.fresh && !read.contains_key(room_id) {
                read.insert(*room_id, *heard);
            }
        }
        let before: Vec<Uuid> = entry.rooms.keys().copied().collect();
        entry.rooms = read;
        let now: HashSet<Uuid> = entry
            .rooms
            .iter()
            .filter(|(_, standing)| standing.member)
            .map(|(room_id, _)| *room_id)
            .collect();
        // Indexed before unindexed: a room in both stays followed throughout.
        for &room_id in &now {
            inboxes.index(room_id, self.id);
        }
        for room_id in before {
            if !now.contains(&room_id) {
                inboxes.unindex(room_id, self.id);
            }
        }
    }

    pub async fn recv(&mut self) -> Result<Mine, FellBehind> {
        // The hub drops its sender only when the inbox fell behind: the entry lives as long as
        // the inbox.
        self.receiver.recv().await.ok_or(FellBehind)
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut inboxes = self.hub.inboxes();
        let Some(entry) = inboxes.inboxes.remove(&self.id) else {
            return;
        };
        if let Some(ids) = inboxes.by_user.get_mut(&entry.user_id) {
            ids.retain(|&id| id != self.id);
            if ids.is_empty() {
                inboxes.by_user.remove(&entry.user_id);
                inboxes.interest.release(Topic::User(entry.user_id));
            }
        }
        for room_id in entry.rooms.keys() {
            inboxes.unindex(*room_id, self.id);
        }
    }
}

impl Inboxes {
    pub(super) fn new(interest: Arc<Interest>) -> Self {
        Self {
            interest,
            next_id: 0,
            inboxes: HashMap::new(),
            by_user: HashMap::new(),
            by_room: HashMap::new(),
        }
    }

    pub(super) fn room_event(&mut self, event: &RoomEvent) {
        let room_id = event.room_id();
        if let RoomEvent::Change(change) = event
            && matches!(change.kind, EventKind::Joined | EventKind::Left)
        {
            let member = change.kind == EventKind::Joined;
            for id in self
                .by_user
                .get(&change.user_id)
                .cloned()
                .unwrap_or_default()
            {
                if self.stand(id, room_id, member, change.seq) {
                    self.send(id, Mine::Event(event.clone()));
                }
            }
            return;
        }
        let Some(ids) = self.by_room.get(&room_id) else {
            return;
        };
        for id in ids {
            let Some(entry) = self.inboxes.get_mut(id) else {
                continue;
            };
            let wanted = match event {
                RoomEvent::Message(_) => true,
                RoomEvent::Change(change) => {
                    change.kind == EventKind::RoomUpdated || change.user_id == entry.user_id
                }
                // A list of rooms does not show them.
                RoomEvent::MessageChange(..) => false,
            };
            if wanted {
                entry.send(Mine::Event(event.clone()));
            }
        }
    }

    pub(super) fn read_up_to(&mut self, user_id: Uuid, room_id: Uuid, seq: i64) {
        for id in self.by_user.get(&user_id).cloned().unwrap_or_default() {
            self.send(id, Mine::ReadUpTo { room_id, seq });
        }
    }

    pub(super) fn room_deleted(&mut self, room_id: Uuid) {
        let ids = self.by_room.remove(&room_id).unwrap_or_default();
        if !ids.is_empty() {
            self.interest.release(Topic::Room(room_id));
        }
        for id in ids {
            if let Some(entry) = self.inboxes.get_mut(&id) {
                entry.rooms.remove(&room_id);
                entry.send(Mine::RoomDeleted(room_id));
            }
        }
    }

    /// Records that inbox `id`'s user joined or left a room as of event `seq`, unless something
    /// newer is known. True if it was news.
    fn stand(&mut self, id: u64, room_id: Uuid, member: bool, seq: i64) -> bool {
        let Some(entry) = self.inboxes.get_mut(&id) else {
            return false;
        };
        if entry.rooms.get(&room_id).is_some_and(|s| s.seq >= seq) {
            return false;
        }
        entry.rooms.insert(
            room_id,
            Standing {
                member,
                seq,
                fresh: true,
            },
        );
        if member {
            self.index(room_id, id);
        } else {
            self.unindex(room_id, id);
        }
        true
    }

    fn send(&mut self, id: u64, mine: Mine) {
        if let Some(entry) = self.inboxes.get_mut(&id) {
            entry.send(mine);
        }
    }

    fn index(&mut self, room_id: Uuid, id: u64) {
        let ids = self.by_room.entry(room_id).or_default();
        if ids.is_empty() {
            self.interest.take(Topic::Room(room_id));
        }
        ids.insert(id);
    }

    fn unindex(&mut self, room_id: Uuid, id: u64) {
        if let Some(ids) = self.by_room.get_mut(&room_id) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_room.remove(&room_id);
                self.interest.release(Topic::Room(room_id));
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        broker::{Event, Revocations, interest::Change},
        entity::{
            now,
            room_event::{self, LeaveReason},
        },
    };

    /// No users: these tests name none.
    struct NoUsers;

    #[async_trait::async_trait]
    impl crate::broker::UserCache for NoUsers {
        async fn author(
            &self,
            _: Uuid,
        ) -> Result<Option<Arc<crate::entity::user::Model>>, sea_orm::DbErr> {
            Ok(None)
        }
        fn forget(&self, _: Uuid) {}
        fn forget_all(&self) {}
    }

    pub(in crate::broker) fn hub(buffer: usize) -> Arc<Hub> {
        let revocations = Arc::new(Revocations::new(Duration::from_secs(60)));
        Hub::new(revocations, buffer, Arc::new(NoUsers))
    }

    fn membership(room_id: Uuid, user_id: Uuid, seq: i64, joined: bool) -> Event {
        let (kind, reason) = match joined {
            true => (EventKind::Joined, None),
            false => (EventKind::Left, Some(LeaveReason::Removed)),
        };
        Event::Room(RoomEvent::Change(Arc::new(room_event::Model {
            room_id,
            seq,
            kind,
            user_id,
            actor_id: None,
            role: None,
            reason,
            name: None,
            topic: None,
            created_at: now(),
            message_id: None,
            emoji: None,
        })))
    }

    fn renamed(room_id: Uuid, seq: i64) -> Event {
        let Event::Room(RoomEvent::Change(change)) = membership(room_id, Uuid::now_v7(), seq, true)
        else {
            unreachable!()
        };
        Event::Room(RoomEvent::Change(Arc::new(room_event::Model {
            kind: EventKind::RoomUpdated,
            name: Some("renamed".into()),
            ..(*change).clone()
        })))
    }

    /// The rooms whose renames reach the inbox.
    async fn hears(hub: &Hub, inbox: &mut Inbox, rooms: &[Uuid]) -> Vec<Uuid> {
        for &room in rooms {
            hub.dispatch(renamed(room, 1_000));
        }
        let mut heard = Vec::new();
        while let Ok(Ok(Mine::Event(event))) =
            tokio::time::timeout(Duration::from_millis(20), inbox.recv()).await
        {
            heard.push(event.room_id());
        }
        heard
    }

    #[tokio::test]
    async fn what_is_heard_while_reading_wins_when_it_is_newer() {
        let hub = hub(16);
        let user = Uuid::now_v7();
        let [kept, left_meanwhile, left_before, joined_meanwhile] = [(); 4].map(|_| Uuid::now_v7());
        let mut inbox = hub.inbox(user);
        inbox.reading();
        // Heard while the read runs: a departure the read did not see (seq 9, after the
        // room's 5 as read), one it did see (seq 3: the user is back in since, as the read
        // says), and a join of a room the read did not list.
        hub.dispatch(membership(left_meanwhile, user, 9, false));
        hub.dispatch(membership(left_before, user, 3, false));
        hub.dispatch(membership(joined_meanwhile, user, 4, true));
        inbox.read([(kept, 5), (left_meanwhile, 5), (left_before, 5)]);
        let mut heard = Vec::new();
        while let Ok(Ok(mine)) = tokio::time::timeout(Duration::from_millis(20), inbox.recv()).await
        {
            heard.push(mine);
        }
        assert_eq!(
            heard.len(),
            3,
            "each membership event reached the inbox once"
        );
        let mut rooms = hears(
            &hub,
            &mut inbox,
            &[kept, left_meanwhile, left_before, joined_meanwhile],
        )
        .await;
        rooms.sort();
        let mut wanted = vec![kept, left_before, joined_meanwhile];
        wanted.sort();
        assert_eq!(rooms, wanted);

        // Events out of order (two commits announced in the other order): the older one does
        // not undo the newer.
        hub.dispatch(membership(kept, user, 1_002, false));
        hub.dispatch(membership(kept, user, 1_001, true));
        let _ = tokio::time::timeout(Duration::from_millis(20), inbox.recv()).await;
        assert_eq!(hears(&hub, &mut inbox, &[kept]).await, Vec::<Uuid>::new());
    }

    #[tokio::test]
    async fn an_inbox_follows_its_user_and_rooms_without_letting_go_on_a_reread() {
        let hub = hub(16);
        let mut changes = hub.route_interest();
        let user = Uuid::now_v7();
        let [kept, dropped, joined] = [(); 3].map(|_| Uuid::now_v7());
        let inbox = hub.inbox(user);
        inbox.reading();
        inbox.read([(kept, 1), (dropped, 1)]);
        inbox.reading();
        inbox.read([(kept, 2), (joined, 2)]);
        drop(inbox);
        let mut seen = Vec::new();
        while let Ok(change) = changes.try_recv() {
            seen.push(match change {
                Change::Follow(topic, _) => (topic, true),
                Change::Unfollow(topic) => (topic, false),
            });
        }
        let (room, user) = (Topic::Room, Topic::User(user));
        let followed: Vec<_> = seen.iter().filter(|(_, f)| *f).map(|(t, _)| *t).collect();
        let unfollowed: Vec<_> = seen.iter().filter(|(_, f)| !*f).map(|(t, _)| *t).collect();
        assert_eq!(
            followed.len(),
            5,
            "everyone, the user and three rooms, once each: {followed:?}"
        );
        for topic in [user, room(kept), room(dropped), room(joined)] {
            assert!(followed.contains(&topic));
        }
        // `kept` is followed throughout the re-read, and let go with the inbox.
        assert_eq!(unfollowed.iter().filter(|t| **t == room(kept)).count(), 1);
        assert!(unfollowed.contains(&room(dropped)) && unfollowed.contains(&user));
        assert!(!unfollowed.contains(&Topic::Everyone));
    }

    #[tokio::test]
    async fn an_inbox_that_falls_behind_hears_nothing_more() {
        let hub = hub(4);
        let user = Uuid::now_v7();
        let room = Uuid::now_v7();
        let mut inbox = hub.inbox(user);
        inbox.reading();
        inbox.read([(room, 0)]);
        for seq in 1..=40 {
            hub.dispatch(renamed(room, seq));
        }
        for _ in 0..4 {
            assert!(matches!(inbox.recv().await, Ok(Mine::Event(_))));
        }
        assert!(matches!(inbox.recv().await, Err(FellBehind)));
        // And what it held goes with it.
        drop(inbox);
        assert!(hub.inboxes().by_room.is_empty());
        assert!(hub.inboxes().by_user.is_empty());
    }
}
