//! Logs (pretty or JSON, filtered by `RUST_LOG`) and the Prometheus metrics recorder.
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";
const SECRET_BEARING_TARGETS: [&str; 2] = ["tungstenite=info", "tokio_tungstenite=info"];

/// Installs the global subscriber. Call once, from `main`.
pub fn init_logging(format: LogFormat) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Whatever RUST_LOG asks: tungstenite traces every WebSocket message whole, and those
    // carry access tokens (connection_init) and passwords (a login over the socket).
    for quiet in SECRET_BEARING_TARGETS {
        filter = filter.add_directive(quiet.parse().expect("constant directive"));
    }
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Pretty => registry.with(fmt::layer()).init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .init(),
    }
}

/// The process-wide Prometheus recorder, installed on first use. Metrics are process-wide by
/// nature (the `metrics` facade is global), so several `Application`s in one process (tests)
/// share it.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed already; then ours just stays unused.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
