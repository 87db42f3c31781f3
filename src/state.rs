//! `AppState`: what every request works with (config, database, services). Cheap to clone.
use std::{sync::Arc, time::Duration};

use sea_orm::{DatabaseConnection, DbBackend};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    broker::{Broker, Hub, MemoryBroker, PgBroker},
    config::Config,
    service::{
        auth::{Auth, Revocations, revocation_horizon},
        chat::Chat,
        user::UserCache,
    },
};

/// How long a user row is reused from memory (`me`, authors of fanned-out messages).
const USER_CACHE_TTL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub auth: Arc<Auth>,
    pub chat: Arc<Chat>,
    pub hub: Arc<Hub>,
    /// Users by id, for `me` and for naming message authors without a read each time.
    pub users: Arc<UserCache>,
    /// Cancelled when the server shuts down: background tasks and sockets end.
    pub shutdown: CancellationToken,
    /// The tasks shutdown waits for once it has cancelled them: one per WebSocket.
    pub tasks: TaskTracker,
}

impl AppState {
    pub async fn new(config: Config, db: DatabaseConnection) -> anyhow::Result<Self> {
        let shutdown = CancellationToken::new();
        let revocations = Arc::new(Revocations::new(revocation_horizon(&config.auth)));
        let hub = Hub::new(revocations.clone(), config.ws.subscriber_buffer);
        let users = Arc::new(UserCache::new(db.clone(), USER_CACHE_TTL));
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        // Postgres needs the listener, and the listener re-reads revocations through `Auth`,
        // which needs the broker: the listener starts once both exist.
        let broker: Arc<dyn Broker> = if postgres {
            Arc::new(PgBroker)
        } else {
            Arc::new(MemoryBroker::new(hub.clone()))
        };
        let auth = Arc::new(
            Auth::new(
                db.clone(),
                &config.auth,
                &config.limits,
                revocations,
                broker.clone(),
            )
            .await?,
        );
        if postgres {
            PgBroker::listen(
                config.database.url.clone(),
                db.clone(),
                hub.clone(),
                users.clone(),
                auth.clone(),
                shutdown.clone(),
            );
        }
        let chat = Arc::new(Chat::new(
            db.clone(),
            broker,
            hub.clone(),
            users.clone(),
            &config.limits,
        ));
        crate::os::spawn_trimmer(shutdown.clone());
        Ok(Self {
            config: Arc::new(config),
            db,
            auth,
            chat,
            hub,
            users,
            shutdown,
            tasks: TaskTracker::new(),
        })
    }
}
