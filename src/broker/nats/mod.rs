//! Fan-out across instances with NATS (`BROKER_URL=nats://…`), routed by interest.
//!
//! Each event goes out on the subject of what it is about: a room's events on its room's
//! subject, a user's read markers (and their own arrivals and departures, which is how an
//! inbox learns of a room it did not follow yet) on the user's, revocations, presence and
//! changed users on one subject everyone hears. An instance subscribes only to the rooms and
//! users it serves (`interest`, `router`), so with rooms spread over many instances each one
//! hears its own share, where LISTEN/NOTIFY carries everything to everyone.
//!
//! Core NATS is at most once, and the broker publishes after the commit, not inside it. So
//! nothing depends on it for completeness, as with LISTEN/NOTIFY: subscribers number events
//! by their room's event seq and read gaps from the database (`service::chat::feed`), and
//! whenever the instance may have missed something (it reconnected, a subscription overflowed
//! and NATS dropped what it had for it, another instance could not publish) it re-reads
//! revocations and every subscriber catches up (`Receive::catch_up`). The instance's own
//! events reach its own hub directly (the connection does not echo them back), so its
//! subscribers hear them while NATS is away. What travels is sealed, as on Postgres.
mod router;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use async_nats::{Client, ConnectOptions, ServerAddr, connection::State};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Broker, Event, Hub, RoomEvent, UserCache, interest::Topic, receive::Receive, seal::Seal, wire,
};
use crate::{config::BrokerConfig, entity::room_event::EventKind};

/// Events waiting to be published. While NATS is away they wait here (and in the client's own
/// buffer); past this many, they are dropped and the instances are told to catch up.
const OUTBOX: usize = 16_384;
/// How often the client pings the server: a connection that misses two is replaced.
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// How long to wait for the server to confirm what it was sent (a flush).
const FLUSH_DEADLINE: Duration = Duration::from_secs(2);

pub struct NatsBroker {
    hub: Arc<Hub>,
    outbox: mpsc::Sender<Event>,
    /// Set when the outbox overflowed: the instances must catch up once NATS is back.
    owed: Arc<AtomicBool>,
    /// Connected, and caught up since.
    live: Arc<AtomicBool>,
}

/// Subject names under the configured prefix.
#[derive(Clone)]
struct Subjects {
    prefix: Arc<str>,
}

impl Subjects {
    fn of(&self, topic: Topic) -> String {
        let prefix = &self.prefix;
        match topic {
            Topic::Room(id) => format!("{prefix}.room.{}", id.simple()),
            Topic::User(id) => format!("{prefix}.user.{}", id.simple()),
            Topic::Everyone => format!("{prefix}.all"),
        }
    }
}

/// The topics an event goes out on.
fn topics(event: &Event) -> [Option<Topic>; 2] {
    match event {
        Event::Room(room_event) => {
            let user = match room_event {
                RoomEvent::Change(c) if matches!(c.kind, EventKind::Joined | EventKind::Left) => {
                    Some(Topic::User(c.user_id))
                }
                _ => None,
            };
            [Some(Topic::Room(room_event.room_id())), user]
        }
        Event::RoomDeleted { room_id } => [Some(Topic::Room(*room_id)), None],
        Event::Typing(typing) => [Some(Topic::Room(typing.room_id)), None],
        Event::ReadUpTo { user_id, .. } => [Some(Topic::User(*user_id)), None],
        Event::Presence(_) | Event::Revoked(_) | Event::UserChanged(_) => {
            [Some(Topic::Everyone), None]
        }
    }
}

impl NatsBroker {
    /// Connects (in the background: a NATS that is away now is joined when it comes back, and
    /// the instance is not ready until then), and starts following what `hub` needs.
    pub async fn start(
        config: &BrokerConfig,
        key: [u8; 32],
        db: DatabaseConnection,
        hub: Arc<Hub>,
        authors: Arc<dyn UserCache>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let url = config.url.as_ref().context("BROKER_URL is not set")?;
        // The errors name no URL: it may hold a password.
        let servers: Vec<ServerAddr> = url
            .expose_secret()
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow::anyhow!("BROKER_URL: not a NATS server address"))?;
        let seal = Arc::new(Seal::new(key, "chat-server nats"));
        let receive = Arc::new(Receive::new(
            db,
            hub.clone(),
            authors,
            seal.clone(),
            shutdown.clone(),
        ));
        let (events, heard_events) = mpsc::unbounded_channel();
        let mut options = ConnectOptions::new()
            .name("chat-server")
            .no_echo()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .ping_interval(PING_INTERVAL)
            .subscription_capacity(config.nats_buffer)
            .reconnect_delay_callback(|attempts| {
                let exponent = attempts.min(5) as u32;
                (Duration::from_millis(100) * 2u32.pow(exponent)).min(Duration::from_secs(2))
            })
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    // No receiver: the server is stopping.
                    let _ = events.send(event);
                }
            });
        // The client takes credentials from its options only: `user:password@` or `token@`.
        if let Some(server) = servers.iter().find(|server| server.has_user_pass()) {
            let user = server.username().unwrap_or_default().to_owned();
            options = match server.password() {
                Some(password) => options.user_and_password(user, password.to_owned()),
                None => options.token(user),
            };
        }
        if let Some(path) = &config.nats_credentials {
            options = options.credentials_file(path).await.with_context(|| {
                format!("read {} (BROKER_NATS_CREDENTIALS_FILE)", path.display())
            })?;
        }
        if let Some(path) = &config.nats_ca {
            options = options.add_root_certificates(path.clone());
        }
        let client = options
            .connect(servers)
            .await
            .map_err(|err| anyhow::anyhow!("BROKER_URL: {}", err.kind()))?;

        let subjects = Subjects {
            prefix: config.subject_prefix.as_str().into(),
        };
        let live = Arc::new(AtomicBool::new(false));
        let owed = Arc::new(AtomicBool::new(false));
        let (outbox, queued) = mpsc::channel(OUTBOX);
        tokio::spawn(router::route(
            client.clone(),
            subjects.clone(),
            hub.route_interest(),
            receive.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(supervise(
            heard_events,
            client.clone(),
            receive,
            live.clone(),
            shutdown,
        ));
        tokio::spawn(publish(client, queued, seal, subjects, owed.clone()));
        Ok(Self {
            hub,
            outbox,
            owed,
            live,
        })
    }

    /// To this instance's subscribers at once, and to the others through NATS.
    fn announce(&self, event: Event) {
        self.hub.dispatch(event.clone());
        if let Err(mpsc::error::TrySendError::Full(_)) = self.outbox.try_send(event) {
            metrics::counter!("chat_broker_unannounced_total").increment(1);
            self.owed.store(true, Ordering::Relaxed);
        }
    }
}

#[async_trait::async_trait]
impl Broker for NatsBroker {
    /// Nothing to do inside the transaction: NATS is told after the commit.
    async fn stage(&self, _txn: &DatabaseTransaction, _event: &Event) -> Result<(), DbErr> {
        Ok(())
    }

    fn committed(&self, event: Event) {
        self.announce(event);
    }

    async fn publish(&self, event: Event) -> Result<(), DbErr> {
        self.announce(event);
        Ok(())
    }

    fn unavailable(&self) -> Option<&'static str> {
        (!self.live.load(Ordering::Relaxed)).then_some("nats")
    }
}

/// Publishes what the instance announces, in order. Blocks while NATS is away (the client
/// buffers, then this task waits), and tells everyone to catch up once it has published what
/// it kept if it had to drop some.
async fn publish(
    client: Client,
    mut queued: mpsc::Receiver<Event>,
    seal: Arc<Seal>,
    subjects: Subjects,
    owed: Arc<AtomicBool>,
) {
    while let Some(event) = queued.recv().await {
        let payloads = wire::encode(&event, &seal);
        for topic in topics(&event).into_iter().flatten() {
            let subject = subjects.of(topic);
            for payload in &payloads {
                if let Err(err) = client
                    .publish(subject.clone(), payload.clone().into())
                    .await
                {
                    tracing::warn!(error = %err, "could not publish an event to NATS");
                }
            }
        }
        if owed.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "some events were not announced while NATS was away: asking everyone to catch up"
            );
            let ask = wire::catch_up(&seal);
            if let Err(err) = client
                .publish(subjects.of(Topic::Everyone), ask.into())
                .await
            {
                tracing::warn!(error = %err, "could not ask the instances to catch up");
                owed.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Follows the connection: not live while it is down; on every (re)connection, and whenever
/// NATS dropped something for this instance (a slow consumer), reads what may have been
/// missed, then is live.
async fn supervise(
    mut events: mpsc::UnboundedReceiver<async_nats::Event>,
    client: Client,
    receive: Arc<Receive>,
    live: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        let mut catch_up = false;
        let mut next = Some(event);
        // What is already queued is handled together: one catch-up for a burst of drops.
        while let Some(event) = next {
            match event {
                async_nats::Event::Connected => catch_up = true,
                async_nats::Event::Disconnected | async_nats::Event::Closed => {
                    live.store(false, Ordering::Relaxed);
                    tracing::warn!(%event, "NATS connection lost");
                }
                async_nats::Event::SlowConsumer(_) => {
                    metrics::counter!("chat_broker_dropped_total").increment(1);
                    catch_up = true;
                }
                other => tracing::warn!(event = %other, "NATS"),
            }
            next = events.try_recv().ok();
        }
        if catch_up && client.connection_state() == State::Connected {
            // The subscriptions a new connection re-made are in force once a flush is
            // answered: only then is what the database says complete.
            if tokio::time::timeout(FLUSH_DEADLINE, client.flush())
                .await
                .is_err()
            {
                tracing::warn!("NATS did not answer a flush");
            }
            if !receive.catch_up().await {
                return;
            }
            if client.connection_state() == State::Connected {
                live.store(true, Ordering::Relaxed);
            }
        }
    }
}
