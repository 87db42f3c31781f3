//! What the process asks of the operating system: enough file descriptors, and freed memory
//! given back.
//!
//! glibc's allocator keeps what the program frees for reuse, per thread arena, and rarely
//! returns it. Two things here free a lot at once: every Argon2 hash frees a 19 MiB block (a
//! few registrations leave hundreds of MiB resident), and a burst of new sockets frees their
//! set-up state (parsing, validation, queries) while their long-lived state stays. Without
//! trimming, RSS would keep the high-water mark of both forever. `malloc_trim` releases free
//! pages anywhere in the heap; it walks the arenas, so it runs now and then, off the runtime.
use std::time::Duration;

use tokio_util::sync::CancellationToken;

const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Raises the soft limit on open files to the hard limit: every socket is a descriptor, and
/// the soft limit (often 1,024) would refuse connections long before memory runs out.
/// Returns the limit in force.
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                limit.rlim_cur = limit.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return None;
                }
            }
        }
        Some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    None
}

/// Starts trimming every few seconds until `shutdown`.
pub fn spawn_trimmer(shutdown: CancellationToken) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TRIM_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            // SAFETY: malloc_trim has no preconditions; it only takes the allocator's locks.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    });
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = shutdown;
}
