//! The axum edge: routes, middleware, and the HTTP face of GraphQL.
mod caller;
pub mod cookie;
mod endpoint;
mod health;
mod media;
mod metrics;
mod playground;
mod wire;
pub mod ws;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderName, HeaderValue, Method, header},
    middleware,
    routing::get,
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    graphql::{AppSchema, pipeline::Documents},
    state::AppState,
};

pub use caller::{bearer_token, client_ip, parse_bearer};

/// What every handler can reach. One `Arc`: axum clones it for every request.
#[derive(Clone)]
pub struct HttpState(Arc<HttpContext>);

pub struct HttpContext {
    pub state: AppState,
    pub schema: AppSchema,
    pub documents: Documents,
    pub sockets: Arc<ws::Sockets>,
}

impl std::ops::Deref for HttpState {
    type Target = HttpContext;

    fn deref(&self) -> &HttpContext {
        &self.0
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState, schema: AppSchema, documents: Documents) -> Router {
    let config = state.config.http.clone();
    let sockets = ws::Sockets::new(state.config.ws.max_sockets_per_user, state.chat.presence());
    let mut routes = Router::new()
        .route("/graphql", get(endpoint::get).post(endpoint::post))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    // Off: the paths answer 404 like any other unknown path.
    if config.playground {
        routes = routes.route(playground::ASSETS_ROUTE, get(playground::asset));
    }
    // Beside the API unless it has an address of its own (`metrics_router`).
    if config.metrics_addr.is_none() {
        routes = routes.route("/metrics", get(metrics::render));
    }
    let routes = routes
        .route_layer(middleware::from_fn(metrics::track))
        .with_state(HttpState(Arc::new(HttpContext {
            state,
            schema,
            documents,
            sockets,
        })));

    let origins = match &config.cors_origins {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        ),
    };
    let cors = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            REQUEST_ID,
            HeaderName::from_static(cookie::CSRF_HEADER),
        ])
        .expose_headers([REQUEST_ID])
        // The cookie goes only to the origins listed, never to any origin at all.
        .allow_credentials(config.auth_cookies && config.cors_origins.is_some())
        .max_age(Duration::from_secs(3600));

    // Outermost first: a request id before anything logs, then the span that carries it.
    routes
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(cors)
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                // The path only: a query string may carry a document and its variables.
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %id,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// `/metrics` alone, for `METRICS_ADDR`.
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(metrics::render))
}
