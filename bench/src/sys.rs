//! What the bench reads from the operating system: process CPU time and RSS from `/proc`, and
//! the file-descriptor limit that caps how many sockets one process can hold.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit and returns the new soft limit.
///
/// Every WebSocket is a file descriptor, and the usual soft limit (1024) would stop the `idle`
/// and `fanout` workloads long before the hard limit (20,000 on the bench machine) does.
pub fn raise_nofile_limit() -> Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// Resident set size of a process in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: Pid) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .with_context(|| format!("no VmRSS line in {path}"))?;
    let kib = line.trim().trim_end_matches("kB").trim();
    kib.parse()
        .with_context(|| format!("bad VmRSS value {kib:?} in {path}"))
}

/// User plus system CPU time a process has used so far (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_time(pid: Pid) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // `after_comm` starts at field 3, so utime (14) and stime (15) are at 11 and 12.
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("unexpected format of {path}");
    };
    let ticks: u64 = utime.parse::<u64>()? + stime.parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / per_second))
}

/// A process id, or `self` for the bench's own process.
#[derive(Clone, Copy, Debug)]
pub enum Pid {
    This,
    Other(u32),
}

impl std::fmt::Display for Pid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pid::This => f.write_str("self"),
            Pid::Other(pid) => write!(f, "{pid}"),
        }
    }
}

/// CPU used during a measurement window, in percent of one core (200 = both cores of a 2-core
/// machine busy), for the bench itself and, if its pid was given, for the server.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuUsage {
    pub bench_cpu_percent: f64,
    pub server_cpu_percent: Option<f64>,
}

/// Samples CPU time at the start of a measurement window; [`CpuMeter::finish`] closes it.
pub struct CpuMeter {
    started: Instant,
    bench: Duration,
    server: Option<(u32, Duration)>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> Result<Self> {
        let server = match server_pid {
            Some(pid) => Some((pid, cpu_time(Pid::Other(pid))?)),
            None => None,
        };
        Ok(Self {
            started: Instant::now(),
            bench: cpu_time(Pid::This)?,
            server,
        })
    }

    pub fn finish(&self) -> CpuUsage {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let percent = |pid, before: Duration| {
            cpu_time(pid)
                .ok()
                .map(|now| now.saturating_sub(before).as_secs_f64() * 100.0 / wall)
        };
        CpuUsage {
            bench_cpu_percent: percent(Pid::This, self.bench).unwrap_or(0.0),
            server_cpu_percent: self
                .server
                .and_then(|(pid, before)| percent(Pid::Other(pid), before)),
        }
    }
}
