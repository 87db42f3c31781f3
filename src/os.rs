//! What the process asks of the operating system: enough file descriptors. (Freed memory is
//! given back by the allocator itself: see `MALLOC_CONF` in `main.rs`.)

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
