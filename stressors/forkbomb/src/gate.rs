//! The fork gate: at most a few forks in flight at once, over every process of the bomb.
//!
//! Why: without it, every one of thousands of bomb processes is inside `fork()` at any
//! moment (fork is where a bomb process spends its time), preempted half-way through
//! copying its parent. Killing such a process means letting it finish the copy, undo it,
//! and only then exit: in a small guest under software emulation that made teardown take
//! two to six times what removing the same number of sleeping processes takes. Behind the
//! gate the others sleep on a futex, and a sleeping process dies at once.
//!
//! The gate does not slow the bomb down: `fork()` is CPU-bound in the kernel, so two
//! forks in flight per CPU keep every CPU busy creating processes, as before.
//!
//! A place is a word holding its holder's pid and the time it was taken. A holder that
//! dies inside `fork()` (the OOM killer picks bomb processes first) would hold its place
//! for ever; so a place held longer than [`LEASE`] is free to take over. A holder whose
//! place was taken over finds out when it leaves and leaves nothing.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

/// How long a place may be held before another process may take it over.
pub const LEASE: Duration = Duration::from_millis(1000);

/// How long a waiter sleeps at least before it looks again on its own (the stop flag, its
/// parent, its children to reap, places whose lease ran out)...
pub const WAIT: Duration = Duration::from_millis(100);
/// ...and how much longer per other waiter: thousands of waiters that each woke ten
/// times a second would take the CPUs from the forks (under software emulation, most of
/// them). The wake-ups of all waiters together stay under 1000 a second; one of them
/// still finds a lapsed lease within milliseconds.
pub const WAIT_PER_WAITER: Duration = Duration::from_millis(2);

/// Word 0: the futex word, raised by every leave; word 1: how many wait; then one word
/// per place. The words lie in the run's shared mapping (the supervisor's
/// [`common::shm::Shared`], sized by [`Gate::words`]), not in one of their own: each
/// mapping is one more thing every process of the bomb leaves at exit.
pub struct Gate<'a> {
    words: &'a [AtomicU64],
}

impl std::fmt::Debug for Gate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("width", &self.width())
            .finish()
    }
}

/// A place taken: give it back with [`Gate::leave`] (in the process that took it).
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    index: usize,
    token: u64,
}

/// The index of the first place's word.
const PLACES: usize = 2;

/// The first four bytes of `word`, as the u32 a futex sleeps on
/// (`crate::sys::wait_while`). Every process of the bomb uses the word only through this
/// view; the supervisor reads run-wide words as u64 once every one of them is gone.
pub fn futex_word(word: &AtomicU64) -> &AtomicU32 {
    // SAFETY: `word` is live and aligned (u64 alignment covers u32) for the returned
    // lifetime, and while it is shared it is used only as this AtomicU32 (see above).
    unsafe { AtomicU32::from_ptr(word.as_ptr().cast()) }
}

fn now_ms() -> u32 {
    (common::time::mono_ns() / 1_000_000) as u32
}

fn token(pid: u32, ms: u32) -> u64 {
    (u64::from(pid) << 32) | u64::from(ms)
}

fn expired(token: u64, now: u32) -> bool {
    now.wrapping_sub(token as u32) > LEASE.as_millis() as u32
}

impl<'a> Gate<'a> {
    /// Words a gate of `width` places takes.
    pub fn words(width: usize) -> usize {
        width.max(1) + PLACES
    }

    /// The gate on `words` (zeroed, shared by every process that passes it; as many as
    /// [`Gate::words`] says for its width).
    pub fn on(words: &'a [AtomicU64]) -> Self {
        assert!(words.len() > PLACES);
        Self { words }
    }

    pub fn width(&self) -> usize {
        self.words.len() - PLACES
    }

    /// The futex word: word 0.
    fn seq(&self) -> &AtomicU32 {
        futex_word(&self.words[0])
    }

    /// Takes a place for process `pid`, sleeping while none is free. `go` is asked after
    /// every wait; `None` once it says no.
    pub fn enter(&self, pid: u32, mut go: impl FnMut() -> bool) -> Option<Pass> {
        let seq = self.seq();
        loop {
            let seen = seq.load(Acquire);
            let now = now_ms();
            // Start at a place of our own, so that the waiters do not all fight for the first.
            let width = self.width();
            let first = pid as usize % width;
            for k in 0..width {
                let index = (first + k) % width;
                let place = &self.words[index + PLACES];
                let cur = place.load(Relaxed);
                if cur != 0 && !expired(cur, now) {
                    continue;
                }
                let token = token(pid, now);
                if place.compare_exchange(cur, token, AcqRel, Relaxed).is_ok() {
                    return Some(Pass { index, token });
                }
            }
            let waiters = &self.words[1];
            let others = waiters.fetch_add(1, Relaxed) as u32;
            crate::sys::wait_while(seq, seen, WAIT.max(WAIT_PER_WAITER * others));
            waiters.fetch_sub(1, Relaxed);
            if !go() {
                return None;
            }
        }
    }

    /// Gives the place back (unless it was taken over) and wakes one waiter.
    pub fn leave(&self, pass: Pass) {
        let _ = self.words[pass.index + PLACES].compare_exchange(pass.token, 0, AcqRel, Relaxed);
        let seq = self.seq();
        seq.fetch_add(1, Release);
        crate::sys::wake_waiters(seq, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::shm::Shared;

    #[test]
    fn places_are_taken_given_back_and_taken_over_after_the_lease() {
        let shared = Shared::new(1, 0, Gate::words(2)).unwrap();
        let g = Gate::on(shared.words());
        let a = g.enter(10, || true).unwrap();
        let b = g.enter(11, || true).unwrap();
        assert_ne!(a.index, b.index);
        // Full: a waiter that is told to give up gets nothing (after one wait).
        let t = std::time::Instant::now();
        assert!(g.enter(12, || false).is_none());
        assert!(t.elapsed() >= WAIT / 2, "{:?}", t.elapsed());
        g.leave(a);
        let c = g.enter(12, || true).unwrap();
        assert_eq!(c.index, a.index);
        // A holder that vanished: its place is free once the lease has run out.
        let stale = token(99, now_ms().wrapping_sub(LEASE.as_millis() as u32 + 5));
        g.words[b.index + PLACES].store(stale, Relaxed);
        let d = g.enter(13, || true).unwrap();
        assert_eq!(d.index, b.index);
        // The old holder leaving does not free the place it lost.
        g.leave(b);
        assert_eq!(g.words[d.index + PLACES].load(Relaxed), d.token);
    }

    #[test]
    fn a_leave_in_another_process_wakes_a_waiter() {
        let shared = Shared::new(1, 0, Gate::words(1)).unwrap();
        let g = Gate::on(shared.words());
        let a = g.enter(20, || true).unwrap();
        let seq = g.seq();
        let seen = seq.load(Acquire);
        // SAFETY: the test process forks a child that only leaves the gate and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                std::thread::sleep(Duration::from_millis(20));
                g.leave(a);
                // SAFETY: leave at once.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                // Woken by the child's leave, long before this timeout.
                let t = std::time::Instant::now();
                while seq.load(Acquire) == seen && t.elapsed() < Duration::from_secs(20) {
                    crate::sys::wait_while(seq, seen, Duration::from_secs(20));
                }
                assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
                assert!(g.enter(21, || false).is_some());
                nix::sys::wait::waitpid(child, None).unwrap();
            }
        }
    }
}
