//! `AppState`: what every request works with (config, database, services). Cheap to clone.
use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbBackend};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use anyhow::Context;

use crate::{
    broker::{Broker, Hub, Listening, MemoryBroker, NatsBroker, PgBroker, Revocations},
    config::Config,
    db::Pools,
    mail::Mailer,
    service::{
        auth::{Auth, AuthDeps, revocation_horizon, signing_keys},
        chat::Chat,
        user::Users,
    },
};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub auth: Arc<Auth>,
    pub chat: Arc<Chat>,
    /// Whether this instance hears the others (`/readyz`).
    pub broker: Arc<dyn Broker>,
    /// Users by id, for `me` and for naming message authors without a read each time.
    pub users: Arc<Users>,
    /// Cancelled when the server shuts down: background tasks and sockets end.
    pub shutdown: CancellationToken,
    /// The tasks shutdown waits for once it has cancelled them: one per WebSocket, and the
    /// one that takes this instance's users offline.
    pub tasks: TaskTracker,
}

impl AppState {
    pub async fn new(config: Config, pools: Pools) -> anyhow::Result<Self> {
        let db = pools.reads.clone();
        let shutdown = CancellationToken::new();
        let revocations = Arc::new(Revocations::new(revocation_horizon(&config.auth)));
        revocations
            .load_recent(&db)
            .await
            .context("read recent revocations")?;
        let users = Arc::new(Users::new(db.clone(), &config.limits));
        let hub = Hub::new(
            revocations.clone(),
            config.ws.subscriber_buffer,
            users.clone(),
        );
        let keys = signing_keys(&config.auth)?;
        let seal_key = keys.derive_key("chat-server broker seal v1");
        let broker: Arc<dyn Broker> = match (&config.broker.url, db.get_database_backend()) {
            (Some(_), _) => Arc::new(
                NatsBroker::start(
                    &config.broker,
                    seal_key,
                    db.clone(),
                    hub.clone(),
                    users.clone(),
                    shutdown.clone(),
                )
                .await?,
            ),
            (None, DbBackend::Postgres) => Arc::new(PgBroker::start(
                Listening {
                    url: config.database.url.clone(),
                    heartbeat: config.database.listen_heartbeat,
                },
                seal_key,
                db.clone(),
                hub.clone(),
                users.clone(),
                shutdown.clone(),
            )),
            (None, _) => Arc::new(MemoryBroker::new(hub.clone())),
        };
        let mailer = Mailer::start(&config.mail, shutdown.clone())?;
        let auth = Arc::new(Auth::new(
            pools.clone(),
            AuthDeps {
                tokens: keys,
                revocations,
                broker: broker.clone(),
                mailer,
            },
            &config.auth,
            &config.limits,
        )?);
        auth.prefetch_keys().await;
        let chat = Arc::new(Chat::new(
            pools,
            broker.clone(),
            hub,
            users.clone(),
            &config.limits,
            &config.chat,
        ));
        let tasks = TaskTracker::new();
        chat.clone().expire_typing(shutdown.clone());
        chat.clone().keep_presence(shutdown.clone(), &tasks);
        auth.clone()
            .purge_periodically(config.auth.purge_interval, shutdown.clone());
        Ok(Self {
            config: Arc::new(config),
            db,
            auth,
            chat,
            broker,
            users,
            shutdown,
            tasks,
        })
    }
}
