//! `idle`: what an idle, authenticated, subscribed socket costs the server in memory. Reads the
//! server's RSS (`VmRSS` of `--server-pid`) after set-up, opens N sockets that each do
//! `connection_init` + `subscribe`, waits for all of them, lets the server settle, reads RSS
//! again: (after - before) / N is the cost per socket. Then one message is sent to the room to
//! check that every subscription is live, and the sockets are held (answering pings) for a while.
//!
//! Each socket is a file descriptor in both processes; with a hard limit of 20,000 open files
//! per process, the server can hold somewhat fewer than 20,000 sockets.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{Endpoint, HttpClient};
use crate::gql;
use crate::pool::{self, PoolConfig};
use crate::report::ErrorCounts;
use crate::setup;
use crate::sys::{self, Pid};
use crate::ws::{GqlSocket, Inbound, WsError};

#[derive(Clone, Debug)]
pub struct IdleConfig {
    pub url: String,
    pub sockets: usize,
    /// Users to register; sockets share their tokens round-robin. `None`: one user per socket.
    pub users: Option<usize>,
    pub source_addrs: usize,
    pub open_concurrency: usize,
    /// Pause between the last subscription and the second RSS reading.
    pub settle: Duration,
    /// How long to hold the sockets after measuring.
    pub hold: Duration,
    /// Send one message after measuring and count the sockets that receive it.
    pub verify: bool,
    pub server_pid: Option<u32>,
    pub register_concurrency: usize,
    /// What the sockets' RSS is counted from.
    pub base: Base,
}

/// The RSS reading the sockets' cost is counted from. Set-up (registering users, making the
/// room) frees memory that the sockets then reuse: counted from after it, a socket looks
/// cheaper than on a server just deployed, which is what `Fresh` shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Base {
    /// The reading after set-up, just before the sockets open.
    #[default]
    AfterSetup,
    /// The reading of the server as the bench found it, before any set-up.
    Fresh,
}

impl Default for IdleConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8000".into(),
            sockets: 1000,
            users: None,
            source_addrs: 4,
            open_concurrency: 256,
            settle: Duration::from_secs(2),
            hold: Duration::from_secs(5),
            verify: true,
            server_pid: None,
            register_concurrency: 8,
            base: Base::AfterSetup,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub url: String,
    pub sockets: usize,
    pub users: usize,
    pub source_addrs: usize,
    pub bench_nofile_limit: u64,
    pub subscribed: u64,
    /// Subscriptions not yet ended by the server when the RSS was read.
    pub live_at_measurement: u64,
    pub failed: ErrorCounts,
    pub first_failure: Option<String>,
    pub open_time_s: f64,
    /// The server's RSS before registering users, before opening sockets, and after.
    pub server_rss_start_kib: Option<u64>,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_kib: Option<u64>,
    /// Counted from `base`.
    pub rss_per_socket_kib: Option<f64>,
    pub base: Base,
    pub bench_rss_kib: Option<u64>,
    /// Sockets that received the check message (`None` when not sent).
    pub verified: Option<u64>,
    /// Sockets lost while held (closed by the server, errors), by reason.
    pub lost: ErrorCounts,
    pub first_lost: Option<String>,
}

/// What one socket saw while held.
struct Held {
    lost: Option<WsError>,
}

pub async fn run(config: IdleConfig) -> Result<IdleReport> {
    let bench_nofile_limit = sys::raise_nofile_limit()?;
    let endpoint = Endpoint::parse(&config.url)?;
    let server_rss = || {
        let rss = config.server_pid.map(|pid| sys::rss_kib(Pid::Other(pid)));
        rss.transpose().context("reading the server's RSS")
    };
    let rss_start = server_rss()?;

    let run = setup::run_id();
    let users = config
        .users
        .unwrap_or(config.sockets)
        .clamp(1, config.sockets.max(1));
    let accounts =
        setup::register_users(&endpoint, &run, users, config.register_concurrency).await?;
    let room_id =
        setup::shared_room(&endpoint, &run, &accounts, config.register_concurrency).await?;
    let tokens: Vec<String> = accounts.iter().map(|a| a.access_token.clone()).collect();

    // Each registration costs the server an Argon2 block (19 MiB by default) that its allocator
    // may keep or hand back later: let it settle before the baseline reading too.
    tokio::time::sleep(config.settle).await;
    let rss_before = server_rss()?;

    let deliveries = Arc::new(AtomicU64::new(0));
    // Subscriptions the server ended (e.g. with an error): their sockets stay open.
    let ended = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop) = watch::channel(false);
    let pool_config = PoolConfig {
        sockets: config.sockets,
        source_addrs: config.source_addrs,
        open_concurrency: config.open_concurrency,
        query: gql::MESSAGE_ADDED,
    };
    let mut pool = pool::spawn(&endpoint, &tokens, &room_id, &pool_config, &stop, {
        let (deliveries, ended) = (deliveries.clone(), ended.clone());
        move |socket, stop| hold(socket, stop, deliveries.clone(), ended.clone())
    })?;
    let opened = pool.wait_open().await?;

    tokio::time::sleep(config.settle).await;
    let rss_after = server_rss()?;
    let live_at_measurement = opened.opened - ended.load(Ordering::Relaxed);
    let bench_rss_kib = sys::rss_kib(Pid::This).ok();

    let verified = if config.verify {
        Some(
            verify(
                &endpoint,
                &accounts[0],
                &room_id,
                opened.opened,
                &deliveries,
            )
            .await?,
        )
    } else {
        None
    };

    eprintln!(
        "holding {} sockets for {:.0}s",
        opened.opened,
        config.hold.as_secs_f64()
    );
    tokio::time::sleep(config.hold).await;
    let _ = stop_tx.send(true);
    let joined = pool.join().await;
    let mut lost = ErrorCounts::default();
    let mut first_lost = None;
    for e in joined.results.iter().filter_map(|held| held.lost.as_ref()) {
        lost.add(&e.kind);
        first_lost.get_or_insert_with(|| e.to_string());
    }

    let base = match config.base {
        Base::AfterSetup => rss_before,
        Base::Fresh => rss_start,
    };
    let rss_per_socket_kib = match (base, rss_after) {
        (Some(before), Some(after)) if opened.opened > 0 => {
            Some((after as f64 - before as f64) / opened.opened as f64)
        }
        _ => None,
    };
    Ok(IdleReport {
        url: config.url,
        sockets: config.sockets,
        users,
        source_addrs: config.source_addrs,
        bench_nofile_limit,
        subscribed: opened.opened,
        live_at_measurement,
        failed: joined.failures,
        first_failure: joined.first_failure,
        open_time_s: opened.open_time.as_secs_f64(),
        server_rss_start_kib: rss_start,
        server_rss_before_kib: rss_before,
        server_rss_after_kib: rss_after,
        rss_per_socket_kib,
        base: config.base,
        bench_rss_kib,
        verified,
        lost,
        first_lost,
    })
}

/// Holds a subscribed socket until `stop`, answering pings (inside `recv`) and counting
/// `next` frames.
async fn hold(
    mut socket: GqlSocket,
    mut stop: watch::Receiver<bool>,
    deliveries: Arc<AtomicU64>,
    ended: Arc<AtomicU64>,
) -> Held {
    // A failing subscription stream arrives as a `next` with errors, then `complete`.
    let mut last_error = None;
    let lost = loop {
        let inbound = tokio::select! {
            _ = stop.changed() => break None,
            inbound = socket.recv() => inbound,
        };
        match inbound {
            Ok(Inbound::Next(text)) => match gql::parse_message_added(&text) {
                Ok(None) => {}
                Ok(Some(_)) => {
                    deliveries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => last_error = Some(e),
            },
            Ok(Inbound::Error(text)) => {
                break Some(WsError {
                    kind: "subscription error".into(),
                    detail: text.to_string(),
                });
            }
            Ok(Inbound::Complete) => {
                let detail = last_error.take().unwrap_or_else(|| "no error given".into());
                break Some(WsError {
                    kind: "completed by server".into(),
                    detail,
                });
            }
            Ok(Inbound::Closed { code, reason }) => {
                let kind =
                    code.map_or_else(|| "closed".to_string(), |code| format!("closed {code}"));
                break Some(WsError {
                    kind,
                    detail: reason,
                });
            }
            Err(e) => break Some(e),
        }
    };
    match lost {
        Some(_) => {
            ended.fetch_add(1, Ordering::Relaxed);
        }
        None => socket.close().await,
    }
    Held { lost }
}

/// Sends one message to the room and waits (up to 5 s) until every socket has received it.
async fn verify(
    endpoint: &Arc<Endpoint>,
    sender: &setup::Account,
    room_id: &str,
    sockets: u64,
    deliveries: &AtomicU64,
) -> Result<u64> {
    let before = deliveries.load(Ordering::Relaxed);
    let mut client = HttpClient::new(endpoint.clone());
    let body = gql::send_message_body(
        room_id,
        "chat-bench idle check",
        &format!("idle-check-{}", setup::run_id()),
    );
    let response = client
        .post(body, Some(&sender.auth))
        .await
        .map_err(gql::CallError::from);
    response
        .and_then(|r| gql::decode_sent_seq(&r))
        .context("sending the check message")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while deliveries.load(Ordering::Relaxed) - before < sockets && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(deliveries.load(Ordering::Relaxed) - before)
}

impl fmt::Display for IdleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "idle sockets against {}: {} sockets over {} users, {} source addresses (fd limit {})",
            self.url, self.sockets, self.users, self.source_addrs, self.bench_nofile_limit
        )?;
        writeln!(
            f,
            "  subscribed: {} in {:.1}s ({} still live when RSS was read); failed: {}",
            self.subscribed, self.open_time_s, self.live_at_measurement, self.failed
        )?;
        if let Some(first) = &self.first_failure {
            writeln!(f, "  first failure: {first}")?;
        }
        match (
            self.server_rss_start_kib,
            self.server_rss_before_kib,
            self.server_rss_after_kib,
        ) {
            (Some(start), Some(before), Some(after)) => {
                let per_socket = self
                    .rss_per_socket_kib
                    .map_or("n/a".into(), |kib| format!("{kib:.1} KiB"));
                writeln!(
                    f,
                    "  server RSS: {start} KiB at start, {before} KiB after set-up, {after} KiB with the sockets"
                )?;
                let from = match self.base {
                    Base::AfterSetup => "after set-up",
                    Base::Fresh => "from the fresh process",
                };
                writeln!(f, "  server RSS per socket ({from}): {per_socket}")?;
            }
            _ => writeln!(f, "  server RSS: not measured (pass --server-pid)")?,
        }
        if let Some(kib) = self.bench_rss_kib {
            writeln!(f, "  bench RSS: {kib} KiB")?;
        }
        if let Some(verified) = self.verified {
            writeln!(
                f,
                "  check message received by {verified}/{} sockets",
                self.subscribed
            )?;
        }
        writeln!(f, "  lost while held: {}", self.lost)?;
        match &self.first_lost {
            Some(first) => writeln!(f, "  first lost: {first}"),
            None => Ok(()),
        }
    }
}
