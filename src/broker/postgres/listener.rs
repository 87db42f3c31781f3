//! Each instance's listener: a connection of its own that LISTENs, hands what it hears to the
//! hub, and keeps proving that it is alive.
//!
//! A connection can die without a word: behind a NAT or load balancer that drops quiet flows,
//! or after a failover without a reset, it just goes silent (and keepalive cannot be set on
//! the client's end: sqlx has no option for it). So the listener never trusts silence for
//! long. After a heartbeat of it, the listener notifies itself on a channel of its own; a
//! connection that has not delivered that within another heartbeat is dead. Whenever the
//! connection is new (first, replaced, or re-opened by sqlx), notifications may have been
//! missed: revocations are re-read and every subscriber catches up from the database, and
//! until that is done the instance is not ready (`/readyz`).
//!
//! What arrives must open under the instances' seal, or it is dropped. A sealed event sent
//! again as it was changes nothing: a message by its seq is delivered once, a revocation is
//! permanent, and a departure only ends subscriptions after the database confirms it.
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::{
    DatabaseConnection, DbErr, EntityTrait,
    sqlx::{
        self,
        postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    },
};
use secrecy::ExposeSecret;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    CHANNEL, Listening,
    wire::{Wire, WireMessage, decode},
};
use crate::{
    broker::{ChatMessage, Event, Hub, PresenceChange, RoomEvent, Typing, UserCache, seal::Seal},
    db::{QUERY_DEADLINE, postgres_options},
    entity::{message, room_event},
};

pub(super) struct Listener {
    pub listening: Listening,
    /// The channel only this instance listens to: its heartbeats.
    pub own_channel: String,
    pub db: DatabaseConnection,
    pub hub: Arc<Hub>,
    pub authors: Arc<dyn UserCache>,
    pub seal: Arc<Seal>,
    pub live: Arc<AtomicBool>,
    pub shutdown: CancellationToken,
}

/// Why a connection was given up.
type Lost = String;

impl Listener {
    pub(super) async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        while !self.shutdown.is_cancelled() {
            let connecting = timeout(self.listening.heartbeat, self.connect());
            let failure = tokio::select! {
                () = self.shutdown.cancelled() => return,
                connected = connecting => match connected {
                    Ok(Ok(mut listener)) => {
                        backoff = Duration::from_millis(100);
                        if !self.caught_up().await {
                            return;
                        }
                        match self.serve(&mut listener).await {
                            Ok(()) => return,
                            Err(lost) => lost,
                        }
                    }
                    Ok(Err(err)) => format!("could not connect: {err}"),
                    Err(_) => "connecting took longer than a heartbeat".into(),
                },
            };
            self.live.store(false, Ordering::Relaxed);
            tracing::warn!(reason = %failure, retry_in = ?backoff, "LISTEN connection lost");
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn connect(&self) -> Result<PgListener, sea_orm::sqlx::Error> {
        let options: PgConnectOptions = self.listening.url.expose_secret().parse()?;
        // A pool of one, as `PgListener::connect` makes, with the server probing it too.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(postgres_options(options, "chat-server listener"))
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener
            .listen_all([CHANNEL, self.own_channel.as_str()])
            .await?;
        Ok(listener)
    }

    /// Hands notifications to the hub until shutdown (`Ok`) or until the connection fails or
    /// stops answering (`Err`).
    async fn serve(&self, listener: &mut PgListener) -> Result<(), Lost> {
        let heartbeat = self.listening.heartbeat;
        let mut probing = false;
        let mut refusals = Refusals::default();
        loop {
            let received = tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                received = timeout(heartbeat, listener.try_recv()) => received,
            };
            match received {
                Ok(Ok(Some(notification))) => {
                    probing = false;
                    if notification.channel() == CHANNEL {
                        self.deliver(notification.payload(), &mut refusals).await;
                    }
                }
                // sqlx found the connection closed and opened another, which LISTENs again.
                Ok(Ok(None)) => {
                    self.live.store(false, Ordering::Relaxed);
                    tracing::warn!("LISTEN connection was lost; sqlx reconnected it");
                    if !self.caught_up().await {
                        return Ok(());
                    }
                    probing = false;
                }
                Ok(Err(err)) => return Err(format!("receive failed: {err}")),
                Err(_) if probing => return Err("the heartbeat did not come back".into()),
                Err(_) => {
                    let beat = sqlx::query("SELECT pg_notify($1, '')").bind(&self.own_channel);
                    match timeout(heartbeat, beat.execute(&mut *listener)).await {
                        Ok(Ok(_)) => probing = true,
                        Ok(Err(err)) => return Err(format!("heartbeat failed: {err}")),
                        Err(_) => return Err("the heartbeat was not answered".into()),
                    }
                }
            }
        }
    }

    /// After (re)connecting: revocations are re-read, then subscribers read what they missed
    /// and sockets check their session against the refreshed set (hence this order). Retried
    /// until it succeeds, since a revocation announced in the gap is only in the database.
    /// False on shutdown.
    async fn caught_up(&self) -> bool {
        let mut delay = Duration::from_millis(100);
        loop {
            let reading = timeout(QUERY_DEADLINE, self.hub.revocations().load_recent(&self.db));
            let read = tokio::select! {
                () = self.shutdown.cancelled() => return false,
                read = reading => read,
            };
            match read {
                Ok(Ok(())) => break,
                Ok(Err(err)) => tracing::warn!(error = %err, "could not re-read revocations"),
                Err(_) => tracing::warn!("re-reading revocations timed out"),
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        self.hub.resync();
        self.live.store(true, Ordering::Relaxed);
        true
    }

    async fn deliver(&self, payload: &str, refusals: &mut Refusals) {
        let Some(wire) = decode(payload, &self.seal) else {
            refusals.refused();
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
        };
        self.hub.dispatch(event);
    }

    /// What a notification needs from the database, or `None` after saying why: subscribers
    /// will find the event in the database when they catch up.
    async fn read<T>(&self, what: &str, read: impl Future<Output = Result<T, DbErr>>) -> Option<T> {
        match timeout(QUERY_DEADLINE, read).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not complete the notification of {what}");
                self.hub.resync();
                None
            }
            Err(_) => {
                tracing::warn!("completing the notification of {what} timed out");
                self.hub.resync();
                None
            }
        }
    }

    /// A message with its author: the body from the notification or, when it did not fit,
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

/// Notifications that did not open under the seal: counted, and reported at most once a
/// minute (whoever sends them should not fill the log).
#[derive(Default)]
struct Refusals {
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
                "dropped notifications on {CHANNEL} that were not sealed by this cluster"
            );
            self.reported = Some(Instant::now());
            self.since = 0;
        }
    }
}
