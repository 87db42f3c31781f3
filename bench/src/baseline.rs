//! `baseline`: the thinnest async-graphql + axum server that answers `{ __typename }` on
//! `POST /graphql`: no middleware, no auth, no database. `chat-bench http --query typename`
//! against it and against the chat server, in the same run, gives the chat server's middleware
//! and stack cost as a ratio rather than an absolute number that depends on the machine.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use async_graphql_axum::GraphQL;
use axum::Router;
use axum::routing::post_service;
use tokio::net::TcpListener;

/// A schema needs at least one query field; `__typename` is what the benchmark asks for.
pub struct Query;

#[Object]
impl Query {
    async fn ok(&self) -> bool {
        true
    }
}

pub fn router() -> Router {
    let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
    Router::new().route("/graphql", post_service(GraphQL::new(schema)))
}

/// Serves on `listener` until the process is interrupted (Ctrl-C).
pub async fn serve(listener: TcpListener) -> Result<()> {
    axum::serve(listener, router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("baseline server failed")
}

/// Binds `addr` and serves; prints the address on stderr once listening.
pub async fn run(addr: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!(
        "baseline GraphQL server on http://{}/graphql (Ctrl-C to stop)",
        listener.local_addr()?
    );
    serve(listener).await
}
