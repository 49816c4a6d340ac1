//! Latency histograms that a worker process records into without allocating or locking,
//! and that the supervisor merges across workers: per-operation latency for the disk,
//! network and probe stressors, reported as percentiles for the run and for every second.
//!
//! The layout is HdrHistogram's idea, written small for shared memory: values (nanoseconds)
//! below 256 get a bucket each; above that, every power of two is split into 128 equal
//! buckets, so a bucket is never wider than 1/128 (0.78%) of its lower bound, and the middle
//! of a bucket, which is what percentiles report, is within 0.4% of any value in it. 4,480
//! buckets reach 2^41 ns (36 minutes); larger values land in the last bucket. The exact
//! maximum is kept apart.
//!
//! A histogram is a run of `AtomicU64` cells in the run's shared mapping, written by exactly
//! one process (the worker that owns the slot; a respawned worker takes over its slot after
//! the last one died). Recording is therefore a plain load and store per cell (no locked
//! instruction), about as cheap as incrementing a local counter; the supervisor reads the
//! cells with relaxed loads once a second (`scripts/bench-hist` prints the cost).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Sub-buckets per power of two (as bits): 2^7 = 128, at most 0.78% relative width.
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Values below this get a bucket each.
const LINEAR: u64 = 2 << SUB_BITS;
/// The largest power of two with buckets of its own: 2^40 ns (buckets reach 2^41, 36 min).
const TOP_BITS: u32 = 40;
/// Buckets per histogram.
pub const BUCKETS: usize = LINEAR as usize + (TOP_BITS - SUB_BITS) as usize * SUB;
/// Cells per histogram: the buckets, then the sum of values and the maximum.
pub const CELLS: usize = BUCKETS + 2;
const SUM: usize = BUCKETS;
const MAX: usize = BUCKETS + 1;

/// The bucket a value (ns) falls in.
#[inline]
pub fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    if e > TOP_BITS {
        return BUCKETS - 1;
    }
    let g = e - SUB_BITS; // >= 1
    let sub = (v >> g) as usize; // in [SUB, 2 * SUB)
    let i = LINEAR as usize + (g as usize - 1) * SUB + (sub - SUB);
    i.min(BUCKETS - 1)
}

/// The values a bucket holds: `[low, high)`.
pub fn bounds(i: usize) -> (u64, u64) {
    if i < LINEAR as usize {
        return (i as u64, i as u64 + 1);
    }
    let g = ((i - LINEAR as usize) / SUB + 1) as u32;
    let sub = ((i - LINEAR as usize) % SUB + SUB) as u64;
    (sub << g, (sub + 1) << g)
}

/// The value a bucket stands for in percentiles: its middle (exact below 256 ns).
pub fn representative(i: usize) -> u64 {
    let (lo, hi) = bounds(i);
    if hi - lo == 1 {
        lo
    } else {
        lo + (hi - lo) / 2
    }
}

/// A histogram in shared memory, as its one writer sees it.
#[derive(Clone, Copy)]
pub struct Recorder<'a> {
    cells: &'a [AtomicU64],
}

impl<'a> Recorder<'a> {
    /// `cells` must be [`CELLS`] long and written by this process alone.
    pub fn new(cells: &'a [AtomicU64]) -> Self {
        assert_eq!(cells.len(), CELLS);
        Self { cells }
    }

    /// Records one value in nanoseconds. No allocation, no lock, no system call.
    #[inline]
    pub fn record(&self, ns: u64) {
        bump(&self.cells[index(ns)], 1);
        bump(&self.cells[SUM], ns);
        let max = &self.cells[MAX];
        if ns > max.load(Relaxed) {
            max.store(ns, Relaxed);
        }
    }

    /// Records the same value `n` times (a batch of operations that took as long each).
    #[inline]
    pub fn record_n(&self, ns: u64, n: u64) {
        if n == 0 {
            return;
        }
        bump(&self.cells[index(ns)], n);
        bump(&self.cells[SUM], ns.saturating_mul(n));
        let max = &self.cells[MAX];
        if ns > max.load(Relaxed) {
            max.store(ns, Relaxed);
        }
    }
}

/// One writer: a load and a store, no locked read-modify-write.
#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// A histogram in ordinary memory: what the supervisor merges workers' histograms into, and
/// the difference between two moments (one second's operations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum: u64,
    pub max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            sum: 0,
            max: 0,
        }
    }

    /// Empties it, keeping its memory.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.sum = 0;
        self.max = 0;
    }

    /// Records into an ordinary histogram (tests, host-side tools).
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.sum = self.sum.wrapping_add(ns);
        self.max = self.max.max(ns);
    }

    /// Adds a shared histogram's cells (relaxed loads; no allocation).
    pub fn add_cells(&mut self, cells: &[AtomicU64]) {
        for (c, a) in self.counts.iter_mut().zip(cells) {
            *c += a.load(Relaxed);
        }
        self.sum = self.sum.wrapping_add(cells[SUM].load(Relaxed));
        self.max = self.max.max(cells[MAX].load(Relaxed));
    }

    /// Adds another histogram.
    pub fn add(&mut self, other: &Histogram) {
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            *c += o;
        }
        self.sum = self.sum.wrapping_add(other.sum);
        self.max = self.max.max(other.max);
    }

    /// `self - earlier`: what was recorded since `earlier` (the maximum is the larger one's,
    /// which is exact when the later part holds the maximum, and an upper bound otherwise).
    pub fn since(&self, earlier: &Histogram, out: &mut Histogram) {
        for ((o, a), b) in out.counts.iter_mut().zip(&self.counts).zip(&earlier.counts) {
            *o = a.saturating_sub(*b);
        }
        out.sum = self.sum.wrapping_sub(earlier.sum);
        out.max = if self.max > earlier.max {
            self.max
        } else {
            // The new values' maximum is not known exactly: the highest non-empty bucket's
            // upper bound, no more than the overall maximum.
            out.counts
                .iter()
                .rposition(|&c| c > 0)
                .map_or(0, |i| (bounds(i).1 - 1).min(self.max))
        };
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The value at quantile `q` (0..=1): the representative of the bucket that holds the
    /// ceil(q * count)-th smallest value, never above the maximum. None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(representative(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// The summary the report gives. None when nothing was recorded.
    pub fn summary(&self) -> Option<Summary> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let min = self
            .counts
            .iter()
            .position(|&c| c > 0)
            .map_or(0, |i| bounds(i).0);
        let q = |q| self.quantile(q).unwrap_or(0);
        Some(Summary {
            count,
            min_ns: min,
            mean_ns: self.sum / count,
            p50_ns: q(0.50),
            p90_ns: q(0.90),
            p99_ns: q(0.99),
            p99_9_ns: q(0.999),
            max_ns: self.max,
        })
    }
}

/// Latency percentiles of one kind of operation (nanoseconds; the report gives
/// microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub min_ns: u64,
    pub mean_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p99_9_ns: u64,
    pub max_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact q-quantile of sorted data, by the same rank rule.
    fn exact(sorted: &[u64], q: f64) -> u64 {
        let n = sorted.len() as u64;
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        sorted[rank as usize - 1]
    }

    #[test]
    fn every_bucket_is_at_most_1_in_128_of_its_lower_bound() {
        for i in 0..BUCKETS {
            let (lo, hi) = bounds(i);
            assert!(hi > lo);
            if lo >= LINEAR {
                assert!((hi - lo) as f64 / lo as f64 <= 1.0 / 128.0 + 1e-12, "{i}");
            }
            assert_eq!(index(lo), i, "low bound of {i}");
            assert_eq!(index(hi - 1), i, "high bound of {i}");
        }
        // Contiguous, and reaching past 100 s.
        for i in 1..BUCKETS {
            assert_eq!(bounds(i).0, bounds(i - 1).1);
        }
        assert!(bounds(BUCKETS - 1).1 >= 1 << 40);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_one_percent_of_exact_ones() {
        // A skewed, wide mix: 1 us to 100 s, log-uniform, plus a cluster.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut data = Vec::new();
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = if i % 5 == 0 {
                50_000 + (x % 1000)
            } else {
                (1e3 * 10f64.powf(u * 8.0)) as u64 // 1 us .. 100 s
            };
            data.push(v);
        }
        let mut h = Histogram::new();
        for &v in &data {
            h.record(v);
        }
        data.sort_unstable();
        for q in [0.5, 0.9, 0.99, 0.999, 0.0001, 1.0] {
            let got = h.quantile(q).unwrap() as f64;
            let want = exact(&data, q) as f64;
            assert!(
                (got - want).abs() / want <= 0.01,
                "q {q}: {got} vs exact {want}"
            );
        }
        let s = h.summary().unwrap();
        assert_eq!(s.count, data.len() as u64);
        assert_eq!(s.max_ns, *data.last().unwrap());
        assert_eq!(s.mean_ns, data.iter().sum::<u64>() / data.len() as u64);
        assert!(s.min_ns <= data[0] && data[0] as f64 <= s.min_ns as f64 * 1.01);
    }

    #[test]
    fn small_values_are_exact_and_known_data_gives_known_percentiles() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.9), Some(90));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(Histogram::new().summary(), None);
    }

    #[test]
    fn shared_cells_merge_and_a_second_is_the_difference() {
        let a: Vec<AtomicU64> = (0..CELLS).map(|_| AtomicU64::new(0)).collect();
        let b: Vec<AtomicU64> = (0..CELLS).map(|_| AtomicU64::new(0)).collect();
        let (ra, rb) = (Recorder::new(&a), Recorder::new(&b));
        for _ in 0..90 {
            ra.record(1_000);
        }
        rb.record_n(2_000_000, 10);
        let mut t1 = Histogram::new();
        t1.add_cells(&a);
        t1.add_cells(&b);
        assert_eq!(t1.count(), 100);
        assert_eq!(t1.max, 2_000_000);
        let p99 = t1.quantile(0.99).unwrap() as f64;
        assert!((p99 - 2e6).abs() / 2e6 < 0.005, "{p99}");
        // One more second: 100 fast ones.
        for _ in 0..100 {
            ra.record(500);
        }
        let mut t2 = Histogram::new();
        t2.add_cells(&a);
        t2.add_cells(&b);
        let mut second = Histogram::new();
        t2.since(&t1, &mut second);
        let s = second.summary().unwrap();
        assert_eq!(s.count, 100);
        // 500 ns sits in the bucket [500, 502): reported as its middle; the second's maximum
        // is known to the bucket (the run's maximum is older).
        for v in [s.p50_ns, s.p99_ns, s.max_ns, s.min_ns] {
            assert!((500..=501).contains(&v), "{s:?}");
        }
    }
}
