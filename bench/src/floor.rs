//! `fanout --floor`: the same fan-out first against the machine's floor (`chat-bench baseline
//! --prepared-frames`, started as a child process on a free port: one frame serialised per
//! message and written to every socket, no GraphQL per delivery), then against the server, in
//! one invocation, with the server's figures as multiples of the floor's.

use std::fmt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::fanout::{self, FanoutConfig, FanoutReport};

#[derive(Debug, Serialize)]
pub struct FloorReport {
    pub floor: FanoutReport,
    pub server: FanoutReport,
    /// The server's end-to-end p99 over the floor's.
    pub p99_ratio: f64,
    /// The server's deliveries per second over the floor's.
    pub deliveries_ratio: f64,
}

/// The floor, killed when dropped.
struct Floor(Child);

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(config: FanoutConfig) -> Result<FloorReport> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(std::env::current_exe().context("the bench's own path")?)
        .args(["baseline", "--prepared-frames", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start the floor (chat-bench baseline --prepared-frames)")?;
    let floor = Floor(child);
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        bail!("the floor did not start on port {port}");
    }
    eprintln!("fan-out against the floor (127.0.0.1:{port})");
    let floor_report = fanout::run(FanoutConfig {
        url: format!("http://127.0.0.1:{port}"),
        url2: None,
        server_pid: Some(floor.0.id()),
        ..config.clone()
    })
    .await?;
    drop(floor);
    eprintln!("fan-out against the server ({})", config.url);
    let server = fanout::run(config).await?;
    let ratio = |server: f64, floor: f64| {
        if floor > 0.0 {
            server / floor
        } else {
            f64::NAN
        }
    };
    Ok(FloorReport {
        p99_ratio: ratio(
            server.stats.latency.p99_us as f64,
            floor_report.stats.latency.p99_us as f64,
        ),
        deliveries_ratio: ratio(server.deliveries_per_sec, floor_report.deliveries_per_sec),
        floor: floor_report,
        server,
    })
}

impl fmt::Display for FloorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "floor (prepared frames):")?;
        write!(f, "{}", self.floor)?;
        writeln!(f)?;
        writeln!(f, "server:")?;
        write!(f, "{}", self.server)?;
        writeln!(f)?;
        writeln!(
            f,
            "server / floor: end-to-end p99 {:.2}x, deliveries/s {:.2}x",
            self.p99_ratio, self.deliveries_ratio
        )
    }
}
