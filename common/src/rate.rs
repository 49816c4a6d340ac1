//! Rate caps: "at most R per second over all workers" (operations, bytes, packets), one
//! mechanism for every stressor.
//!
//! The workers of a run are processes, so the cap lives in one shared word of the run's
//! mapping: the moment, in picoseconds since the run started, up to which tokens have been
//! handed out (the theoretical arrival time of GCRA, the cell-rate algorithm of ATM
//! networks). A worker takes a batch of `n` tokens with one compare-and-swap that moves the
//! word forward by `n / R` seconds, and waits until the start of its share of time. Batches
//! keep the shared word cold (a worker takes a few milliseconds' worth at once), so the cap
//! costs nothing measurable at 10M/s, and the total over a run stays within a batch of R x
//! elapsed: `scripts/bench-rate` prints the achieved rate from 1/s to 10M/s.
//!
//! Idle time is not banked beyond a short burst ([`BURST_NS`]): a worker that was slow for a
//! moment may catch up that much, but a cap never turns into a flood after a pause.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How far behind the clock the shared word may fall: a worker slowed down for up to this
/// long catches up; longer idle time is forgotten.
pub const BURST_NS: u64 = 5_000_000;

/// At most `per_s` tokens per second over all workers of a run, kept in the run's shared
/// rate word `cell` (0..[`crate::shm::RATE_CELLS`]). Made in the plan; used by workers
/// through `Worker::pace`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateCap {
    pub per_s: f64,
    pub cell: usize,
}

impl RateCap {
    pub const fn new(cell: usize, per_s: f64) -> Self {
        Self { per_s, cell }
    }

    /// Picoseconds per token.
    pub fn ps_per_token(&self) -> f64 {
        1e12 / self.per_s
    }

    /// Tokens a worker should take at once: about 2 ms of its share of the rate, at least 1
    /// and at most `max` (what one step of its loop can use).
    pub fn batch(&self, workers: usize, max: u64) -> u64 {
        let per_worker = self.per_s / workers.max(1) as f64;
        ((per_worker * 0.002) as u64).clamp(1, max.max(1))
    }
}

/// Takes `n` tokens from `word` at `now_ps` (picoseconds since the run started): returns
/// the moment (same clock) the caller may use them. The pure core of the pacer.
pub fn claim(word: &AtomicU64, now_ps: u64, n: u64, ps_per_token: f64) -> u64 {
    let cost = (n as f64 * ps_per_token).round() as u64;
    let floor = now_ps.saturating_sub(BURST_NS * 1000);
    let mut tat = word.load(Relaxed);
    loop {
        let start = tat.max(floor);
        match word.compare_exchange_weak(tat, start + cost, Relaxed, Relaxed) {
            Ok(_) => return start,
            Err(v) => tat = v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulated workers taking batches as fast as the cap lets them: the total over a
    /// simulated run is R x T within one batch.
    fn simulate(per_s: f64, workers: usize, seconds: f64) -> f64 {
        let cap = RateCap::new(0, per_s);
        let word = AtomicU64::new(0);
        let batch = cap.batch(workers, 1 << 20);
        let end_ps = (seconds * 1e12) as u64;
        // Each worker's clock: when it may next ask.
        let mut clocks = vec![0u64; workers];
        let mut used = 0u64;
        loop {
            let (i, &now) = clocks.iter().enumerate().min_by_key(|(_, c)| **c).unwrap();
            if now >= end_ps {
                break;
            }
            let start = claim(&word, now, batch, cap.ps_per_token());
            let at = start.max(now);
            if at >= end_ps {
                clocks[i] = end_ps;
                continue;
            }
            used += batch;
            // Using the tokens takes 1 us of work.
            clocks[i] = at + 1_000_000;
        }
        used as f64 / seconds
    }

    #[test]
    fn holds_the_rate_from_1_to_10m_per_second() {
        for (rate, secs) in [
            (1.0, 20.0),
            (10.0, 10.0),
            (1e3, 5.0),
            (1e5, 5.0),
            (1e7, 5.0),
        ] {
            for workers in [1, 4] {
                let got = simulate(rate, workers, secs);
                assert!(
                    (got - rate).abs() / rate <= 0.02 + 1.0 / (rate * secs),
                    "rate {rate} x {workers}: {got}"
                );
            }
        }
    }

    #[test]
    fn idle_time_is_not_banked_beyond_the_burst() {
        let word = AtomicU64::new(0);
        let t = 1e12 / 1000.0; // 1000/s
        assert_eq!(claim(&word, 0, 1, t), 0);
        // Ten seconds later: the next token is due now, not ten seconds' worth of tokens.
        let now = 10_000_000_000_000;
        let start = claim(&word, now, 1000, t);
        assert_eq!(start, now - BURST_NS * 1000);
        let next = claim(&word, now, 1, t);
        assert!(next > now, "a second's worth was taken: the next waits");
    }

    #[test]
    fn batches_are_a_few_milliseconds_of_the_rate() {
        let c = RateCap::new(0, 10e6);
        assert_eq!(c.batch(2, 1 << 30), 10_000);
        assert_eq!(c.batch(2, 64), 64);
        assert_eq!(RateCap::new(0, 1.0).batch(4, 100), 1);
    }
}
