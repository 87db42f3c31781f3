//! Rooms, membership and messages: `rooms` creates, lists, joins and leaves them; `messages`
//! reads history, sends, and subscribes (a subscription's live view is a `feed`).
//!
//! Who may do what: anyone signed in reads a public room; only members read a private one;
//! only members send, and subscribe, in any room.
mod feed;
mod messages;
mod rooms;

use std::sync::Arc;

use sea_orm::{
    DatabaseConnection, EntityTrait, ExprTrait, FromQueryResult, QuerySelect,
    sea_query::{Expr, Query},
};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use uuid::Uuid;

/// A stored message with its author, as every layer above sees it (the broker's type: it is
/// what travels between instances).
pub use crate::broker::ChatMessage;
use crate::{
    broker::{Broker, Hub},
    config::RateLimits,
    db::Pools,
    entity::{membership, room},
    error::{AppError, AppResult},
    service::{
        rate_limit::{ClientNet, RateLimit},
        user::Users,
    },
};
pub use messages::NewMessage;

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
}

#[derive(FromQueryResult)]
struct RoomAccess {
    #[sea_orm(nested)]
    room: room::Model,
    is_member: bool,
}

impl RoomAccess {
    /// FORBIDDEN unless a member, with `why`.
    fn member(self, why: &'static str) -> AppResult<room::Model> {
        if self.is_member {
            Ok(self.room)
        } else {
            Err(AppError::Forbidden(why))
        }
    }

    /// Anyone signed in reads a public room; members only a private one.
    fn readable(self) -> AppResult<room::Model> {
        if self.room.is_private {
            self.member("this room is private")
        } else {
            Ok(self.room)
        }
    }
}

impl Chat {
    pub fn new(
        pools: Pools,
        broker: Arc<dyn Broker>,
        hub: Arc<Hub>,
        users: Arc<Users>,
        limits: &RateLimits,
    ) -> Self {
        Self {
            db: pools.reads,
            writer: pools.writes,
            broker,
            hub,
            users,
            send_per_user: RateLimit::per_minute("send_user", limits.send_per_user),
            send_per_ip: RateLimit::per_minute("send_ip", limits.send_per_ip),
        }
    }

    /// The room and whether `user_id` is a member, in one query (every room operation starts
    /// here, and a burst of subscriptions must not cost a burst of round trips).
    async fn room_access(&self, room_id: Uuid, user_id: Uuid) -> AppResult<RoomAccess> {
        let is_member = Query::select()
            .expr(Expr::val(1))
            .from(membership::Entity)
            .and_where(
                Expr::col((membership::Entity, membership::Column::RoomId))
                    .equals((room::Entity, room::Column::Id)),
            )
            .and_where(Expr::col((membership::Entity, membership::Column::UserId)).eq(user_id))
            .to_owned();
        room::Entity::find_by_id(room_id)
            .column_as(Expr::exists(is_member), "is_member")
            .into_model::<RoomAccess>()
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound("room"))
    }
}
