//! `login`: a login storm. `connections` tasks each log in as their own pre-registered user,
//! back to back, for `duration`; meanwhile one probe connection sends `me` at a fixed rate and
//! records its latency, which is compared with the same probe on an idle server: if Argon2
//! hashing starves the runtime, the probe's p99 shows it. An optional calibration measures
//! single-login latency t1 on the otherwise idle server; `server_cores / t1` is the most logins
//! per second the server's cores could hash, and the storm's rate is reported against it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::HeaderValue;
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::client::{Endpoint, HttpClient};
use crate::gql::{self, CallError};
use crate::report::{ErrorCounts, Latencies, LatencySummary, Ms, fmt_cpu, per_second};
use crate::setup::{self, Account, PASSWORD};
use crate::sys::{CpuMeter, CpuUsage};

const RATE_LIMITED: &str = "RATE_LIMITED";

#[derive(Clone, Debug)]
pub struct LoginConfig {
    pub url: String,
    /// Concurrent logins; one user is registered per connection.
    pub connections: usize,
    pub duration: Duration,
    /// `me` probes per second; 0 sends them back to back.
    pub probe_rate: f64,
    /// How long the probe runs alone before the storm, for its idle latency.
    pub probe_idle: Duration,
    /// Sequential logins for the calibration step; 0 skips it.
    pub calibrate_logins: usize,
    pub server_cores: usize,
    pub server_pid: Option<u32>,
    /// Registrations in flight during set-up.
    pub register_concurrency: usize,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8000".into(),
            connections: 16,
            duration: Duration::from_secs(10),
            probe_rate: 200.0,
            probe_idle: Duration::from_secs(2),
            calibrate_logins: 0,
            server_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            server_pid: None,
            register_concurrency: 8,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LoginReport {
    pub url: String,
    pub connections: usize,
    pub bench_threads: usize,
    pub duration_s: f64,
    pub logins: u64,
    pub logins_per_sec: f64,
    pub login_latency: LatencySummary,
    pub errors: ErrorCounts,
    /// Logins refused with `RATE_LIMITED`, and the longest `retryAfter` seen.
    pub rate_limited: u64,
    pub max_retry_after_s: Option<f64>,
    pub probe_rate: f64,
    pub probe_idle: LatencySummary,
    pub probe_under_load: LatencySummary,
    pub probe_errors: ErrorCounts,
    pub calibration: Option<Calibration>,
    pub cpu: CpuUsage,
}

/// The client-side Argon2 ceiling: `server_cores / t1`, with t1 the median single-login latency.
#[derive(Debug, Serialize)]
pub struct Calibration {
    pub single_login: LatencySummary,
    pub server_cores: usize,
    pub ceiling_per_sec: f64,
    /// Storm logins/s divided by the ceiling.
    pub achieved_fraction: f64,
}

#[derive(Default)]
struct Tally {
    latencies: Latencies,
    errors: ErrorCounts,
    /// Longest `retryAfter` seen, 0 if none.
    max_retry_after: f64,
}

pub async fn run(config: LoginConfig) -> Result<LoginReport> {
    let endpoint = Endpoint::parse(&config.url)?;
    let run = setup::run_id();
    let accounts = setup::register_users(
        &endpoint,
        &run,
        config.connections.max(1),
        config.register_concurrency,
    )
    .await?;
    let probe_auth = accounts[0].auth.clone();
    let me = gql::body(gql::ME, serde_json::Value::Null);

    let single_login = match config.calibrate_logins {
        0 => None,
        n => Some(calibrate(&endpoint, &accounts, n).await?),
    };

    eprintln!(
        "probing me on the idle server for {:.0}s",
        config.probe_idle.as_secs_f64()
    );
    let idle_until = Instant::now() + config.probe_idle;
    let probe_idle = probe(
        endpoint.clone(),
        me.clone(),
        probe_auth.clone(),
        config.probe_rate,
        idle_until,
    )
    .await;

    eprintln!(
        "login storm: {} connections for {:.0}s",
        config.connections,
        config.duration.as_secs_f64()
    );
    let end = Instant::now() + config.duration;
    let warned = Arc::new(AtomicBool::new(false));
    let storm: Vec<_> = accounts
        .iter()
        .take(config.connections)
        .map(|account| {
            tokio::spawn(storm_worker(
                endpoint.clone(),
                account.username.clone(),
                end,
                warned.clone(),
            ))
        })
        .collect();
    let cpu = CpuMeter::start(config.server_pid)?;
    let probe_load = probe(endpoint.clone(), me, probe_auth, config.probe_rate, end).await;
    let cpu = cpu.finish();

    let mut total = Tally::default();
    for worker in storm {
        let tally = worker.await.context("login task panicked")?;
        total.latencies.merge(&tally.latencies);
        total.errors.merge(&tally.errors);
        total.max_retry_after = total.max_retry_after.max(tally.max_retry_after);
    }
    let logins_per_sec = per_second(total.latencies.count(), config.duration);
    let calibration = single_login.map(|single_login| {
        let t1 = single_login.p50_us.max(1) as f64 / 1e6;
        let ceiling_per_sec = config.server_cores as f64 / t1;
        Calibration {
            single_login,
            server_cores: config.server_cores,
            ceiling_per_sec,
            achieved_fraction: logins_per_sec / ceiling_per_sec,
        }
    });
    let mut probe_errors = probe_idle.errors;
    probe_errors.merge(&probe_load.errors);
    Ok(LoginReport {
        url: config.url,
        connections: config.connections,
        bench_threads: tokio::runtime::Handle::current().metrics().num_workers(),
        duration_s: config.duration.as_secs_f64(),
        logins: total.latencies.count(),
        logins_per_sec,
        login_latency: total.latencies.summary(),
        rate_limited: total.errors.get(RATE_LIMITED),
        max_retry_after_s: (total.max_retry_after > 0.0).then_some(total.max_retry_after),
        errors: total.errors,
        probe_rate: config.probe_rate,
        probe_idle: probe_idle.latencies.summary(),
        probe_under_load: probe_load.latencies.summary(),
        probe_errors,
        calibration,
        cpu,
    })
}

/// Sequential logins on an idle server (one warm-up, then `n` recorded), spread over the users
/// so a per-account rate limit is less likely to interfere.
async fn calibrate(
    endpoint: &Arc<Endpoint>,
    accounts: &[Account],
    n: usize,
) -> Result<LatencySummary> {
    eprintln!("calibrating: {n} sequential logins");
    let mut client = HttpClient::new(endpoint.clone());
    let mut latencies = Latencies::new();
    for i in 0..=n {
        let body = gql::login_body(&accounts[i % accounts.len()].username, PASSWORD);
        let started = Instant::now();
        let response = client.post(body, None).await.map_err(CallError::from);
        if let Err(e) = response.and_then(|r| gql::check(&r)) {
            if e.code() == Some(RATE_LIMITED) {
                bail!(
                    "calibration login was rate limited ({e}); start the server with LOGIN_RATE_PER_ACCOUNT_IP=0 LOGIN_RATE_PER_ACCOUNT=0 LOGIN_RATE_PER_IP=0"
                );
            }
            bail!("calibration login failed: {e}");
        }
        if i > 0 {
            latencies.record(started.elapsed());
        }
    }
    Ok(latencies.summary())
}

async fn storm_worker(
    endpoint: Arc<Endpoint>,
    username: String,
    end: Instant,
    warned: Arc<AtomicBool>,
) -> Tally {
    let body = gql::login_body(&username, PASSWORD);
    let mut client = HttpClient::new(endpoint);
    let mut tally = Tally::default();
    while Instant::now() < end {
        let started = Instant::now();
        let response = client
            .post(body.clone(), None)
            .await
            .map_err(CallError::from);
        match response.and_then(|r| gql::check(&r)) {
            Ok(()) => tally.latencies.record(started.elapsed()),
            Err(e) => {
                tally.errors.add(&e.kind());
                if e.code() == Some(RATE_LIMITED) {
                    if !warned.swap(true, Ordering::Relaxed) {
                        eprintln!(
                            "warning: login rate limited ({e}); start the server with LOGIN_RATE_PER_ACCOUNT_IP=0 LOGIN_RATE_PER_ACCOUNT=0 LOGIN_RATE_PER_IP=0"
                        );
                    }
                    // Honour retryAfter (within the run) instead of hammering the limiter.
                    let wait = e.retry_after().unwrap_or(1.0);
                    tally.max_retry_after = tally.max_retry_after.max(wait);
                    tokio::time::sleep_until(
                        end.min(Instant::now() + Duration::from_secs_f64(wait)),
                    )
                    .await;
                } else if matches!(e, CallError::Http(_)) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    tally
}

/// `me` on one connection until `until`, at `rate` per second (0: back to back). Latency is
/// measured from the actual send; a response slower than the period delays the next probe.
async fn probe(
    endpoint: Arc<Endpoint>,
    body: Bytes,
    auth: HeaderValue,
    rate: f64,
    until: Instant,
) -> Tally {
    let mut client = HttpClient::new(endpoint);
    let mut tally = Tally::default();
    let mut ticker = (rate > 0.0).then(|| {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    });
    loop {
        if let Some(ticker) = &mut ticker {
            ticker.tick().await;
        }
        if Instant::now() >= until {
            return tally;
        }
        let started = Instant::now();
        let response = client
            .post(body.clone(), Some(&auth))
            .await
            .map_err(CallError::from);
        match response.and_then(|r| gql::check(&r)) {
            Ok(()) => tally.latencies.record(started.elapsed()),
            Err(e) => tally.errors.add(&e.kind()),
        }
    }
}

impl fmt::Display for LoginReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "login storm against {}: {} connections, {} bench thread(s), {:.0}s",
            self.url, self.connections, self.bench_threads, self.duration_s
        )?;
        writeln!(
            f,
            "  logins: {:.1}/s ({} ok)",
            self.logins_per_sec, self.logins
        )?;
        writeln!(f, "  login latency: {}", self.login_latency)?;
        writeln!(f, "  errors: {}", self.errors)?;
        if let Some(c) = &self.calibration {
            writeln!(
                f,
                "  Argon2 ceiling: t1 {} (single login, p50 of {}) x {} cores -> {:.1} logins/s; achieved {:.0}%",
                Ms(c.single_login.p50_us),
                c.single_login.count,
                c.server_cores,
                c.ceiling_per_sec,
                c.achieved_fraction * 100.0
            )?;
        }
        let rate = if self.probe_rate > 0.0 {
            format!("{:.0}/s", self.probe_rate)
        } else {
            "back to back".into()
        };
        writeln!(f, "  me probe ({rate}), idle server: {}", self.probe_idle)?;
        writeln!(
            f,
            "  me probe ({rate}), during storm: {}",
            self.probe_under_load
        )?;
        writeln!(f, "  probe errors: {}", self.probe_errors)?;
        write!(f, "  ")?;
        fmt_cpu(f, &self.cpu)?;
        if self.rate_limited > 0 {
            writeln!(
                f,
                "  WARNING: {} logins were RATE_LIMITED (retryAfter up to {:.0}s): the figures are not a hashing \
                 benchmark; restart the server with LOGIN_RATE_PER_ACCOUNT_IP=0 LOGIN_RATE_PER_ACCOUNT=0 LOGIN_RATE_PER_IP=0",
                self.rate_limited,
                self.max_retry_after_s.unwrap_or(0.0)
            )?;
        }
        Ok(())
    }
}
