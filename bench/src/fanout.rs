//! `fanout`: N subscribers in one room, senders posting R messages/s for S seconds. Each body
//! carries its send time (`t=<unix nanos>`); each subscriber computes receive time - send time
//! (same machine, same clock) and keeps the seqs it received. At the end those are compared with
//! the seqs `sendMessage` returned: missing ones are lost, repeated ones duplicated. With
//! `--url2` the senders post to a second server instance, so delivery crosses instances.

mod receiver;
mod sender;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use self::receiver::DeliveryStats;
use crate::client::{Endpoint, HttpClient};
use crate::gql;
use crate::pool::{self, PoolConfig};
use crate::report::{ErrorCounts, LatencySummary, fmt_cpu, per_second};
use crate::setup;
use crate::sys::{self, CpuMeter, CpuUsage};

#[derive(Clone, Debug)]
pub struct FanoutConfig {
    pub url: String,
    /// Where the senders post; `None`: the same server as the subscribers.
    pub url2: Option<String>,
    pub subscribers: usize,
    /// Users to register; sockets share their tokens round-robin. `None`: one per subscriber.
    pub users: Option<usize>,
    /// Messages per second, over all senders.
    pub rate: f64,
    pub duration: Duration,
    /// Sender connections (each at rate / senders), for rates one connection cannot sustain.
    pub senders: usize,
    /// Pad message bodies to at least this many characters.
    pub body_size: usize,
    /// Pause between the last subscription and the first message.
    pub settle: Duration,
    /// How long to wait for stragglers after the last message before counting losses.
    pub drain: Duration,
    pub source_addrs: usize,
    pub open_concurrency: usize,
    pub server_pid: Option<u32>,
    pub register_concurrency: usize,
    /// Subscribe to `roomEvents` (every event of the room) instead of `messageAdded`.
    pub room_events: bool,
    /// Users (the first of those registered) who keep typing in the room while messages go out,
    /// each renewing `setTyping` every 2 s.
    pub typists: usize,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8000".into(),
            url2: None,
            subscribers: 100,
            users: None,
            rate: 10.0,
            duration: Duration::from_secs(10),
            senders: 1,
            body_size: 0,
            settle: Duration::from_secs(2),
            drain: Duration::from_secs(5),
            source_addrs: 4,
            open_concurrency: 256,
            server_pid: None,
            register_concurrency: 8,
            room_events: false,
            typists: 0,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FanoutReport {
    pub url: String,
    pub url2: Option<String>,
    pub subscribers: usize,
    pub users: usize,
    pub bench_threads: usize,
    pub subscribed: u64,
    pub open_failures: ErrorCounts,
    pub first_failure: Option<String>,
    pub target_rate: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub sent_per_sec: f64,
    pub send_errors: ErrorCounts,
    pub send_latency: LatencySummary,
    /// `sent x subscribed`: what a perfect run delivers.
    pub expected_deliveries: u64,
    /// Deliveries divided by the sending window.
    pub deliveries_per_sec: f64,
    #[serde(flatten)]
    pub stats: DeliveryStats,
    pub cpu: CpuUsage,
}

pub async fn run(config: FanoutConfig) -> Result<FanoutReport> {
    sys::raise_nofile_limit()?;
    let endpoint = Endpoint::parse(&config.url)?;
    let send_endpoint = match &config.url2 {
        Some(url2) => Endpoint::parse(url2)?,
        None => endpoint.clone(),
    };
    let run = setup::run_id();
    let users = config
        .users
        .unwrap_or(config.subscribers)
        .clamp(1, config.subscribers.max(1));
    let accounts =
        setup::register_users(&endpoint, &run, users, config.register_concurrency).await?;
    let room_id =
        setup::shared_room(&endpoint, &run, &accounts, config.register_concurrency).await?;
    let tokens: Vec<String> = accounts.iter().map(|a| a.access_token.clone()).collect();

    // Counted by every subscriber, so the end of the run can tell when all messages are in.
    let delivered = Arc::new(AtomicU64::new(0));
    let expected_per_socket = (config.rate * config.duration.as_secs_f64() * 1.1) as usize + 16;
    let (stop_tx, stop) = watch::channel(false);
    let pool_config = PoolConfig {
        sockets: config.subscribers,
        source_addrs: config.source_addrs,
        open_concurrency: config.open_concurrency,
        query: match config.room_events {
            true => gql::ROOM_EVENTS,
            false => gql::MESSAGE_ADDED,
        },
    };
    let mut pool = pool::spawn(&endpoint, &tokens, &room_id, &pool_config, &stop, {
        let delivered = delivered.clone();
        let capacity = expected_per_socket.min(100_000);
        move |socket, stop| receiver::subscriber(socket, stop, delivered.clone(), capacity)
    })?;
    let opened = pool.wait_open().await?;
    tokio::time::sleep(config.settle).await;

    eprintln!(
        "sending {:.1} msg/s for {:.1}s to {} subscribers",
        config.rate,
        config.duration.as_secs_f64(),
        opened.opened
    );
    let typists = typists(&endpoint, &accounts, config.typists, &room_id, &stop);
    let cpu = CpuMeter::start(config.server_pid)?;
    let sent = sender::send_all(&config, &send_endpoint, &accounts[0].auth, &room_id, &run).await?;
    let expected = sent.seqs.len() as u64 * opened.opened;
    let drain_until = Instant::now() + config.drain;
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = cpu.finish();
    let _ = stop_tx.send(true);
    for typist in typists {
        let _ = typist.await;
    }
    let joined = pool.join().await;
    let stats = DeliveryStats::tally(&sent.seqs, joined.results);

    Ok(FanoutReport {
        url: config.url,
        url2: config.url2,
        subscribers: config.subscribers,
        users,
        bench_threads: tokio::runtime::Handle::current().metrics().num_workers(),
        subscribed: opened.opened,
        open_failures: joined.failures,
        first_failure: joined.first_failure,
        target_rate: config.rate,
        duration_s: config.duration.as_secs_f64(),
        sent: sent.seqs.len() as u64,
        sent_per_sec: per_second(sent.seqs.len() as u64, config.duration),
        send_errors: sent.errors,
        send_latency: sent.latencies.summary(),
        expected_deliveries: expected,
        deliveries_per_sec: per_second(stats.deliveries, config.duration),
        stats,
        cpu,
    })
}

/// `count` of `accounts` typing in the room, a renewal every 2 s each, until `stop`. Their
/// starts are spread over those 2 s, as people's are: in step, they would all land at once.
fn typists(
    endpoint: &Arc<Endpoint>,
    accounts: &[setup::Account],
    count: usize,
    room_id: &str,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    const EVERY: Duration = Duration::from_secs(2);
    accounts
        .iter()
        .cycle()
        .take(count)
        .enumerate()
        .map(|(i, account)| {
            let (auth, room_id, mut stop) =
                (account.auth.clone(), room_id.to_owned(), stop.clone());
            let mut client = HttpClient::new(endpoint.clone());
            let offset = EVERY * i as u32 / count as u32;
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                loop {
                    if let Err(e) = gql::set_typing(&mut client, &auth, &room_id).await {
                        eprintln!("setTyping failed: {e}");
                    }
                    tokio::select! {
                        _ = stop.changed() => return,
                        () = tokio::time::sleep(EVERY) => {}
                    }
                }
            })
        })
        .collect()
}

impl fmt::Display for FanoutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let via = self
            .url2
            .as_deref()
            .map_or(String::new(), |url2| format!(", sending through {url2}"));
        writeln!(
            f,
            "fanout against {}{via}: {} subscribers over {} users, {} bench thread(s)",
            self.url, self.subscribers, self.users, self.bench_threads
        )?;
        writeln!(
            f,
            "  subscribed: {}; open failures: {}",
            self.subscribed, self.open_failures
        )?;
        if let Some(first) = &self.first_failure {
            writeln!(f, "  first failure: {first}")?;
        }
        writeln!(
            f,
            "  sent: {} in {:.1}s ({:.1}/s, target {:.1}/s); send errors: {}",
            self.sent, self.duration_s, self.sent_per_sec, self.target_rate, self.send_errors
        )?;
        writeln!(f, "  sendMessage latency: {}", self.send_latency)?;
        let s = &self.stats;
        writeln!(
            f,
            "  deliveries: {}/{} ({:.0}/s)",
            s.deliveries, self.expected_deliveries, self.deliveries_per_sec
        )?;
        writeln!(f, "  end-to-end latency: {}", s.latency)?;
        writeln!(
            f,
            "  lost: {} ({} subscribers affected), duplicated: {}, out of order: {}, unexpected: {}",
            s.lost, s.subscribers_with_loss, s.duplicated, s.out_of_order, s.unexpected
        )?;
        writeln!(f, "  bad frames: {}", s.bad_frames)?;
        if let Some(first) = &s.first_bad_frame {
            writeln!(f, "  first bad frame: {first}")?;
        }
        writeln!(f, "  sockets lost during the run: {}", s.sockets_lost)?;
        write!(f, "  ")?;
        fmt_cpu(f, &self.cpu)
    }
}
