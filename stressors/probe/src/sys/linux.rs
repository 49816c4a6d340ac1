//! Linux: schedstat.

/// Nanoseconds this thread has spent runnable but waiting for a CPU (on a run queue) since
/// it started: the second field of /proc/thread-self/schedstat (kernels with schedstats).
pub fn run_queue_wait_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat")
        .or_else(|_| std::fs::read_to_string("/proc/self/schedstat"))
        .ok()?;
    s.split_whitespace().nth(1)?.parse().ok()
}
