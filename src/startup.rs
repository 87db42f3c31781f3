//! Building and running the server: bind first, then report the real address (port 0 in tests).
use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use axum::{Router, serve::ListenerExt};
use tokio::net::TcpListener;

use crate::{config::Config, db, graphql, graphql::pipeline::Documents, http, state::AppState};

pub struct Application {
    listener: TcpListener,
    router: Router,
    /// `/metrics` on an address of its own (`METRICS_ADDR`), if configured.
    metrics: Option<TcpListener>,
    state: AppState,
}

impl Application {
    /// Validates the config, connects, migrates, and binds; serving starts with `run`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        // An allow-list that cannot be read stops the server before it touches anything.
        let documents = Documents::new(&config.graphql)?;
        // Before anything records a metric, so nothing recorded is lost.
        crate::telemetry::metrics();
        db::migrate(&config.database).await?;
        let pools = db::connect(&config.database).await?;
        let bind_addr = config.bind_addr;
        let state = AppState::new(config, pools).await?;
        let schema = graphql::build(state.clone());
        let router = http::router(state.clone(), schema, documents);
        let listener = TcpListener::bind(bind_addr)
            .await
            .with_context(|| format!("bind {bind_addr} (BIND_ADDR)"))?;
        let metrics = match state.config.http.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("bind {addr} (METRICS_ADDR)"))?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            router,
            metrics,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served when it has an address of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown` resolves. Then it stops accepting, closes every socket with
    /// 1001 (clients reconnect to another instance), lets in-flight requests finish, and
    /// returns once all of that is done or the grace period is over, whichever comes first.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let open_files = crate::os::raise_open_files_limit();
        tracing::info!(addr = %self.local_addr(), ?open_files, "serving GraphQL on /graphql");
        if let Some(metrics) = self.metrics {
            tracing::info!(addr = ?metrics.local_addr().ok(), "serving /metrics");
            let stopping = self.state.shutdown.clone();
            tokio::spawn(async move {
                let served = axum::serve(metrics, http::metrics_router())
                    .with_graceful_shutdown(stopping.cancelled_owned())
                    .await;
                if let Err(err) = served {
                    tracing::error!(error = %err, "metrics listener failed");
                }
            });
        }
        // Small writes (a chat message, a response) go out at once instead of waiting for the
        // previous one's acknowledgement (Nagle), which can hold them for tens of ms.
        let listener = self.listener.tap_io(|stream| {
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(error = %err, "could not set TCP_NODELAY");
            }
        });
        let state = self.state;
        let stopping = state.shutdown.clone();
        let served = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Sockets (and background tasks) see this at once and say goodbye.
            stopping.cancel();
        });
        // `served` ends after the signal, once in-flight requests have been answered.
        let drained = async {
            served.await.context("serve")?;
            state.tasks.close();
            state.tasks.wait().await;
            anyhow::Ok(())
        };
        let grace_over = async {
            state.shutdown.cancelled().await;
            tokio::time::sleep(state.config.shutdown_grace).await;
        };
        tokio::select! {
            result = drained => result,
            () = grace_over => {
                tracing::warn!(
                    grace = ?state.config.shutdown_grace,
                    sockets = state.tasks.len(),
                    "grace period over; exiting with work in flight"
                );
                Ok(())
            }
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
