//! A progress counter for the slow set-up phases (registering thousands of users costs an Argon2
//! hash each on the server; opening thousands of sockets takes a while): one line on stderr per
//! second, and a final line when done.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

#[derive(Clone)]
pub struct Progress {
    done: Arc<AtomicU64>,
}

/// Owns the printing task; dropping it without [`ProgressGuard::finish`] stops the printing too.
pub struct ProgressGuard {
    progress: Progress,
    label: String,
    total: u64,
    started: Instant,
    ticker: JoinHandle<()>,
}

impl Progress {
    /// Starts printing `label: done/total (rate/s)` to stderr every second.
    pub fn start(label: impl Into<String>, total: u64) -> (Progress, ProgressGuard) {
        let progress = Progress {
            done: Arc::new(AtomicU64::new(0)),
        };
        let label = label.into();
        let started = Instant::now();
        let ticker = {
            let (progress, label) = (progress.clone(), label.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await; // the first tick is immediate
                loop {
                    tick.tick().await;
                    eprintln!("{}", line(&label, progress.get(), total, started));
                }
            })
        };
        let guard = ProgressGuard {
            progress: progress.clone(),
            label,
            total,
            started,
            ticker,
        };
        (progress, guard)
    }

    pub fn inc(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

impl ProgressGuard {
    /// Stops the ticker and prints the final count and elapsed time.
    pub fn finish(self) {
        self.ticker.abort();
        eprintln!(
            "{} in {:.1}s",
            line(&self.label, self.progress.get(), self.total, self.started),
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        self.ticker.abort();
    }
}

fn line(label: &str, done: u64, total: u64, started: Instant) -> String {
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    format!("{label}: {done}/{total} ({rate:.0}/s)")
}
