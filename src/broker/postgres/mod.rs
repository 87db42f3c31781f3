//! Fan-out across instances with Postgres LISTEN/NOTIFY.
//!
//! `stage` queues a NOTIFY in the transaction that stores the event: Postgres sends it only if
//! that transaction commits, and in commit order. Every instance (the sender's too) LISTENs and
//! hands what it hears to its hub (`listener`). What travels is sealed (`wire`, and
//! `broker::seal`): nobody without the instances' key can forge an event or read one.
mod listener;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Broker, Event, Hub, UserCache, receive::Receive, seal::Seal, wire};

const CHANNEL: &str = "chat_events";

pub struct PgBroker {
    seal: Arc<Seal>,
    /// For what is announced outside a transaction (`publish`).
    db: DatabaseConnection,
    /// Whether this instance's listener is connected and caught up: if not, events of other
    /// instances go unheard here until it is.
    live: Arc<AtomicBool>,
    /// This instance's, for what it must see before its notification comes back.
    hub: Arc<Hub>,
}

/// How the listener reaches the database and checks that it still does.
pub struct Listening {
    /// Its own connection, outside the request pool: LISTEN holds a connection for good, and
    /// its reconnects must not take connections requests need.
    pub url: SecretString,
    /// After this long without a notification the listener sends itself one, and a connection
    /// that has not delivered it this long later is replaced (`DATABASE_LISTEN_HEARTBEAT_SECONDS`).
    pub heartbeat: Duration,
}

impl PgBroker {
    /// The broker, with this instance's listener started: it hands what it hears to `hub`
    /// until `shutdown`. `key` seals events; every instance must derive the same one.
    pub fn start(
        listening: Listening,
        key: [u8; 32],
        db: DatabaseConnection,
        hub: Arc<Hub>,
        authors: Arc<dyn UserCache>,
        shutdown: CancellationToken,
    ) -> Self {
        let seal = Arc::new(Seal::new(key, CHANNEL));
        let live = Arc::new(AtomicBool::new(false));
        let listener = listener::Listener {
            listening,
            own_channel: format!("chat_heartbeat_{}", Uuid::new_v4().simple()),
            receive: Receive::new(
                db.clone(),
                hub.clone(),
                authors,
                seal.clone(),
                shutdown.clone(),
            ),
            live: live.clone(),
            shutdown,
        };
        tokio::spawn(listener.run());
        Self {
            seal,
            db,
            live,
            hub,
        }
    }
}

impl PgBroker {
    async fn notify(&self, conn: &impl ConnectionTrait, event: &Event) -> Result<(), DbErr> {
        for payload in wire::encode(event, &self.seal) {
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.into()],
            ))
            .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Broker for PgBroker {
    async fn stage(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), DbErr> {
        self.notify(txn, event).await
    }

    /// Outside a transaction, the notification goes out at once.
    async fn publish(&self, event: Event) -> Result<(), DbErr> {
        self.notify(&self.db, &event).await
    }

    /// The notification goes out with the commit and comes back to us too. A changed user
    /// is forgotten here at once as well, so that this instance's next request (`me` right
    /// after `verifyEmail`) reads the new row; forgetting twice is harmless.
    fn committed(&self, event: Event) {
        if let Event::UserChanged(_) = event {
            self.hub.dispatch(event);
        }
    }

    fn unavailable(&self) -> Option<&'static str> {
        (!self.live.load(Ordering::Relaxed)).then_some("listener")
    }
}
