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
//! What arrives goes to `Receive`, which drops what is not sealed by the instances.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sea_orm::sqlx::{
    self,
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
};
use secrecy::ExposeSecret;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::{CHANNEL, Listening};
use crate::{broker::receive::Receive, db::postgres_options};

pub(super) struct Listener {
    pub listening: Listening,
    /// The channel only this instance listens to: its heartbeats.
    pub own_channel: String,
    pub receive: Receive,
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
        loop {
            let received = tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                received = timeout(heartbeat, listener.try_recv()) => received,
            };
            match received {
                Ok(Ok(Some(notification))) => {
                    probing = false;
                    if notification.channel() == CHANNEL {
                        self.receive.deliver(notification.payload()).await;
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

    /// After (re)connecting: see `Receive::catch_up`; the instance is live once it is done.
    /// False on shutdown.
    async fn caught_up(&self) -> bool {
        if !self.receive.catch_up().await {
            return false;
        }
        self.live.store(true, Ordering::Relaxed);
        true
    }
}
