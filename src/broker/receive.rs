//! What an instance does with an announcement it hears, whichever engine carried it: opens it
//! under the instances' seal (or drops it), completes it from the database where it names
//! rather than carries (a message too long to travel, a message a change is about), and hands
//! it to the hub. And what an instance does when it may have missed announcements: re-reads
//! revocations, then tells every subscriber to catch up from the database.
//!
//! A sealed event sent again as it was changes nothing: a message by its seq is delivered once,
//! a revocation is permanent, and a departure only ends subscriptions after the database
//! confirms it.
use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    ChatMessage, Event, Hub, PresenceChange, RoomEvent, Typing, UserCache,
    seal::Seal,
    wire::{Wire, WireMessage, decode},
};
use crate::{
    db::QUERY_DEADLINE,
    entity::{message, room_event},
};

pub(super) struct Receive {
    db: DatabaseConnection,
    hub: Arc<Hub>,
    authors: Arc<dyn UserCache>,
    seal: Arc<Seal>,
    refusals: Mutex<Refusals>,
    shutdown: CancellationToken,
}

impl Receive {
    pub fn new(
        db: DatabaseConnection,
        hub: Arc<Hub>,
        authors: Arc<dyn UserCache>,
        seal: Arc<Seal>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            db,
            hub,
            authors,
            seal,
            refusals: Mutex::default(),
            shutdown,
        }
    }

    /// Re-reads revocations, then has subscribers read what they missed and sockets check
    /// their session against the refreshed set (hence this order). Retried until it succeeds,
    /// since a revocation announced in the gap is only in the database. False on shutdown.
    pub async fn catch_up(&self) -> bool {
        let shutdown = &self.shutdown;
        let mut delay = Duration::from_millis(100);
        loop {
            let reading = timeout(QUERY_DEADLINE, self.hub.revocations().load_recent(&self.db));
            let read = tokio::select! {
                () = shutdown.cancelled() => return false,
                read = reading => read,
            };
            match read {
                Ok(Ok(())) => break,
                Ok(Err(err)) => tracing::warn!(error = %err, "could not re-read revocations"),
                Err(_) => tracing::warn!("re-reading revocations timed out"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        self.hub.resync();
        true
    }

    /// Hands the event in `payload` to the hub.
    pub async fn deliver(&self, payload: &str) {
        // What crossing instances costs each one: LISTEN/NOTIFY brings every instance every
        // event, NATS the events of what it follows.
        metrics::counter!("chat_broker_received_total").increment(1);
        let Some(wire) = decode(payload, &self.seal) else {
            self.refuse();
            return;
        };
        let event = match wire {
            Wire::Message(message) => {
                let Some(message) = self.read("a message", self.complete(message)).await else {
                    return;
                };
                Event::Room(RoomEvent::Message(Arc::new(message)))
            }
            Wire::Change(change) => {
                let change: room_event::Model = change.into();
                match change.message_id {
                    None => Event::Room(RoomEvent::Change(Arc::new(change))),
                    Some(id) => {
                        let Some(message) = self.read("a message's change", self.current(id)).await
                        else {
                            return;
                        };
                        Event::Room(RoomEvent::MessageChange(
                            Arc::new(change),
                            Arc::new(message),
                        ))
                    }
                }
            }
            Wire::RoomDeleted { r } => Event::RoomDeleted { room_id: r },
            Wire::Typing { r, u, y, t } => Event::Typing(Typing {
                room_id: r,
                user_id: u,
                typing: y,
                until: t,
            }),
            Wire::ReadUpTo { u, r, s } => Event::ReadUpTo {
                user_id: u,
                room_id: r,
                seq: s,
            },
            Wire::Presence { p } => Event::Presence(
                p.into_iter()
                    .map(|(user_id, online, at)| PresenceChange {
                        user_id,
                        online,
                        at,
                    })
                    .collect(),
            ),
            Wire::Revoked { s } => Event::Revoked(s),
            Wire::UserChanged { u } => Event::UserChanged(u),
            Wire::CatchUp {} => {
                self.catch_up().await;
                return;
            }
        };
        self.hub.dispatch(event);
    }

    /// Counts an announcement that is not ours.
    pub fn refuse(&self) {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refused();
    }

    /// What an announcement needs from the database, or `None` after saying why: subscribers
    /// will find the event in the database when they catch up.
    async fn read<T>(&self, what: &str, read: impl Future<Output = Result<T, DbErr>>) -> Option<T> {
        match timeout(QUERY_DEADLINE, read).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not complete the announcement of {what}");
                self.hub.resync();
                None
            }
            Err(_) => {
                tracing::warn!("completing the announcement of {what} timed out");
                self.hub.resync();
                None
            }
        }
    }

    /// A message with its author: the body from the announcement or, when it did not fit,
    /// from the database.
    async fn complete(&self, wire: WireMessage) -> Result<ChatMessage, DbErr> {
        let WireMessage {
            i,
            r,
            s,
            e,
            a,
            c,
            t,
            p,
            b,
        } = wire;
        let Some(body) = b else {
            return self.current(i).await;
        };
        let message = message::Model {
            id: i,
            room_id: r,
            seq: s,
            event_seq: e,
            author_id: a,
            body,
            client_msg_id: c,
            created_at: t,
            edited_at: None,
            deleted_at: None,
            reply_to_id: p,
        };
        self.with_author(message).await
    }

    /// A message as it is now, with its author.
    async fn current(&self, id: Uuid) -> Result<ChatMessage, DbErr> {
        let message = message::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(id.to_string()))?;
        self.with_author(message).await
    }

    async fn with_author(&self, message: message::Model) -> Result<ChatMessage, DbErr> {
        let a = message.author_id;
        let author = self
            .authors
            .author(a)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(a.to_string()))?;
        Ok(ChatMessage { message, author })
    }
}

/// Announcements that did not open under the seal: counted, and reported at most once a
/// minute (whoever sends them should not fill the log).
#[derive(Default)]
pub(super) struct Refusals {
    reported: Option<Instant>,
    since: u64,
}

impl Refusals {
    fn refused(&mut self) {
        metrics::counter!("chat_notifications_refused_total").increment(1);
        self.since += 1;
        if self
            .reported
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            tracing::warn!(
                count = self.since,
                "dropped announcements that were not sealed by this cluster"
            );
            self.reported = Some(Instant::now());
            self.since = 0;
        }
    }
}
