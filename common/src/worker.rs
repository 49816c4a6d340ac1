//! What a worker process sees: when to stop, where to count, how fast it may go, where to
//! record latencies.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

use crate::data::MetricId;
use crate::hist::Recorder;
use crate::rate::{claim, RateCap};
use crate::shm::{Shared, Slot, ERRNOS};
use crate::{sys, time};

/// The handle a stressor's `work` gets, in its own process.
pub struct Worker<'a> {
    /// The worker's number, 0-based; a respawned worker keeps its number.
    pub index: usize,
    /// How many times this slot was respawned.
    pub generation: u32,
    /// The run's seed mixed with the worker's number and generation.
    pub seed: u64,
    shared: &'a Shared,
    parent: Pid,
    checks: u32,
    ready: bool,
}

impl<'a> Worker<'a> {
    pub(crate) fn new(
        index: usize,
        generation: u32,
        seed: u64,
        shared: &'a Shared,
        parent: Pid,
    ) -> Self {
        let seed = seed
            ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (generation as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        Self {
            index,
            generation,
            seed,
            shared,
            parent,
            checks: 0,
            ready: false,
        }
    }

    /// True while the worker should go on. Cheap enough for every loop iteration: one atomic
    /// load, and one getppid() every 64 calls, which notices a supervisor (or, in a process
    /// tree, a parent) that died even where PDEATHSIG does not exist.
    #[inline]
    pub fn running(&mut self) -> bool {
        if !self.ready {
            self.ready = true;
            let _ = self
                .slot()
                .ready_ns
                .compare_exchange(0, time::mono_ns(), Relaxed, Relaxed);
        }
        if self.shared.header().stop.load(Relaxed) != 0 {
            return false;
        }
        self.checks = self.checks.wrapping_add(1);
        !(self.checks.is_multiple_of(64) && nix::unistd::getppid() != self.parent)
    }

    fn slot(&self) -> &Slot {
        self.shared.slot(self.index)
    }

    /// Adds `n` to metric `m` (one of the stressor's `metrics()`): one relaxed add to this
    /// worker's counter in shared memory.
    #[inline]
    pub fn add(&self, m: MetricId, n: u64) {
        self.slot().counters[m.index()].fetch_add(n, Relaxed);
    }

    /// Sets metric `m` (a gauge) to `v`.
    #[inline]
    pub fn set(&self, m: MetricId, v: u64) {
        self.slot().counters[m.index()].store(v, Relaxed);
    }

    /// The current value of metric `m` in this worker's slot.
    pub fn get(&self, m: MetricId) -> u64 {
        self.slot().counters[m.index()].load(Relaxed)
    }

    /// Metric `m` of worker slot `i` (any worker's): a run-wide view, such as the disk space
    /// every worker takes. Read-only; slots are written by their own workers.
    pub fn slot_value(&self, i: usize, m: MetricId) -> u64 {
        self.shared.slot(i).counters[m.index()].load(Relaxed)
    }

    /// Whether the worker of slot `i` has ended (the supervisor reaped it and has not
    /// started another in its place): a worker waiting for the others at a start gate must
    /// not wait for one that is gone.
    pub fn slot_ended(&self, i: usize) -> bool {
        self.shared.slot(i).ended_ns.load(Relaxed) != 0
    }

    /// Leaves bytes for the stressor's `finish` (in `RunData::slots[index].result`): a
    /// worker's own findings that counters cannot hold (a sink's per-sender counts). At most
    /// [`crate::shm::RESULT_BYTES`]; a later call replaces an earlier one.
    pub fn set_result(&self, data: &[u8]) {
        self.shared.set_result(self.index, data);
    }

    /// Worker slots of the run.
    pub fn slots(&self) -> usize {
        self.shared.slots()
    }

    /// Counts an error by its errno; the report lists them by name.
    pub fn errno(&self, e: Errno) {
        let i = (e as i32).clamp(0, ERRNOS as i32 - 1) as usize;
        self.shared.header().errnos[i].fetch_add(1, Relaxed);
    }

    /// A run-wide word shared by every process of the run (`0..GLOBALS`).
    pub fn global(&self, i: usize) -> &AtomicU64 {
        &self.shared.header().globals[i]
    }

    /// The stressor's run-wide words ([`crate::Stressor::shared_words`]).
    pub fn words(&self) -> &'a [AtomicU64] {
        self.shared.words()
    }

    /// The recorder of latency histogram `h` (an index into the stressor's `latencies()`):
    /// take it once, outside the hot loop.
    pub fn histogram(&self, h: usize) -> Recorder<'a> {
        Recorder::new(self.shared.hist(self.index, h))
    }

    /// Records one latency (ns) into histogram `h`.
    #[inline]
    pub fn record(&self, h: usize, ns: u64) {
        self.histogram(h).record(ns);
    }

    /// Takes `n` tokens of a rate cap shared by every worker of the run, waiting until they
    /// are due. Returns false when the run was told to stop meanwhile (the tokens are then
    /// not to be used). Take batches ([`RateCap::batch`]), not single tokens.
    pub fn pace(&mut self, cap: &RateCap, n: u64) -> bool {
        let h = self.shared.header();
        let origin = h.start_ns.load(Relaxed);
        let now_ps = |o: u64| time::mono_ns().saturating_sub(o).saturating_mul(1000);
        let start = claim(&h.rates[cap.cell], now_ps(origin), n, cap.ps_per_token());
        loop {
            let now = now_ps(origin);
            if now >= start {
                return self.running();
            }
            let wait_ns = (start - now) / 1000;
            if wait_ns >= 50_000 {
                // Sleep short of the mark; the rest is waited out below.
                self.sleep(std::time::Duration::from_nanos(wait_ns - 20_000));
                if !self.running() {
                    return false;
                }
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Forks a child of this worker (a fork bomb's offspring). The child dies with its
    /// parent, and its `running()` watches its own parent. Counting and caps are the
    /// caller's.
    pub fn fork(&mut self) -> nix::Result<ForkResult> {
        let me = nix::unistd::getpid();
        // SAFETY: workers are single-threaded processes.
        let r = unsafe { nix::unistd::fork() }?;
        if let ForkResult::Child = r {
            self.parent = me;
            if !sys::die_with_parent(me) {
                // SAFETY: leaving a child whose parent is already gone.
                unsafe { libc::_exit(0) };
            }
        }
        Ok(r)
    }

    /// Sleeps up to `d`, waking early (within 50 ms) when the run is told to stop.
    pub fn sleep(&mut self, d: std::time::Duration) {
        let end = std::time::Instant::now() + d;
        loop {
            let now = std::time::Instant::now();
            if now >= end || !self.running() {
                return;
            }
            std::thread::sleep((end - now).min(std::time::Duration::from_millis(50)));
        }
    }
}
