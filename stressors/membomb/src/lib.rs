//! `membomb`: the isolation paper's memory test. Every worker continuously allocates and
//! initialises memory, never freeing it, to use all the memory the guest has; unlike the
//! paper's bomb, it keeps the pressure on to the deadline and still reports.
//!
//! Memory comes from private anonymous mappings in chunks (`--chunk`), and the kernel is
//! made to back every page of a chunk: by `madvise(MADV_POPULATE_WRITE)` where the kernel
//! has it (Linux 5.14+), which backs a whole slice in one call instead of taking a page fault
//! per page, else by writing one byte per page (the cheapest first touch), as the simplest
//! `mmap` + write loop does. The report says which (`fill`).
//!
//! Modes: `grow` allocates without end (or up to the cap, then holds still); `hold` reaches
//! the cap and then keeps rewriting the working set so it stays resident; `churn` maps,
//! touches and unmaps in a loop (a window of the cap's size, or one chunk).
//!
//! When the kernel OOM-kills a worker (workers have OOM score 1000, the supervisor -1000),
//! the supervisor counts it and, with `--on-oom respawn` (the default), starts a new one so
//! the pressure holds. On illumos, where swap is reserved at allocation, ENOMEM from mmap is
//! the signal instead: the worker holds what it got and keeps retrying.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use memmap2::MmapMut;
use nix::errno::Errno;
use serde::Serialize;

use common::units::{self, parse_bytes, parse_rate, parse_size, RateKind, SizeSpec};
use common::{
    time, CommonArgs, Error, ExitAction, Finding, Findings, Found, Host, MetricId, Metrics,
    RateCap, RunData, Stressor, Worker, WorkerEnd,
};

mod sys;

/// What the workers do with their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// allocate and touch without end, never free (up to the cap, if any, then hold still)
    Grow,
    /// reach the cap, then keep rewriting the working set so it stays resident
    Hold,
    /// map, touch, unmap in a loop (a working set of the cap, or one chunk)
    Churn,
}

/// How a fresh chunk's pages are made resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fill {
    /// populate where the kernel can, else touch (the report says which and why)
    Auto,
    /// madvise(MADV_POPULATE_WRITE): the kernel backs a slice in one call (Linux 5.14+)
    Populate,
    /// write one byte per page: one page fault each
    Touch,
}

/// What to do when the kernel OOM-kills a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOom {
    /// start a new worker in its place: the pressure holds to the deadline
    Respawn,
    /// end the run (the report is still written)
    Stop,
}

fn parse_byte_rate(s: &str) -> Result<f64, String> {
    parse_rate(s, RateKind::Bytes)
}

/// Allocate and touch memory until the guest runs out; survive the OOM killer and report.
#[derive(Debug, Parser)]
#[command(name = "membomb", version, after_long_help = concat!("
Examples:
  membomb -t 5m                    grow until the guest runs out; OOM-killed workers respawn
  membomb --max-mem 80% -t 10m     stop growing at 80% of the guest's memory (or cgroup limit)
  membomb --mode hold --max-mem 2G keep 2 GiB resident and rewrite it without end
  membomb --rate 10M/s -t 1h       a slow leak: 10 MiB/s over all workers
  membomb --mode churn --max-mem 1G --hugepages
                                   map, touch and unmap a 1 GiB window, with huge pages
  membomb --max-mem 50% --dry-run  show the resolved cap and each worker's share

Memory:
  --max-mem is a cap over all workers together; each worker gets an equal share. A
  percentage is of the tighter of the guest's available memory and its cgroup limit.
  Without --max-mem there is no cap inside a guest (the paper's behaviour: the guest runs
  out of memory); on bare metal (--allow-host) the default is 80%. Without a cap, hold
  grows like grow until the guest runs out. With --on-oom respawn (the default) a worker
  the kernel OOM-kills is replaced at once, so the pressure holds to the deadline; the
  report counts the kills (workers.oom_killed) and the time to the first one. On illumos
  (no OOM killer) a refused mmap (ENOMEM) is counted and retried.
", common::help_footer!()), after_help = "See --help for examples, units, safety and exit codes.")]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    /// What the workers do with their memory
    #[arg(short, long, value_enum, default_value_t = Mode::Grow, help_heading = "Stress")]
    pub mode: Mode,

    /// Bytes mapped at a time by each worker
    #[arg(long, value_name = "SIZE", default_value = "4M", value_parser = parse_bytes,
          help_heading = "Stress")]
    pub chunk: u64,

    /// Cap over all workers together: a size or P% of the guest's (or cgroup's) memory
    /// [default: none inside a guest]
    #[arg(long, value_name = "SIZE|P%", value_parser = parse_size, help_heading = "Stress")]
    pub max_mem: Option<SizeSpec>,

    /// Grow at this speed over all workers instead of as fast as possible (10M/s)
    #[arg(long, value_name = "SIZE/s", value_parser = parse_byte_rate, help_heading = "Stress")]
    pub rate: Option<f64>,

    /// mlock the memory (unswappable pressure) where permitted; a refusal is counted
    #[arg(long, help_heading = "Stress")]
    pub lock: bool,

    /// Ask for transparent huge pages (Linux; says so and goes on where not available)
    #[arg(long, help_heading = "Stress")]
    pub hugepages: bool,

    /// How fresh pages are made resident: auto, populate (one madvise per slice) or touch
    #[arg(long, value_enum, value_name = "HOW", default_value_t = Fill::Auto,
          help_heading = "Stress")]
    pub fill: Fill,

    /// When the kernel OOM-kills a worker: start a new one, or end the run
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = OnOom::Respawn,
          help_heading = "Stress")]
    pub on_oom: OnOom,
}

/// The plan: every size resolved to bytes.
#[derive(Debug, Clone, Serialize)]
pub struct MemBomb {
    #[serde(skip)]
    pub workers: usize,
    #[serde(serialize_with = "common::params::as_value_name")]
    pub mode: Mode,
    /// Bytes mapped at a time (whole pages).
    #[serde(rename = "chunk_bytes")]
    pub chunk: u64,
    /// The cap over all workers, if any.
    #[serde(rename = "max_mem_bytes")]
    pub max_mem: Option<u64>,
    /// The cap as people read it (`512.0 MiB`, or `none`), beside the bytes.
    #[serde(rename = "max_mem")]
    max_mem_shown: String,
    /// Each worker's share of the cap (`u64::MAX`: no cap).
    #[serde(rename = "per_worker_bytes", serialize_with = "share_or_null")]
    pub share: u64,
    /// Bytes per second over all workers, if paced.
    #[serde(rename = "rate_bytes_s", serialize_with = "common::params::as_rounded")]
    pub rate: Option<f64>,
    pub lock: bool,
    pub hugepages: bool,
    /// Why huge pages cannot be had here (found out while planning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hugepages_refused: Option<String>,
    /// `Populate` or `Touch`: `auto` is resolved while planning.
    #[serde(serialize_with = "common::params::as_value_name")]
    pub fill: Fill,
    /// Why `auto` took the touch loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill_note: Option<String>,
    #[serde(serialize_with = "common::params::as_value_name")]
    pub on_oom: OnOom,
    #[serde(rename = "page_bytes")]
    page: u64,
    #[serde(rename = "memory_base_bytes")]
    base_bytes: u64,
    #[serde(skip)]
    quiet: bool,
    #[serde(skip)]
    counters: Counters,
}

/// No cap, no share: null.
fn share_or_null<S: serde::Serializer>(share: &u64, s: S) -> Result<S::Ok, S::Error> {
    Some(*share).filter(|&b| b != u64::MAX).serialize(s)
}

common::metrics! {
    /// The metrics, each with its handle (`ops`: pages written (first touches and rewrites)).
    struct Counters {
        /// Bytes newly mapped and touched (the kernel had to back them).
        touched: total("touched_bytes", Bytes),
        /// Bytes each worker holds mapped and touched now.
        resident: gauge("resident_bytes", Bytes),
        /// Of those, mlocked.
        locked: gauge("locked_bytes", Bytes),
        /// Time spent mapping and first-touching (not sleeping, not rewriting).
        fill: total("fill_ns", Nanos),
        /// Bytes of pages rewritten in `hold` mode.
        rewritten: total("rewritten_bytes", Bytes),
    }
}

/// Global words.
const G_REACHED: usize = 0; // workers (slots) that reached their share
const G_CAP_NS: usize = 1; // mono_ns when the last of them did
const G_LOCK_ERRNO: usize = 2; // errno of the first refused mlock
const G_SLOT_BITS: usize = 4; // from here on: one bit per slot that reached its share

/// The shared rate word of `--rate` (bytes per second over all workers).
const RATE_CELL: usize = 0;

/// The default cap on bare metal (only with --allow-host).
const BARE_METAL_PCT: f64 = 80.0;

impl common::Command for Cli {
    type Stressor = MemBomb;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn plan(&self, host: &Host) -> common::Result<MemBomb> {
        let workers = self.common.workers.unwrap_or(host.cpus.usable).max(1);
        let page = common::sys::page_size() as u64;
        let base = host.memory.base_bytes;
        let chunk = self.chunk.next_multiple_of(page);
        if host.memory.total_bytes > 0 && chunk > host.memory.total_bytes {
            return Err(Error::usage(format!(
                "--chunk {} is more than the guest's memory ({})",
                units::bytes(chunk),
                units::bytes(host.memory.total_bytes)
            )));
        }
        let spec = match self.max_mem {
            Some(s) => Some(s),
            None if host.virtualization.is_guest() => None,
            None => Some(SizeSpec::Percent(BARE_METAL_PCT)),
        };
        let max_mem = spec.map(|s| s.resolve(base));
        let share = match max_mem {
            None => u64::MAX,
            Some(cap) => {
                let share = cap / workers as u64 / page * page;
                if share == 0 {
                    return Err(Error::usage(format!(
                        "--max-mem {} is less than one page ({} B) for each of {workers} workers",
                        spec.expect("a cap"),
                        page
                    )));
                }
                share
            }
        };
        let hugepages_refused = if self.hugepages {
            probe_hugepages(page)
        } else {
            None
        };
        let (fill, fill_note) = match (self.fill, sys::populate_refused(page as usize)) {
            (Fill::Touch, _) => (Fill::Touch, None),
            (_, None) => (Fill::Populate, None),
            (Fill::Auto, Some(why)) => (Fill::Touch, Some(why)),
            (Fill::Populate, Some(why)) => {
                return Err(Error::usage(format!(
                    "--fill populate: {why} (use --fill touch or auto)"
                )))
            }
        };
        Ok(MemBomb {
            counters: Counters::default(),
            workers,
            mode: self.mode,
            chunk,
            max_mem,
            max_mem_shown: max_mem.map_or("none".to_string(), units::bytes),
            share,
            rate: self.rate,
            lock: self.lock,
            hugepages: self.hugepages,
            hugepages_refused,
            fill,
            fill_note,
            on_oom: self.on_oom,
            page,
            base_bytes: base,
            quiet: self.common.quiet,
        })
    }
}

/// Asks for huge pages on a small fresh mapping: None if the system takes the advice.
fn probe_hugepages(page: u64) -> Option<String> {
    match MmapMut::map_anon(2 * page as usize) {
        Ok(mut m) => sys::advise_hugepages(&mut m).err(),
        Err(e) => Some(format!("mmap: {e}")),
    }
}

/// Writes one byte in every page of `mem` (which starts on a page boundary): the cheapest
/// way to make the kernel back each page.
#[inline(never)]
fn touch_pages(mem: &mut [u8], page: usize, v: u8) {
    let p = mem.as_mut_ptr();
    let mut off = 0;
    while off < mem.len() {
        // SAFETY: `off` is inside `mem`, which we own mutably.
        unsafe { p.add(off).write_volatile(v) };
        off += page;
    }
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOMEM))
}

/// Most bytes touched between two looks at the stop flag and two counter updates: a
/// fraction of a second even on a slow guest.
const SLICE: u64 = 16 << 20;

/// One worker's memory.
struct Held {
    maps: VecDeque<MmapMut>,
    resident: u64,
    locked: u64,
    locking: bool,
    pass: u8,
}

impl MemBomb {
    /// Bytes touched per step: the whole chunk, a slice of it, or 20 ms of a paced rate.
    fn step(&self) -> u64 {
        let mut step = self.chunk.min(SLICE);
        if let Some(r) = self.rate {
            let per_worker = r / self.workers as f64;
            step = step.min((per_worker / 50.0) as u64);
        }
        step.max(self.page).next_multiple_of(self.page)
    }

    /// How much a worker keeps mapped at most (its share; in churn without a cap, a chunk).
    fn window(&self) -> u64 {
        match (self.mode, self.max_mem) {
            (Mode::Churn, None) => self.chunk,
            _ => self.share,
        }
    }

    /// Maps one chunk and touches it, slice by slice; returns false when told to stop.
    fn grow(&self, w: &mut Worker, held: &mut Held, len: u64) -> bool {
        let mut t_last = time::mono_ns();
        let mut m = match MmapMut::map_anon(len as usize) {
            Ok(m) => m,
            Err(e) => {
                // illumos (swap reserved at allocation), or a Linux overcommit limit: hold
                // what was got and try again shortly.
                w.errno(errno_of(&e));
                w.sleep(Duration::from_millis(10));
                return w.running();
            }
        };
        if self.hugepages && self.hugepages_refused.is_none() {
            let _ = sys::advise_hugepages(&mut m);
        }
        let step = self.step() as usize;
        let mut off = 0usize;
        let mut running = true;
        while off < m.len() {
            let end = (off + step).min(m.len());
            if let Some(cap) = self.rate.map(|r| RateCap::new(RATE_CELL, r)) {
                // Bytes are the tokens: wait until this step is due over all workers.
                if !w.pace(&cap, (end - off) as u64) {
                    running = false;
                    break;
                }
                t_last = time::mono_ns();
            }
            self.fill_slice(w, &mut m[off..end]);
            let n = (end - off) as u64;
            let now = time::mono_ns();
            w.add(self.counters.fill, now - t_last);
            w.add(MetricId::OPS, n / self.page);
            w.add(self.counters.touched, n);
            held.resident += n;
            w.set(self.counters.resident, held.resident);
            off = end;
            if !w.running() {
                running = false;
                break;
            }
            t_last = time::mono_ns();
        }
        if held.locking && off > 0 {
            match m.lock() {
                Ok(()) => {
                    held.locked += m.len() as u64;
                    w.set(self.counters.locked, held.locked);
                }
                Err(e) => {
                    let errno = errno_of(&e);
                    w.errno(errno);
                    held.locking = false;
                    let first =
                        w.global(G_LOCK_ERRNO)
                            .compare_exchange(0, errno as u64, Relaxed, Relaxed);
                    if first.is_ok() && !self.quiet {
                        common::output::say(&format!(
                            "membomb: mlock refused ({errno}): the memory stays swappable"
                        ));
                    }
                }
            }
        }
        // A partly touched chunk (stopped midway) is kept: its untouched rest costs nothing.
        held.maps.push_back(m);
        running
    }

    /// Makes every page of a fresh slice resident, the planned way. A populate that fails
    /// (ENOMEM short of an OOM kill, a signal) is counted and the slice is touched instead,
    /// so the pressure is the same either way.
    fn fill_slice(&self, w: &mut Worker, mem: &mut [u8]) {
        if self.fill == Fill::Populate {
            match sys::populate(mem) {
                Ok(()) => return,
                Err(e) => w.errno(e),
            }
        }
        touch_pages(mem, self.page as usize, 1);
    }

    /// Rewrites one byte of every page held, a map at a time; false when told to stop.
    fn rewrite(&self, w: &mut Worker, held: &mut Held) -> bool {
        held.pass = held.pass.wrapping_add(1) | 1;
        let step = self.step() as usize;
        for m in held.maps.iter_mut() {
            let mut off = 0;
            while off < m.len() {
                let end = (off + step).min(m.len());
                touch_pages(&mut m[off..end], self.page as usize, held.pass);
                let n = (end - off) as u64;
                w.add(self.counters.rewritten, n);
                w.add(MetricId::OPS, n / self.page);
                off = end;
                if !w.running() {
                    return false;
                }
            }
        }
        true
    }

    /// This slot reached its share: count it once per slot; the last one stamps the time.
    fn reached(&self, w: &mut Worker) {
        let word = G_SLOT_BITS + w.index / 64;
        let first = if word < common::shm::GLOBALS {
            let bit = 1u64 << (w.index % 64);
            w.global(word).fetch_or(bit, Relaxed) & bit == 0
        } else {
            w.generation == 0
        };
        if first && w.global(G_REACHED).fetch_add(1, Relaxed) + 1 == self.workers as u64 {
            let _ = w
                .global(G_CAP_NS)
                .compare_exchange(0, time::mono_ns(), Relaxed, Relaxed);
        }
    }
}

impl Stressor for MemBomb {
    const NAME: &'static str = "membomb";

    fn metrics(&self) -> &Metrics {
        &self.counters.list
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn prepare(&mut self, _host: &Host) -> common::Result<()> {
        if let Some(why) = &self.hugepages_refused {
            if !self.quiet {
                eprintln!("membomb: --hugepages: {why}; going on with normal pages");
            }
        }
        Ok(())
    }

    fn work(&self, w: &mut Worker) -> common::Result<()> {
        let window = self.window();
        let mut held = Held {
            maps: VecDeque::with_capacity(4096),
            resident: 0,
            locked: 0,
            locking: self.lock,
            pass: 1,
        };
        let mut at_cap = false;
        while w.running() {
            if self.mode == Mode::Churn {
                // Make room for the next chunk by unmapping the oldest.
                while held.resident + self.chunk.min(window) > window {
                    let Some(m) = held.maps.pop_front() else {
                        break;
                    };
                    held.resident -= m.len() as u64;
                    w.set(self.counters.resident, held.resident);
                }
            } else if held.resident >= self.share {
                if !at_cap {
                    at_cap = true;
                    self.reached(w);
                }
                match self.mode {
                    Mode::Hold => {
                        self.rewrite(w, &mut held);
                    }
                    _ => w.sleep(Duration::from_millis(100)),
                }
                continue;
            }
            let len = self
                .chunk
                .min(window.saturating_sub(held.resident))
                .max(self.page);
            let len = len.min(self.chunk);
            if !self.grow(w, &mut held, len) {
                break;
            }
            if self.mode == Mode::Churn
                && !at_cap
                && held.resident >= window
                && self.max_mem.is_some()
            {
                at_cap = true;
                self.reached(w);
            }
        }
        // Leave the unmapping to the kernel's exit path: one teardown of the whole address
        // space instead of thousands of munmap calls.
        std::mem::forget(held.maps);
        Ok(())
    }

    fn on_exit(&self, end: &WorkerEnd) -> ExitAction {
        match (end.oom, self.on_oom) {
            (true, OnOom::Respawn) => ExitAction::Respawn,
            (true, OnOom::Stop) => ExitAction::EndRun(format!(
                "worker {} was OOM-killed (--on-oom stop)",
                end.index
            )),
            (false, _) => ExitAction::Keep,
        }
    }

    fn finish(&self, run: &RunData) -> Findings {
        let gib = (1u64 << 30) as f64;
        let round3 = |v: f64| (v * 1000.0).round() / 1000.0;
        let mut f = Findings::default();
        let mut fill_total = 0.0;
        for slot in &run.slots {
            let (bytes, ns) = (
                slot.counter(self.counters.touched),
                slot.counter(self.counters.fill),
            );
            let rate = if ns > 0 {
                bytes as f64 / gib / (ns as f64 / 1e9)
            } else {
                0.0
            };
            fill_total += rate;
            f.per_worker.push(vec![Finding::new(
                "fill_gib_s",
                Found::Number(round3(rate), "GiB/s"),
            )]);
        }
        let peak = run.peak(self.counters.resident);
        let enomem = run
            .errors
            .iter()
            .find(|(k, _)| k == "ENOMEM")
            .map_or(0, |(_, n)| *n);
        f.detail("mode", Found::Text(common::params::value_name(&self.mode)))
            // In totals and peaks too, under these names for scripts.
            .detail_report_only(
                "touched_bytes",
                Found::Bytes(run.total(self.counters.touched)),
            )
            .detail_report_only("peak_resident_bytes", Found::Bytes(peak))
            .detail("max_mem_bytes", Found::bytes(self.max_mem))
            .detail("fill", Found::Text(common::params::value_name(&self.fill)))
            // Sum of the workers' own rates (each over its time spent filling).
            .detail("fill_gib_s", Found::Number(round3(fill_total), "GiB/s"))
            .detail(
                "cap_reached_s",
                Found::seconds(run.since_start(run.globals[G_CAP_NS])),
            )
            .detail("first_oom_s", Found::seconds(run.workers.first_oom_s))
            // Repeated from `workers` for scripts; the summary's workers row has them.
            .detail_report_only("oom_killed", Found::Count(run.workers.oom_killed))
            .detail_report_only("respawned", Found::Count(run.workers.respawned))
            .detail("enomem", Found::Count(enomem));
        if let Some(why) = &self.fill_note {
            f.detail("fill_note", Found::Text(why.clone()));
        }
        if self.lock {
            let errno = run.globals[G_LOCK_ERRNO];
            let v = if errno == 0 {
                "locked".to_string()
            } else {
                format!(
                    "refused ({}): memory stayed swappable",
                    Errno::from_raw(errno as i32)
                )
            };
            f.detail("lock", Found::Text(v)).detail_report_only(
                "peak_locked_bytes",
                Found::Bytes(run.peak(self.counters.locked)),
            );
        }
        if self.hugepages {
            let v = match &self.hugepages_refused {
                None => "asked (MADV_HUGEPAGE)".to_string(),
                Some(why) => format!("not available: {why}"),
            };
            f.detail("hugepages", Found::Text(v));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_writes_one_byte_per_page() {
        let page = common::sys::page_size();
        let mut m = MmapMut::map_anon(4 * page).unwrap();
        touch_pages(&mut m, page, 7);
        for i in 0..4 {
            assert_eq!(m[i * page], 7);
            assert_eq!(m[i * page + 1], 0);
        }
    }
}
