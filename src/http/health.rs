//! Liveness and readiness probes.
use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use super::HttpState;

/// 200 while the process serves requests.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 only while the database answers (within a second) and this instance hears the others
/// (its Postgres listener, or NATS, is connected and caught up; the reason names which), so a load balancer stops sending
/// traffic to an instance that could only fail it, or whose subscribers would hear nothing
/// and whose sockets would not learn of a logout elsewhere.
pub async fn readyz(State(http): State<HttpState>) -> (StatusCode, Json<Value>) {
    if let Some(reason) = http.state.broker.unavailable() {
        tracing::warn!(reason, "readiness: not hearing the other instances");
        return unavailable(reason);
    }
    match tokio::time::timeout(Duration::from_secs(1), http.state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unavailable");
            unavailable("database")
        }
        Err(_) => {
            tracing::warn!("readiness: database did not answer within 1 s");
            unavailable("database")
        }
    }
}

fn unavailable(reason: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "reason": reason })),
    )
}
