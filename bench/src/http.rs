//! `http`: GraphQL over HTTP at a fixed concurrency. Each of `connections` tasks owns one
//! keep-alive connection and sends the same pre-built request back to back (closed loop), so
//! throughput is what the server sustains at that concurrency and latency is per request.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::time::Instant;

use crate::client::{Endpoint, HttpClient};
use crate::gql::{self, CallError};
use crate::report::{ErrorCounts, Latencies, LatencySummary, fmt_cpu, per_second};
use crate::setup;
use crate::sys::{CpuMeter, CpuUsage};

/// Which operation to send.
#[derive(Clone, Copy, Debug, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Query {
    /// `{ __typename }`: no resolver, no auth; the cost of the HTTP and GraphQL stack alone.
    Typename,
    /// `me { id username }` with a bearer token: token validation plus a user lookup.
    Me,
    /// A page of 100 messages with their authors and reactions (each message has 1–5
    /// reactions from 5 users, in up to 3 emoji): what opening a room costs.
    History,
    /// The viewer's 100 rooms by activity, each with the viewer's role and marker, unread
    /// messages and mentions, members and members online: what opening the app costs.
    Rooms,
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub url: String,
    pub connections: usize,
    pub duration: Duration,
    /// Requests before this much time has passed are not recorded (connections, caches).
    pub warmup: Duration,
    pub query: Query,
    pub server_pid: Option<u32>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8000".into(),
            connections: 32,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            query: Query::Typename,
            server_pid: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HttpReport {
    pub url: String,
    pub query: Query,
    pub connections: usize,
    pub bench_threads: usize,
    pub duration_s: f64,
    pub requests: u64,
    pub errors: ErrorCounts,
    pub requests_per_sec: f64,
    pub latency: LatencySummary,
    pub cpu: CpuUsage,
}

/// What one connection task measured.
#[derive(Default)]
struct Tally {
    latencies: Latencies,
    errors: ErrorCounts,
}

pub async fn run(config: HttpConfig) -> Result<HttpReport> {
    let endpoint = Endpoint::parse(&config.url)?;
    let (body, auth) = match config.query {
        Query::Typename => (gql::body(gql::TYPENAME, serde_json::Value::Null), None),
        Query::Me => {
            let account = setup::register_users(&endpoint, &setup::run_id(), 1, 1)
                .await?
                .remove(0);
            (
                gql::body(gql::ME, serde_json::Value::Null),
                Some(account.auth),
            )
        }
        Query::History => {
            let room_id = setup::reacted_history(&endpoint, &setup::run_id()).await?;
            (
                gql::body(gql::HISTORY, serde_json::json!({ "r": room_id.1 })),
                Some(room_id.0),
            )
        }
        Query::Rooms => {
            let auth = setup::busy_rooms(&endpoint, &setup::run_id()).await?;
            (gql::body(gql::ROOMS, serde_json::Value::Null), Some(auth))
        }
    };

    // One request first, so a server that is down or rejects the query fails loudly, not as
    // a report full of errors.
    let mut client = HttpClient::new(endpoint.clone());
    let response = client
        .post(body.clone(), auth.as_ref())
        .await
        .map_err(CallError::from);
    response
        .and_then(|r| gql::check(&r))
        .context("first request failed")?;

    let measure_from = Instant::now() + config.warmup;
    let end = measure_from + config.duration;
    let workers: Vec<_> = (0..config.connections)
        .map(|_| {
            let (endpoint, body, auth) = (endpoint.clone(), body.clone(), auth.clone());
            tokio::spawn(async move {
                let mut client = HttpClient::new(endpoint);
                let mut tally = Tally::default();
                while Instant::now() < end {
                    let started = Instant::now();
                    let result = match client.post(body.clone(), auth.as_ref()).await {
                        Ok(response) => gql::check(&response),
                        Err(e) => Err(e.into()),
                    };
                    if started < measure_from {
                        continue;
                    }
                    match result {
                        Ok(()) => tally.latencies.record(started.elapsed()),
                        Err(e) => {
                            tally.errors.add(&e.kind());
                            if matches!(e, CallError::Http(_)) {
                                // The server is gone or refusing: do not spin.
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                }
                tally
            })
        })
        .collect();

    tokio::time::sleep_until(measure_from).await;
    let cpu = CpuMeter::start(config.server_pid)?;
    tokio::time::sleep_until(end).await;
    let cpu = cpu.finish();

    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.await.context("connection task panicked")?;
        total.latencies.merge(&tally.latencies);
        total.errors.merge(&tally.errors);
    }
    Ok(HttpReport {
        url: config.url,
        query: config.query,
        connections: config.connections,
        bench_threads: tokio::runtime::Handle::current().metrics().num_workers(),
        duration_s: config.duration.as_secs_f64(),
        requests: total.latencies.count(),
        requests_per_sec: per_second(total.latencies.count(), config.duration),
        errors: total.errors,
        latency: total.latencies.summary(),
        cpu,
    })
}

impl fmt::Display for HttpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query = serde_json::to_value(self.query).unwrap_or_default();
        writeln!(
            f,
            "http {} against {}: {} connections, {} bench thread(s), {:.0}s",
            query.as_str().unwrap_or("?"),
            self.url,
            self.connections,
            self.bench_threads,
            self.duration_s
        )?;
        writeln!(
            f,
            "  throughput: {:.0} req/s ({} ok)",
            self.requests_per_sec, self.requests
        )?;
        writeln!(f, "  errors: {}", self.errors)?;
        writeln!(f, "  latency: {}", self.latency)?;
        write!(f, "  ")?;
        fmt_cpu(f, &self.cpu)
    }
}
