//! illumos.

/// Not read on illumos (microstate accounting would have it: prusage's pr_wtime).
pub fn run_queue_wait_ns() -> Option<u64> {
    None
}
