//! Fan-out of room events (messages and the rest) and session revocations to the subscribers,
//! inboxes and sockets that care, and the revocation set itself: what crosses instances is the
//! broker's.
//!
//! Every instance has a `Hub` that hands events to its own subscribers. A `Broker` gets events
//! into the hubs: the in-memory broker (SQLite, one instance) hands them to the local hub after
//! the commit; the Postgres broker sends a NOTIFY inside the storing transaction (so it goes out
//! if and only if the transaction commits, in commit order), and each instance's listener hands
//! it to its hub; the NATS broker hands them to the local hub after the commit and publishes
//! them on subjects that only the instances that follow them hear (`interest`). Subscribers never depend on the broker for completeness: they number events
//! by their room's event seq and read anything they missed from the database (see
//! `service::chat::feed`).
//! What crosses instances is sealed (`seal`).
mod hub;
mod inbox;
mod interest;
mod memory;
mod nats;
mod postgres;
mod receive;
mod revocation;
pub(crate) mod seal;
mod shared;
mod wire;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

pub use hub::{Hub, RoomNews, RoomSubscription};
pub use inbox::{FellBehind, Inbox, Mine};
pub use interest::Topic;
pub use memory::MemoryBroker;
pub use nats::NatsBroker;
pub use postgres::{Listening, PgBroker};
pub use revocation::{Revocations, SessionWatch};
pub use shared::{Memo, Shared};

use crate::entity::{
    message,
    room_event::{self, EventKind, LeaveReason},
    user,
};

/// A stored message with its author: what subscribers receive, built once per instance.
#[derive(Debug, Clone)]
pub struct ChatMessage {
    pub message: message::Model,
    pub author: Arc<user::Model>,
}

/// Something that happened in a room, in the room's event stream: numbered by its event seq,
/// which messages and the other events share.
#[derive(Debug, Clone)]
pub enum RoomEvent {
    Message(Arc<ChatMessage>),
    /// A member joined, left or changed role, or the room's settings changed.
    Change(Arc<room_event::Model>),
    /// A message was edited, deleted or reacted to: the event, and the message as it is now.
    MessageChange(Arc<room_event::Model>, Arc<ChatMessage>),
}

impl RoomEvent {
    pub fn room_id(&self) -> Uuid {
        match self {
            RoomEvent::Message(m) => m.message.room_id,
            RoomEvent::Change(c) | RoomEvent::MessageChange(c, _) => c.room_id,
        }
    }

    /// Its place in the room's event stream.
    pub fn seq(&self) -> i64 {
        match self {
            RoomEvent::Message(m) => m.message.event_seq,
            RoomEvent::Change(c) | RoomEvent::MessageChange(c, _) => c.seq,
        }
    }

    /// The membership of `user_id` this event ended, if it ended one.
    pub fn ended_membership_of(&self, user_id: Uuid) -> Option<LeaveReason> {
        match self {
            RoomEvent::Change(c) if c.kind == EventKind::Left && c.user_id == user_id => {
                Some(c.reason.unwrap_or(LeaveReason::Left))
            }
            _ => None,
        }
    }
}

/// Something that happened, for every instance's subscribers.
#[derive(Debug, Clone)]
pub enum Event {
    Room(RoomEvent),
    /// A room was deleted, with its members and history: not an event of its stream, which
    /// is gone with it.
    RoomDeleted {
        room_id: Uuid,
    },
    /// Somebody started or stopped typing in a room: live only, never stored.
    Typing(Typing),
    /// A member read a room up to message `seq`: their other devices hear it.
    ReadUpTo {
        user_id: Uuid,
        room_id: Uuid,
        seq: i64,
    },
    /// Users came online or went offline (see `service::chat::presence`).
    Presence(Vec<PresenceChange>),
    /// Sessions were revoked: their access tokens stop working and their sockets close.
    Revoked(Vec<Uuid>),
    /// A user's row changed (name, address, its verification): every instance's copy of it
    /// is stale.
    UserChanged(Uuid),
}

/// A user came online (their first socket anywhere) or went offline (their last), at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceChange {
    pub user_id: Uuid,
    pub online: bool,
    pub at: DateTime<Utc>,
}

/// A member is typing in a room until `until` (unless renewed), or stopped (`typing` false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typing {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub typing: bool,
    pub until: DateTime<Utc>,
}

/// Users as an instance caches them (`service::user::Users`). A notification names a
/// message's author by id and the listener completes it from here (one author, many
/// messages); the hub makes it forget a user who changed (`Event::UserChanged`), and
/// everyone after a resync (changes may have been missed).
#[async_trait::async_trait]
pub trait UserCache: Send + Sync {
    async fn author(&self, id: Uuid) -> Result<Option<Arc<user::Model>>, DbErr>;
    fn forget(&self, id: Uuid);
    fn forget_all(&self);
}

#[async_trait::async_trait]
pub trait Broker: Send + Sync {
    /// Called inside the transaction that makes `event` true.
    async fn stage(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), DbErr>;

    /// Called once that transaction has committed.
    fn committed(&self, event: Event);

    /// Announces an event that no transaction makes true (typing, presence).
    async fn publish(&self, event: Event) -> Result<(), DbErr>;

    /// What this instance cannot hear the others through right now (its Postgres listener
    /// is reconnecting, NATS is away), if anything: while it cannot, it should get no
    /// traffic, so it is not ready (`/readyz` names it).
    fn unavailable(&self) -> Option<&'static str> {
        None
    }
}
