//! Counters that workers write and the supervisor reads, in one anonymous shared mapping.
//!
//! Workers are processes, not threads (one can be OOM-killed without taking the others with
//! it, and a fork bomb's children are processes anyway), so their counters live in a
//! `MAP_SHARED | MAP_ANONYMOUS` region made before the first fork. Every field is an atomic
//! that all-zero bytes make valid, so the fresh mapping needs no initialisation, and the
//! supervisor never allocates to read it, even while its workers have exhausted memory.
//!
//! memmap2's `map_anon` maps MAP_PRIVATE, which fork copies instead of sharing; hence nix's
//! `mmap_anonymous` with MAP_SHARED here.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};

use crate::error::{Context, Result};

/// Counters a worker slot holds: `ops` plus up to 15 of the stressor's own.
pub const MAX_METRICS: usize = 16;
/// Run-wide words a stressor may use as it likes (a fork bomb's live-process count...).
pub const GLOBALS: usize = 16;
/// errno values counted by number; larger ones are counted in the last cell.
pub const ERRNOS: usize = 160;
/// Rate caps a run may have ([`crate::rate::RateCap`]'s cell).
pub const RATE_CELLS: usize = 4;
/// Latency histograms a worker may have.
pub const MAX_HISTOGRAMS: usize = 8;
/// Bytes a worker may leave for the stressor's `finish` (its own findings, such as a
/// sink's per-sender counts), after a length word.
pub const RESULT_BYTES: usize = 16 << 10;

/// The run-wide part.
#[repr(C)]
pub struct Header {
    /// Set to 1 by the supervisor: every worker stops at its next check.
    pub stop: AtomicU32,
    /// CLOCK_MONOTONIC ns when the run started: the origin of the rate words.
    pub start_ns: AtomicU64,
    /// Rate caps: picoseconds since `start_ns` up to which tokens were handed out.
    pub rates: [AtomicU64; RATE_CELLS],
    pub globals: [AtomicU64; GLOBALS],
    pub errnos: [AtomicU64; ERRNOS],
}

/// One worker's counters, on cache lines of its own so workers do not slow each other.
#[repr(C, align(128))]
pub struct Slot {
    /// CLOCK_MONOTONIC ns when the worker first reached its loop (0: not yet).
    pub ready_ns: AtomicU64,
    /// CLOCK_MONOTONIC ns when the supervisor reaped the slot's worker (0: it lives, or was
    /// respawned). Written by the supervisor only: a worker killed outright (the OOM
    /// killer's victim) cannot say it is gone, and the others may be waiting for it.
    pub ended_ns: AtomicU64,
    pub counters: [AtomicU64; MAX_METRICS],
}

/// The shared mapping: a header, one slot per worker, then each slot's latency histograms
/// ([`crate::hist::CELLS`] cells each), each slot's result, and the stressor's own words.
///
/// One mapping for everything a run shares: every process of a fork bomb inherits each
/// shared mapping, and under software emulation each one added about a sixth to the time
/// killing thousands of them takes (at exit, every process takes the mapping's lock to
/// leave it).
pub struct Shared {
    base: NonNull<u8>,
    len: usize,
    slots: usize,
    hists: usize,
    words: usize,
}

// SAFETY: the mapping holds only atomics; it is unmapped only on drop.
unsafe impl Send for Shared {}
// SAFETY: as above: every access goes through atomics.
unsafe impl Sync for Shared {}

/// Where the slots' results start: after the slots and their histograms.
fn results_offset(slots: usize, hists: usize) -> usize {
    slots_offset() + slots.max(1) * std::mem::size_of::<Slot>() + slots * hists * hist_bytes()
}

/// Where the stressor's words start: after the results.
fn words_offset(slots: usize, hists: usize) -> usize {
    results_offset(slots, hists) + slots * (RESULT_BYTES + 8)
}

fn slots_offset() -> usize {
    std::mem::size_of::<Header>().next_multiple_of(std::mem::align_of::<Slot>())
}

/// Bytes per histogram, rounded to whole cache-line pairs so workers never share a line.
fn hist_bytes() -> usize {
    (crate::hist::CELLS * std::mem::size_of::<AtomicU64>()).next_multiple_of(128)
}

impl Shared {
    /// A mapping for `slots` workers with `hists` latency histograms each, and `words`
    /// run-wide words of the stressor's ([`crate::Stressor::shared_words`]).
    pub fn new(slots: usize, hists: usize, words: usize) -> Result<Self> {
        assert!(hists <= MAX_HISTOGRAMS);
        let len = words_offset(slots, hists) + words * 8;
        let nz = NonZeroUsize::new(len).expect("len > 0");
        // SAFETY: a fresh anonymous mapping that aliases nothing.
        let p = unsafe {
            mmap_anonymous(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .context("mapping shared counters")?;
        Ok(Self {
            base: p.cast(),
            len,
            slots,
            hists,
            words,
        })
    }

    pub fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a Header; zeroed atomics are valid; page aligned.
        unsafe { &*(self.base.as_ptr() as *const Header) }
    }

    pub fn slot(&self, i: usize) -> &Slot {
        assert!(i < self.slots, "slot {i} of {}", self.slots);
        // SAFETY: in bounds (checked above) and aligned (slots_offset rounds up).
        unsafe { &*(self.base.as_ptr().add(slots_offset()) as *const Slot).add(i) }
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    pub fn histograms(&self) -> usize {
        self.hists
    }

    fn result_offset(&self, i: usize) -> usize {
        results_offset(self.slots, self.hists) + i * (RESULT_BYTES + 8)
    }

    /// Leaves `data` (at most [`RESULT_BYTES`]; the rest is cut) as slot `i`'s result. Only
    /// the slot's own worker writes it, and the supervisor reads it after the worker is gone.
    pub fn set_result(&self, i: usize, data: &[u8]) {
        assert!(i < self.slots);
        let n = data.len().min(RESULT_BYTES);
        let off = self.result_offset(i);
        // SAFETY: in bounds of the mapping (its length counts every result area); 8-aligned
        // (every earlier part is a multiple of 8 bytes); one writer (the slot's worker) and
        // no reader until that worker has ended.
        unsafe {
            let base = self.base.as_ptr().add(off);
            (base as *mut u64).write_volatile(0);
            std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(8), n);
            (base as *mut u64).write_volatile(n as u64);
        }
    }

    /// Slot `i`'s result (empty if its worker left none). Read after the workers are gone.
    pub fn result(&self, i: usize) -> Vec<u8> {
        assert!(i < self.slots);
        let off = self.result_offset(i);
        // SAFETY: in bounds and aligned as in `set_result`; the length is clamped, so a torn
        // write by a killed worker can give garbage bytes but never an out-of-bounds read.
        unsafe {
            let base = self.base.as_ptr().add(off);
            let n = ((base as *const u64).read_volatile() as usize).min(RESULT_BYTES);
            std::slice::from_raw_parts(base.add(8), n).to_vec()
        }
    }

    /// The stressor's run-wide words.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `words` u64s lie at words_offset (a multiple of 8) inside the mapping;
        // zeroed atomics are valid.
        unsafe {
            std::slice::from_raw_parts(
                self.base.as_ptr().add(words_offset(self.slots, self.hists)) as *const AtomicU64,
                self.words,
            )
        }
    }

    /// Histogram `h` of slot `i`: [`crate::hist::CELLS`] atomics.
    pub fn hist(&self, i: usize, h: usize) -> &[AtomicU64] {
        assert!(
            i < self.slots && h < self.hists,
            "histogram {h} of slot {i}"
        );
        let off = slots_offset()
            + self.slots.max(1) * std::mem::size_of::<Slot>()
            + (i * self.hists + h) * hist_bytes();
        // SAFETY: in bounds of the mapping (its length counts every histogram), 8-aligned
        // (slots are 128-aligned and 128 bytes a multiple), and zeroed atomics are valid.
        unsafe {
            std::slice::from_raw_parts(
                self.base.as_ptr().add(off) as *const AtomicU64,
                crate::hist::CELLS,
            )
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: we made this mapping with this length; nothing borrows it past `self`.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn counters_are_shared_across_fork() {
        let s = Shared::new(3, 1, 2).unwrap();
        assert_eq!(s.slot(2).counters[0].load(Relaxed), 0);
        // SAFETY: the child only touches atomics and calls _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                s.slot(2).counters[5].store(42, Relaxed);
                s.header().globals[1].store(7, Relaxed);
                crate::hist::Recorder::new(s.hist(2, 0)).record(1000);
                s.set_result(2, &[0xAB; RESULT_BYTES]);
                s.words()[1].store(9, Relaxed);
                // SAFETY: ends the child without running the test harness's teardown.
                unsafe { libc::_exit(0) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).unwrap();
            }
        }
        assert_eq!(s.slot(2).counters[5].load(Relaxed), 42);
        assert_eq!(s.header().globals[1].load(Relaxed), 7);
        let mut h = crate::hist::Histogram::new();
        h.add_cells(s.hist(2, 0));
        assert_eq!((h.count(), h.max), (1, 1000));
        // The stressor's words follow the last result without touching it.
        assert_eq!(s.result(2), vec![0xAB; RESULT_BYTES]);
        assert_eq!(s.words().len(), 2);
        assert_eq!(
            (s.words()[0].load(Relaxed), s.words()[1].load(Relaxed)),
            (0, 9)
        );
        assert_eq!(std::mem::align_of::<Slot>(), 128);
    }
}
