//! Opening many subscribed sockets: one task per socket, a semaphore that bounds how many are
//! being opened at once (so the server's accept backlog does not overflow), source addresses
//! spread over 127.0.0.2.. and progress on stderr. Once subscribed, each socket task runs the
//! workload's handler until the stop signal.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::Endpoint;
use crate::report::ErrorCounts;
use crate::ws::{GqlSocket, WsError, source_ip};

/// The subscription id every socket uses (one subscription per socket).
pub const SUBSCRIPTION_ID: &str = "1";

#[derive(Clone, Debug)]
pub struct PoolConfig {
    pub sockets: usize,
    /// Loopback source addresses to spread over (127.0.0.2 ...); 0 lets the OS choose.
    pub source_addrs: usize,
    /// Sockets being opened (connect, upgrade, init, subscribe) at the same time.
    pub open_concurrency: usize,
    /// What each socket subscribes to (`gql::MESSAGE_ADDED` or `gql::ROOM_EVENTS`).
    pub query: &'static str,
}

/// Sockets being opened or held; each task yields the handler's result or why it failed to open.
pub struct Pool<T> {
    tasks: Vec<JoinHandle<Result<T, WsError>>>,
    opened: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    started: Instant,
}

/// How the opening went.
pub struct Opened {
    pub opened: u64,
    pub failed: u64,
    pub open_time: Duration,
}

/// What the tasks returned, once stopped.
pub struct Joined<T> {
    pub results: Vec<T>,
    /// Sockets that could not be opened, by reason.
    pub failures: ErrorCounts,
    pub first_failure: Option<String>,
}

/// Spawns one task per socket: socket `i` uses `tokens[i % tokens.len()]`, subscribes to
/// `messageAdded` in `room_id`, then runs `handler(socket, stop)`.
pub fn spawn<T, F, Fut>(
    endpoint: &Arc<Endpoint>,
    tokens: &[String],
    room_id: &str,
    config: &PoolConfig,
    stop: &watch::Receiver<bool>,
    handler: F,
) -> Result<Pool<T>>
where
    T: Send + 'static,
    F: Fn(GqlSocket, watch::Receiver<bool>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    ensure!(!tokens.is_empty(), "no access tokens to open sockets with");
    let permits = Arc::new(Semaphore::new(config.open_concurrency.max(1)));
    let (opened, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let room_id: Arc<str> = room_id.into();
    let tasks = (0..config.sockets)
        .map(|i| {
            let endpoint = endpoint.clone();
            let token = tokens[i % tokens.len()].clone();
            let source = source_ip(&endpoint, i, config.source_addrs);
            let (permits, opened, failed, room_id) = (
                permits.clone(),
                opened.clone(),
                failed.clone(),
                room_id.clone(),
            );
            let (stop, handler, query) = (stop.clone(), handler.clone(), config.query);
            tokio::spawn(async move {
                let socket = {
                    let _permit = permits
                        .acquire()
                        .await
                        .expect("the semaphore is never closed");
                    let socket = GqlSocket::open(&endpoint, source, &token).await;
                    match socket {
                        Ok(mut socket) => socket
                            .subscribe_messages(SUBSCRIPTION_ID, query, &room_id)
                            .await
                            .map(|()| socket),
                        Err(e) => Err(e),
                    }
                };
                match socket {
                    Ok(socket) => {
                        opened.fetch_add(1, Ordering::Relaxed);
                        Ok(handler(socket, stop).await)
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        Err(e)
                    }
                }
            })
        })
        .collect();
    Ok(Pool {
        tasks,
        opened,
        failed,
        started: Instant::now(),
    })
}

impl<T> Pool<T> {
    /// Waits until every socket is subscribed or has failed, with progress on stderr. Fails if
    /// no socket could be opened, with the first socket's reason.
    pub async fn wait_open(&mut self) -> Result<Opened> {
        let total = self.tasks.len() as u64;
        let mut last_print = Instant::now();
        loop {
            let (opened, failed) = (
                self.opened.load(Ordering::Relaxed),
                self.failed.load(Ordering::Relaxed),
            );
            if opened + failed >= total {
                let open_time = self.started.elapsed();
                eprintln!(
                    "opening sockets: {opened}/{total} subscribed, {failed} failed, in {:.1}s",
                    open_time.as_secs_f64()
                );
                if opened == 0 && total > 0 {
                    let first = self.tasks.remove(0).await;
                    match first {
                        Ok(Err(e)) => bail!("no socket could be opened; the first failed with {e}"),
                        _ => bail!("no socket could be opened"),
                    }
                }
                return Ok(Opened {
                    opened,
                    failed,
                    open_time,
                });
            }
            if last_print.elapsed() >= Duration::from_secs(1) {
                eprintln!("opening sockets: {opened}/{total} subscribed, {failed} failed");
                last_print = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for every task (send the stop signal first) and sorts out what they returned.
    pub async fn join(self) -> Joined<T> {
        let mut joined = Joined {
            results: Vec::with_capacity(self.tasks.len()),
            failures: ErrorCounts::default(),
            first_failure: None,
        };
        for task in self.tasks {
            match task.await {
                Ok(Ok(result)) => joined.results.push(result),
                Ok(Err(e)) => {
                    joined.failures.add(&e.kind);
                    joined.first_failure.get_or_insert_with(|| e.to_string());
                }
                Err(e) => {
                    joined.failures.add("task panicked");
                    joined.first_failure.get_or_insert_with(|| e.to_string());
                }
            }
        }
        joined
    }
}
