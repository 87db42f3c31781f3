//! Rooms, membership and messages: `rooms` creates, lists, joins, leaves, changes and deletes
//! them; `members` adds, removes, bans and ranks their members; `direct` opens the room of two
//! users; `messages` reads history and sends, `edits` edits and deletes, `reactions` reacts,
//! `reads` keeps read markers, `mentions` who a message names, `typing` who is typing,
//! `presence` who is online. `search` finds messages by their words.
//! Everything that happens in a room is an event of
//! its stream (`events`), which a subscription follows as a `feed`; a user's `inbox` follows
//! all their rooms at once. Who may do what is `access`.
mod access;
mod counts;
mod direct;
mod edits;
mod events;
mod feed;
mod inbox;
mod members;
mod mentions;
mod messages;
mod presence;
mod reactions;
mod reads;
mod rooms;
mod search;
mod typing;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use uuid::Uuid;

/// A stored message with its author, as every layer above sees it (the broker's type: it is
/// what travels between instances).
pub use crate::broker::ChatMessage;
use crate::{
    broker::{Broker, Hub},
    config::{ChatConfig, RateLimits},
    db::Pools,
    service::{
        rate_limit::{ClientNet, RateLimit},
        user::Users,
    },
};
pub use counts::MAX_UNREAD;
pub use events::After;
pub use feed::FeedItem;
pub(crate) use members::leave_all;
pub use members::{MAX_ADDED, RoomMember};
pub use messages::NewMessage;
pub use presence::{Presence, PresenceState};
pub use reactions::ReactionCount;
pub use rooms::{RoomChange, RoomsAfter};
pub use search::{Found, SearchAfter};

/// What the operations of one client connection share: turns at database work (a query or
/// mutation holds one while it runs, a feed while it reads and delivers what it missed), and
/// the signal that one of its subscriptions fell further behind its room than the server
/// buffers. The client must then resubscribe with `after`; the transport ends the connection
/// (see `feed`).
///
/// The turns keep one client from filling the database pool: a socket that sends a hundred
/// operations at once runs a few at a time, and the rest wait on the socket, not in the pool
/// where every other client waits too.
#[derive(Clone)]
pub struct Subscriber {
    turns: Arc<tokio::sync::Semaphore>,
    fell_behind: CancellationToken,
}

impl Subscriber {
    /// A client that may do `turns` pieces of database work at a time.
    pub fn new(turns: usize) -> Self {
        Self {
            turns: Arc::new(tokio::sync::Semaphore::new(turns)),
            fell_behind: CancellationToken::new(),
        }
    }

    /// Waits for one of this client's turns; it ends when the permit is dropped.
    pub async fn turn(&self) -> Option<OwnedSemaphorePermit> {
        // The semaphore is never closed: waiting for a turn ends with one.
        self.turns.clone().acquire_owned().await.ok()
    }

    /// Completes once one of this client's subscriptions has fallen behind.
    pub fn fell_behind(&self) -> WaitForCancellationFutureOwned {
        self.fell_behind.clone().cancelled_owned()
    }
}

pub struct Chat {
    db: DatabaseConnection,
    /// Where writes go (see `db::Pools`).
    writer: DatabaseConnection,
    broker: Arc<dyn Broker>,
    hub: Arc<Hub>,
    users: Arc<Users>,
    send_per_user: RateLimit<Uuid>,
    send_per_ip: RateLimit<ClientNet>,
    /// Searches per user: each ranks every match in every room the user may read.
    message_search_per_user: RateLimit<Uuid>,
    typists: typing::Typists,
    instance: presence::Instance,
    receipts_max_members: u64,
    /// Unverified users cannot send (`REQUIRE_VERIFIED_EMAIL`).
    require_verified_email: bool,
}

impl Chat {
    pub fn new(
        pools: Pools,
        broker: Arc<dyn Broker>,
        hub: Arc<Hub>,
        users: Arc<Users>,
        limits: &RateLimits,
        config: &ChatConfig,
    ) -> Self {
        Self {
            db: pools.reads,
            writer: pools.writes,
            broker,
            hub,
            users,
            send_per_user: RateLimit::per_minute("send_user", limits.send_per_user),
            send_per_ip: RateLimit::per_minute("send_ip", limits.send_per_ip),
            message_search_per_user: RateLimit::per_minute(
                "message_search_user",
                limits.message_search_per_user,
            ),
            typists: typing::Typists::new(config.typing_timeout),
            instance: presence::Instance {
                id: Uuid::new_v4(),
                ttl: config.presence_ttl,
                local: Arc::default(),
            },
            receipts_max_members: config.receipts_max_members,
            require_verified_email: config.require_verified_email,
        }
    }
}
