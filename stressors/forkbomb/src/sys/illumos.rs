//! illumos (and any other Unix without a futex): waiters poll the word.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// No futex here: a short sleep instead (at most 1 ms, or `timeout`), so a waiter polls
/// the word; correct, only less prompt.
pub fn wait_while(word: &AtomicU32, expected: u32, timeout: Duration) {
    if word.load(Ordering::Acquire) == expected {
        std::thread::sleep(timeout.min(Duration::from_millis(1)));
    }
}

/// Nothing to wake: waiters poll (see [`wait_while`]).
pub fn wake_waiters(_word: &AtomicU32, _n: u32) {}
