//! Shared building blocks of the reports: latency histograms and their summaries, error tallies,
//! and the few formatting helpers the text output uses.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram can hold: one minute, in microseconds. Larger values saturate.
const MAX_MICROS: u64 = 60_000_000;

/// A latency histogram in microseconds with 3 significant digits, one per task (no locking in
/// hot loops), merged when the workload ends.
#[derive(Clone)]
pub struct Latencies(Histogram<u64>);

impl Latencies {
    pub fn new() -> Self {
        Self(
            Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("static histogram bounds are valid"),
        )
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let h = &self.0;
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            mean_us: h.mean().round() as u64,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// Percentiles of one latency distribution, in microseconds (JSON) and shown in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return f.write_str("no samples");
        }
        write!(
            f,
            "p50 {} p90 {} p99 {} p99.9 {} max {} (mean {}, n={})",
            Ms(self.p50_us),
            Ms(self.p90_us),
            Ms(self.p99_us),
            Ms(self.p999_us),
            Ms(self.max_us),
            Ms(self.mean_us),
            self.count
        )
    }
}

/// Microseconds shown as milliseconds.
pub struct Ms(pub u64);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}ms", self.0 as f64 / 1000.0)
    }
}

/// Errors by kind: a GraphQL `extensions.code`, `HTTP <status>`, `transport`, `timeout`, ...
/// Allocates only when an error happens, so it is cheap in hot loops.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct ErrorCounts(BTreeMap<String, u64>);

impl ErrorCounts {
    pub fn add(&mut self, kind: &str) {
        match self.0.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.0.insert(kind.to_owned(), 1);
            }
        }
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for (kind, n) in &other.0 {
            *self.0.entry(kind.clone()).or_default() += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn get(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }
}

impl fmt::Display for ErrorCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect();
        write!(f, "{} ({})", self.total(), parts.join(", "))
    }
}

/// `count / seconds`, or 0 for an empty window.
pub fn per_second(count: u64, window: Duration) -> f64 {
    let secs = window.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// The CPU line shared by the reports.
pub fn fmt_cpu(f: &mut fmt::Formatter<'_>, cpu: &crate::sys::CpuUsage) -> fmt::Result {
    write!(f, "cpu: bench {:.0}% of a core", cpu.bench_cpu_percent)?;
    match cpu.server_cpu_percent {
        Some(server) => writeln!(f, ", server {server:.0}%"),
        None => writeln!(f, " (pass --server-pid for the server's)"),
    }
}
