//! Fan-out of chat messages and session revocations to the subscribers and sockets that care,
//! and the revocation set itself: what crosses instances is the broker's.
//!
//! Every instance has a `Hub` that hands events to its own subscribers. A `Broker` gets events
//! into the hubs: the in-memory broker (SQLite, one instance) hands them to the local hub after
//! the commit; the Postgres broker sends a NOTIFY inside the storing transaction (so it goes out
//! if and only if the transaction commits, in commit order), and each instance's listener hands
//! it to its hub. Subscribers never depend on the broker for completeness: they number messages
//! by `seq` and read anything they missed from the database (see `service::chat::feed`).
//! What crosses instances is sealed (`seal`).
mod hub;
mod memory;
mod postgres;
mod revocation;
mod seal;

use std::sync::Arc;

use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

pub use hub::{Hub, RoomEvent, RoomSubscription};
pub use memory::MemoryBroker;
pub use postgres::{Listening, PgBroker};
pub use revocation::{Revocations, SessionWatch};

use crate::entity::{message, user};

/// A stored message with its author: what subscribers receive, built once per instance.
#[derive(Debug, Clone)]
pub struct ChatMessage {
    pub message: message::Model,
    pub author: Arc<user::Model>,
}

/// Something that happened, for every instance's subscribers.
#[derive(Debug, Clone)]
pub enum Event {
    Message(Arc<ChatMessage>),
    /// A user's membership of a room ended: their subscriptions to it end, once the database
    /// confirms it.
    Departed {
        room_id: Uuid,
        user_id: Uuid,
        why: Departure,
    },
    /// A room was deleted, with its members and history.
    RoomDeleted {
        room_id: Uuid,
    },
    /// Sessions were revoked: their access tokens stop working and their sockets close.
    Revoked(Vec<Uuid>),
}

/// Why a membership ended: leaving ends a member's subscriptions quietly; being removed or
/// banned ends them with FORBIDDEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Departure {
    #[default]
    #[serde(rename = "l")]
    Left,
    #[serde(rename = "r")]
    Removed,
    #[serde(rename = "b")]
    Banned,
}

/// Who wrote a message: a notification names the author by id, and the listener completes it
/// (from a cache: one author, many messages).
#[async_trait::async_trait]
pub trait Authors: Send + Sync {
    async fn author(&self, id: Uuid) -> Result<Option<Arc<user::Model>>, DbErr>;
}

#[async_trait::async_trait]
pub trait Broker: Send + Sync {
    /// Called inside the transaction that makes `event` true.
    async fn stage(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), DbErr>;

    /// Called once that transaction has committed.
    fn committed(&self, event: Event);

    /// Whether this instance hears every instance's events now. While it does not (its
    /// Postgres listener is reconnecting), it should get no traffic: it is not ready.
    fn is_live(&self) -> bool {
        true
    }
}
