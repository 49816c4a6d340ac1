//! `diskthrash`: the isolation paper's disk test. Ten IOzone threads read and wrote files
//! larger than main memory, alternating reads and writes; this does that work in one static
//! binary, measures it like fio (bytes, IOPS and latency percentiles per direction, every
//! second), and fixes what users of the peers complain about:
//!
//! - **Nothing left behind.** Every file is opened with O_TMPFILE (it never has a name), or,
//!   where the filesystem lacks it, created and unlinked at once: SIGKILL of anything leaves
//!   no file, and the space comes back when the last process of the run is gone.
//! - **Bounded in space.** `--max-disk` (default 50% of the free space) is resolved with
//!   statvfs before the run, and each worker watches the free space once a second: when
//!   something else fills the disk, the workers shrink their files so the free space never
//!   drops below what the plan promised. ENOSPC or EDQUOT shrinks the working set and the run
//!   goes on (counted), never a crash.
//! - **Bounded in time.** Buffered writes start writeback every few MiB and wait for the
//!   window before (`sync_file_range`), and read data is dropped from the cache
//!   (`POSIX_FADV_DONTNEED`), so dirty pages stay bounded and the run ends on its deadline,
//!   not seconds later while writeback drains.
//! - **Engines.** io_uring (a pure-Rust crate, no liburing) with `--iodepth` I/Os in flight
//!   where the kernel allows it; otherwise one pread/pwrite per I/O, and the report says why
//!   io_uring was not used (seccomp, `kernel.io_uring_disabled`, memlock, old kernel).
//! - **Rate caps** over all workers in bytes (`--rate`) and I/Os (`--iops`): the suite's
//!   shared rate cap.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;

use clap::{Parser, ValueEnum};
use memmap2::MmapMut;
use nix::errno::Errno;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use common::params::value_name;
use common::units::{self, parse_bytes, parse_rate, parse_size, RateKind, SizeSpec};
use common::{
    time, CommonArgs, Error, Finding, Findings, Found, Host, MetricId, Metrics, RateCap, RunData,
    Stressor, Worker,
};

mod sys;

use sys::DiskStats;

/// What the workers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pattern {
    /// the paper's: write the file sequentially, read it back, again (like its IOzone setup)
    Paper,
    /// random offsets, reads and writes mixed by --mix
    Randrw,
    /// random reads (the file is written once first)
    Randread,
    /// random writes
    Randwrite,
    /// sequential reads (the file is written once first)
    Read,
    /// sequential writes
    Write,
    /// sequential, reads and writes mixed by --mix
    Rw,
}

impl Pattern {
    /// Reads data that must be on disk first.
    fn needs_layout(self) -> bool {
        matches!(
            self,
            Pattern::Randrw | Pattern::Randread | Pattern::Read | Pattern::Rw
        )
    }
}

/// How I/O is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    /// io_uring where the kernel allows it, else psync (the report says why)
    Auto,
    /// io_uring, --iodepth I/Os in flight per worker; refused where unavailable
    #[value(name = "io_uring")]
    IoUring,
    /// one pread/pwrite per I/O
    Psync,
}

/// The engine a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    IoUring { depth: u32 },
    Psync,
}

impl Engine {
    /// As `--engine` names it.
    fn name(self) -> String {
        value_name(&match self {
            Engine::IoUring { .. } => EngineChoice::IoUring,
            Engine::Psync => EngineChoice::Psync,
        })
    }
}

/// In the plan: `engine`, and `iodepth` with io_uring.
impl Serialize for Engine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("engine", &self.name())?;
        if let Engine::IoUring { depth } = self {
            m.serialize_entry("iodepth", depth)?;
        }
        m.end()
    }
}

fn parse_byte_rate(s: &str) -> Result<f64, String> {
    parse_rate(s, RateKind::Bytes)
}

/// `2000`, `2k`, `2000/s`: I/Os per second.
fn parse_iops(s: &str) -> Result<f64, String> {
    let t = s.trim();
    if t.ends_with("/s") {
        return parse_rate(t, RateKind::Count);
    }
    parse_rate(&format!("{t}/s"), RateKind::Count)
        .map_err(|_| "expected I/Os per second like 2000, 20k or 2000/s".to_string())
}

fn parse_block(s: &str) -> Result<u64, String> {
    let b = parse_bytes(s)?;
    if b % 512 != 0 || b > 64 << 20 {
        return Err("a block is a multiple of 512 bytes, at most 64M (4k, 64k, 1M)".into());
    }
    Ok(b)
}

/// Read and write files larger than memory, as the paper's disk test did, bounded in space and time.
#[derive(Debug, Parser)]
#[command(name = "diskthrash", version, after_long_help = concat!("
Examples:
  diskthrash -t 5m                      the paper's test: 10 workers write and read back files
                                        twice the guest's memory in all, in the current directory
  diskthrash --dir /data --rw randrw --bs 4k --direct -t 2m
                                        random 4k reads and writes, 50/50, past the page cache
  diskthrash --rw randread --bs 4k --engine io_uring --iodepth 64 --direct
  diskthrash --max-disk 10G --size 8G   at most 10 GiB of the disk, 8 GiB of data
  diskthrash --rate 50M/s --iops 2000   a steady, capped neighbour
  diskthrash --dir /mnt/a --dir /mnt/b -w 20   workers spread over two filesystems
  diskthrash --dry-run                  the plan: sizes, free space, engine, what the guest is

Space and files:
  --max-disk (default 50% of the free space of each filesystem) is resolved before the run
  and watched once a second: if anything else fills the disk, the workers shrink their files
  so the free space never drops below what the plan left. --size is the data in total (a
  percentage is of --max-disk); it is cut to fit --max-disk. Files have no name (O_TMPFILE;
  where the filesystem lacks it, they are unlinked as soon as they are made): nothing is
  left behind, even after SIGKILL. ENOSPC or EDQUOT shrinks the working set; the run goes on.

Engines:
  auto takes io_uring where the kernel allows it and falls back to one pread/pwrite per I/O
  (psync); the report says which ran and why (a seccomp profile such as Docker's default,
  kernel.io_uring_disabled, the memlock limit, an old kernel). Each io_uring worker registers
  its file and buffers with its ring where the memlock limit allows (details.registered_rings).
  --direct bypasses the page cache (O_DIRECT; directio on illumos); where the filesystem
  refuses it (tmpfs) the run says so and goes on buffered. Buffered writes are written back as
  they go, so the run ends on its deadline instead of waiting for gigabytes of dirty pages.
", common::help_footer!()), after_help = "See --help for examples, space, engines, units, safety and exit codes.")]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Where the files go (repeatable: workers are spread over the directories)
    #[arg(
        long = "dir",
        value_name = "PATH",
        default_value = ".",
        help_heading = "Stress"
    )]
    pub dirs: Vec<PathBuf>,

    /// Data in total: a size, or P% of --max-disk [default: twice the guest's memory]
    #[arg(long, value_name = "SIZE|P%", value_parser = parse_size, help_heading = "Stress")]
    pub size: Option<SizeSpec>,

    /// Most disk space the run may take, per filesystem: a size or P% of its free space
    #[arg(long, value_name = "SIZE|P%", value_parser = parse_size, default_value = "50%",
          help_heading = "Stress")]
    pub max_disk: SizeSpec,

    /// What the workers do
    #[arg(long, value_enum, default_value_t = Pattern::Paper, help_heading = "Stress")]
    pub rw: Pattern,

    /// Share of reads in mixed patterns (randrw, rw), percent
    #[arg(long, value_name = "P", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100), help_heading = "Stress")]
    pub mix: u8,

    /// Bytes per I/O
    #[arg(long, value_name = "SIZE", default_value = "64k", value_parser = parse_block,
          help_heading = "Stress")]
    pub bs: u64,

    /// fsync every N writes (0: never)
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Stress")]
    pub fsync: u64,

    /// Bypass the page cache (O_DIRECT; directio on illumos)
    #[arg(long, help_heading = "Stress")]
    pub direct: bool,

    /// Bytes per second over all workers, reads and writes together (50M/s)
    #[arg(long, value_name = "SIZE/s", value_parser = parse_byte_rate, help_heading = "Stress")]
    pub rate: Option<f64>,

    /// I/Os per second over all workers
    #[arg(long, value_name = "N", value_parser = parse_iops, help_heading = "Stress")]
    pub iops: Option<f64>,

    /// How I/O is issued
    #[arg(long, value_enum, default_value_t = EngineChoice::Auto, help_heading = "Engine")]
    pub engine: EngineChoice,

    /// I/Os in flight per worker with io_uring [default: 32]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096),
          help_heading = "Engine")]
    pub iodepth: Option<u32>,
}

/// One directory of the run and its filesystem's budget.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    #[serde(serialize_with = "common::params::as_display")]
    pub dir: PathBuf,
    /// Free bytes on its filesystem when planned.
    #[serde(rename = "free_bytes")]
    pub free: u64,
    /// What the run may take of that filesystem (shared by the directories on it).
    #[serde(rename = "max_disk_bytes")]
    pub budget: u64,
    /// The free space the run never takes the filesystem below: free - budget.
    #[serde(rename = "keeps_free_bytes")]
    pub floor: u64,
    /// Workers writing on this filesystem (all its directories).
    #[serde(skip)]
    pub fs_workers: usize,
    /// Which filesystem of the run (directories on one share its budget).
    #[serde(skip)]
    pub fs: usize,
    /// Each worker's file, bytes (whole blocks).
    pub file_bytes: u64,
    /// The block device under it, as /proc/diskstats names it.
    pub device: Option<String>,
}

/// The plan.
#[derive(Debug, Serialize)]
pub struct DiskThrash {
    #[serde(skip)]
    pub workers: usize,
    #[serde(rename = "dirs")]
    pub targets: Vec<Target>,
    #[serde(rename = "rw", serialize_with = "common::params::as_value_name")]
    pub pattern: Pattern,
    /// Share of reads, percent: in the mixed patterns (randrw, rw) only.
    #[serde(rename = "mix_read_pct", skip_serializing_if = "Option::is_none")]
    pub mix: Option<u8>,
    #[serde(rename = "bs_bytes")]
    pub bs: u64,
    #[serde(rename = "fsync_every")]
    pub fsync: u64,
    pub direct: bool,
    /// Why --direct could not be had (the run goes on buffered).
    #[serde(rename = "direct_note", skip_serializing_if = "Option::is_none")]
    pub direct_refused: Option<String>,
    #[serde(rename = "rate_bytes_s", serialize_with = "common::params::as_rounded")]
    pub rate: Option<f64>,
    #[serde(serialize_with = "common::params::as_rounded")]
    pub iops: Option<f64>,
    #[serde(flatten)]
    pub engine: Engine,
    /// Why io_uring is not used (auto fell back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_note: Option<String>,
    /// How the files are made (O_TMPFILE, or created and unlinked).
    pub files: &'static str,
    pub data_bytes: u64,
    /// The data as people read it (`2.0 GiB`), beside the bytes.
    #[serde(rename = "data")]
    data_shown: String,
    pub max_disk_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_note: Option<String>,
    #[serde(skip)]
    devices0: Vec<(String, DiskStats)>,
    #[serde(skip)]
    psi0: Option<(u64, u64)>,
    #[serde(skip)]
    quiet: bool,
    #[serde(skip)]
    counters: Counters,
}

common::metrics! {
    /// The metrics, each with its handle (`ops`: I/Os completed, reads and writes).
    struct Counters {
        read_bytes: total("read_bytes", Bytes),
        write_bytes: total("write_bytes", Bytes),
        read_ops: total("read_ops", Count),
        write_ops: total("write_ops", Count),
        fsyncs: total("fsyncs", Count),
        /// Space the worker's file takes on disk now.
        disk_bytes: gauge("disk_bytes", Bytes),
    }
}
/// Latency histograms.
const H_READ: usize = 0;
const H_WRITE: usize = 1;
static LATENCIES: [&str; 2] = ["read", "write"];

/// Rate words.
const CELL_BYTES: usize = 0;
const CELL_IOPS: usize = 1;
/// Global words.
const G_SHRINKS: usize = 0;
const G_LAYOUT_NS: usize = 1;
/// Workers whose io_uring ring took the registered file and buffers.
const G_REGISTERED: usize = 2;

/// Buffered I/O: start writeback after this much, wait for the window before: at most two
/// windows per worker dirty or under writeback, which an exiting worker would wait for.
const WINDOW: u64 = 2 << 20;
/// Default I/Os in flight with io_uring.
const DEFAULT_DEPTH: u32 = 32;
/// Data kept off the budget for the filesystem's own metadata when the size is cut to it.
const HEADROOM: f64 = 0.03;

impl common::Command for Cli {
    type Stressor = DiskThrash;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn plan(&self, host: &Host) -> common::Result<DiskThrash> {
        let workers = self.common.workers.unwrap_or(10);
        let dirs = &self.dirs;
        let mut files = "O_TMPFILE";
        let mut direct_refused = None;
        // Check every directory: it exists, is one, and takes a file (probed, then gone).
        let mut devs = Vec::new();
        for d in dirs {
            let shown = d.display();
            let meta = std::fs::metadata(d).map_err(|e| {
                Error::usage(format!(
                    "--dir {shown}: {}",
                    if e.kind() == std::io::ErrorKind::NotFound {
                        "does not exist".to_string()
                    } else {
                        Error::from(e).to_string()
                    }
                ))
            })?;
            if !meta.is_dir() {
                return Err(Error::usage(format!("--dir {shown}: is not a directory")));
            }
            let (probe, how) = common::sys::open_tmpfile(d).map_err(|e| {
                Error::usage(format!(
                    "--dir {shown}: cannot make files there: {}",
                    Error::from(e)
                ))
            })?;
            files = how;
            if self.direct && direct_refused.is_none() {
                if let Err(why) = sys::set_direct(&probe) {
                    direct_refused = Some(format!("{why} on {shown}: buffered I/O instead"));
                }
            }
            devs.push(meta.dev());
        }
        // Workers round-robin over the directories; budgets per filesystem.
        let n = dirs.len();
        let worker_dir = |i: usize| i % n;
        let fs_of: Vec<u64> = devs.clone();
        let mut fs_list: Vec<u64> = Vec::new();
        for d in &devs {
            if !fs_list.contains(d) {
                fs_list.push(*d);
            }
        }
        let fs_workers = |dev: u64| {
            (0..workers)
                .filter(|&i| fs_of[worker_dir(i)] == dev)
                .count()
        };
        let mut budgets = Vec::new();
        for dev in fs_list.iter() {
            let dir = &dirs[devs.iter().position(|d| d == dev).expect("listed")];
            let (total, mut free) = sys::disk_space(dir)
                .map_err(|e| e.context(format!("statvfs {}", dir.display())))?;
            let budget = match self.max_disk {
                SizeSpec::Percent(_) if total == 0 => {
                    return Err(Error::usage(format!(
                        "--dir {}: its filesystem reports no size (ramfs?), so --max-disk {} means nothing there: give --max-disk as a size",
                        dir.display(),
                        self.max_disk
                    )))
                }
                SizeSpec::Percent(_) => self.max_disk.resolve(free),
                SizeSpec::Bytes(b) => {
                    // An absolute cap is shared by the filesystems as the workers are.
                    let b = (b as f64 * fs_workers(*dev) as f64 / workers as f64) as u64;
                    if total == 0 {
                        // No size known: the cap is all there is to go by.
                        free = b;
                    }
                    b
                }
            }
            .min(free);
            budgets.push((*dev, free, budget));
        }
        let total_budget: u64 = budgets.iter().map(|b| b.2).sum();
        let max_data = (total_budget as f64 * (1.0 - HEADROOM)) as u64;
        let wanted = match self.size {
            Some(SizeSpec::Percent(p)) => (total_budget as f64 * p / 100.0) as u64,
            Some(SizeSpec::Bytes(b)) => b,
            None => 2 * host.memory.total_bytes,
        };
        let mut size_note = None;
        let data = if wanted > max_data {
            size_note = Some(format!(
                "--size {} cut to {}: --max-disk {} allows {} here (less {}% for the filesystem's own use)",
                units::bytes(wanted),
                units::bytes(max_data),
                self.max_disk,
                units::bytes(total_budget),
                (HEADROOM * 100.0) as u32
            ));
            max_data
        } else {
            wanted
        };
        let mut targets = Vec::new();
        for d in dirs.iter() {
            let dev = std::fs::metadata(d).map(|m| m.dev()).unwrap_or(0);
            let (_, free, budget) = *budgets.iter().find(|b| b.0 == dev).expect("planned");
            let fw = fs_workers(dev).max(1);
            let share = data as f64 * fw as f64 / workers as f64;
            let file_bytes = ((share / fw as f64) as u64) / self.bs * self.bs;
            targets.push(Target {
                fs: fs_list.iter().position(|f| *f == dev).unwrap_or(0),
                dir: d.clone(),
                free,
                budget,
                floor: free - budget,
                fs_workers: fw,
                file_bytes,
                device: sys::block_device(d),
            });
        }
        if let Some(t) = targets.iter().find(|t| t.file_bytes < self.bs) {
            return Err(Error::usage(format!(
                "{} of data over {workers} workers is less than one --bs block ({}) each on {}: give more --size or --max-disk, or fewer workers",
                units::bytes(data),
                units::bytes(self.bs),
                t.dir.display()
            )));
        }
        let depth = self.iodepth.unwrap_or(DEFAULT_DEPTH);
        let (engine, engine_note) = match self.engine {
            EngineChoice::Psync => (Engine::Psync, None),
            EngineChoice::IoUring | EngineChoice::Auto => match try_ring(depth) {
                Ok(()) => (Engine::IoUring { depth }, None),
                Err(why) if self.engine == EngineChoice::Auto => (
                    Engine::Psync,
                    Some(format!("io_uring not available: {why}")),
                ),
                Err(why) => {
                    return Err(Error::usage(format!(
                        "--engine io_uring: {why} (use --engine psync or auto)"
                    )))
                }
            },
        };
        if self.iodepth.is_some()
            && engine == Engine::Psync
            && !self.common.quiet
            && !self.common.dry_run
        {
            eprintln!("diskthrash: note: --iodepth applies to io_uring only; psync has one I/O in flight per worker");
        }
        for note in size_note
            .iter()
            .chain(direct_refused.iter())
            .chain(engine_note.iter())
        {
            if !self.common.quiet && !self.common.dry_run {
                eprintln!("diskthrash: note: {note}");
            }
        }
        Ok(DiskThrash {
            counters: Counters::default(),
            workers,
            targets,
            pattern: self.rw,
            mix: matches!(self.rw, Pattern::Randrw | Pattern::Rw).then_some(self.mix),
            bs: self.bs,
            fsync: self.fsync,
            direct: self.direct && direct_refused.is_none(),
            direct_refused,
            rate: self.rate,
            iops: self.iops,
            engine,
            engine_note,
            files,
            data_bytes: data,
            data_shown: units::bytes(data),
            max_disk_bytes: total_budget,
            size_note,
            devices0: Vec::new(),
            psi0: None,
            quiet: self.common.quiet,
        })
    }
}

/// The next I/O of a worker: sequential passes or random blocks, reads and writes.
struct Gen {
    pattern: Pattern,
    bs: u64,
    /// Blocks in the working set.
    blocks: u64,
    next: u64,
    /// rw: reads and writes each go through the file in order (as fio's rw does).
    next_read: u64,
    /// In the paper pattern: this pass writes.
    writing: bool,
    mix: u8,
    rng: rand::rngs::SmallRng,
}

impl Gen {
    fn new(pattern: Pattern, mix: u8, bs: u64, size: u64, seed: u64) -> Self {
        Gen {
            pattern,
            bs,
            blocks: (size / bs).max(1),
            next: 0,
            next_read: 0,
            writing: true,
            mix,
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
        }
    }

    /// The working set shrank to `size` bytes.
    fn shrink(&mut self, size: u64) {
        self.blocks = (size / self.bs).max(1);
        if self.next >= self.blocks {
            self.next = 0;
        }
        if self.next_read >= self.blocks {
            self.next_read = 0;
        }
    }

    /// (write?, offset) of the next I/O.
    fn next_io(&mut self) -> (bool, u64) {
        let read = |g: &mut Gen| g.rng.random_range(0..100u8) < g.mix;
        match self.pattern {
            Pattern::Randread => (false, self.rng.random_range(0..self.blocks) * self.bs),
            Pattern::Randwrite => (true, self.rng.random_range(0..self.blocks) * self.bs),
            Pattern::Randrw => {
                let w = !read(self);
                (w, self.rng.random_range(0..self.blocks) * self.bs)
            }
            Pattern::Rw => {
                if read(self) {
                    let off = self.next_read * self.bs;
                    self.next_read = (self.next_read + 1) % self.blocks;
                    (false, off)
                } else {
                    let off = self.next * self.bs;
                    self.next = (self.next + 1) % self.blocks;
                    (true, off)
                }
            }
            _ => {
                let off = self.next * self.bs;
                self.next += 1;
                let w = match self.pattern {
                    Pattern::Paper => self.writing,
                    Pattern::Write => true,
                    _ => false,
                };
                if self.next >= self.blocks {
                    self.next = 0;
                    self.writing = !self.writing;
                }
                (w, off)
            }
        }
    }
}

/// One worker's file and what it knows of its space.
struct Io<'p> {
    plan: &'p DiskThrash,
    target: &'p Target,
    file: File,
    /// The working set now (shrinks on ENOSPC or when the disk fills).
    size: u64,
    written_since_kick: u64,
    read_since_drop: u64,
    writes: u64,
    last_watch: u64,
    bytes_cap: Option<RateCap>,
    iops_cap: Option<RateCap>,
}

impl Io<'_> {
    /// Once a second: keep the filesystem's free space above the plan's floor, and publish
    /// the space taken. When something else fills the disk, every worker on it cuts its file
    /// to an equal share of what the run may still hold there: (free + the run's own
    /// files) - floor. Each worker computes the same share from the shared gauges, so they
    /// converge at their next look rather than halving the deficit turn by turn.
    fn watch(&mut self, w: &mut Worker, gen: &mut Gen) {
        let now = time::mono_ns();
        if now - self.last_watch < 1_000_000_000 {
            return;
        }
        self.last_watch = now;
        self.publish(w);
        if let Ok(free) = common::sys::disk_free(&self.target.dir) {
            // A block per worker of margin: writes in flight land before the next look.
            let floor = self.target.floor + self.plan.bs * self.target.fs_workers as u64;
            if free < floor {
                let ours: u64 = (0..w.slots())
                    .filter(|&i| self.plan.target_of(i).fs == self.target.fs)
                    .map(|i| w.slot_value(i, self.plan.counters.disk_bytes))
                    .sum();
                let allowed = (free + ours).saturating_sub(floor);
                let share = allowed / self.target.fs_workers as u64;
                self.shrink(w, gen, share);
            }
        }
    }

    /// Space the file takes on disk, into the gauge.
    fn publish(&self, w: &mut Worker) {
        if let Ok(m) = self.file.metadata() {
            w.set(self.plan.counters.disk_bytes, m.blocks() * 512);
        }
    }

    /// Makes the working set `to` bytes (whole blocks, at least one) and gives the rest back.
    fn shrink(&mut self, w: &mut Worker, gen: &mut Gen, to: u64) {
        let to = (to / self.plan.bs * self.plan.bs).max(self.plan.bs);
        if to < self.size {
            self.size = to;
            let _ = self.file.set_len(to);
            gen.shrink(to);
            w.global(G_SHRINKS).fetch_add(1, Relaxed);
            self.publish(w);
        }
    }

    /// Waits for the caps, if any; false when told to stop meanwhile.
    fn pace(&self, w: &mut Worker) -> bool {
        if let Some(c) = &self.bytes_cap {
            if !w.pace(c, self.plan.bs) {
                return false;
            }
        }
        if let Some(c) = &self.iops_cap {
            if !w.pace(c, 1) {
                return false;
            }
        }
        true
    }

    /// After a completed I/O: counters, latency, fsync, writeback, cache dropping.
    fn done(&mut self, w: &mut Worker, write: bool, off: u64, n: u64, ns: u64) {
        w.add(MetricId::OPS, 1);
        let bs = self.plan.bs;
        if write && off + n > self.size {
            // Written past a shrink (an I/O in flight when the file was cut): cut again.
            let _ = self.file.set_len(self.size);
        }
        if write {
            w.add(self.plan.counters.write_bytes, n);
            w.add(self.plan.counters.write_ops, 1);
            w.record(H_WRITE, ns);
            self.writes += 1;
            if self.plan.fsync > 0 && self.writes.is_multiple_of(self.plan.fsync) {
                let _ = self.file.sync_data();
                w.add(self.plan.counters.fsyncs, 1);
            }
            if !self.plan.direct {
                self.written_since_kick += n;
                if self.written_since_kick >= WINDOW {
                    self.written_since_kick = 0;
                    // Wait for what was started a window ago, start what is dirty now:
                    // about two windows of dirty pages per worker at most; drop what is
                    // clean, so the cache does not fill with the bomb's data.
                    sys::writeback(&self.file, 0, 0, true);
                    common::sys::drop_cache(&self.file, 0, 0);
                }
            }
        } else {
            w.add(self.plan.counters.read_bytes, n);
            w.add(self.plan.counters.read_ops, 1);
            w.record(H_READ, ns);
            if !self.plan.direct {
                self.read_since_drop += n;
                if self.read_since_drop >= WINDOW {
                    self.read_since_drop = 0;
                    // The next pass reads from the disk, not from memory.
                    common::sys::drop_cache(&self.file, off.saturating_sub(WINDOW - bs), WINDOW);
                }
            }
        }
    }

    /// A failed I/O: counted by errno; a full disk or quota shrinks the working set.
    /// Err ends the worker (an error that repeats without end).
    fn failed(
        &mut self,
        w: &mut Worker,
        gen: &mut Gen,
        off: u64,
        e: Errno,
        streak: &mut u32,
    ) -> common::Result<()> {
        w.errno(e);
        match e {
            Errno::ENOSPC | Errno::EDQUOT => {
                let to = if off > 0 { off } else { self.size * 9 / 10 };
                self.shrink(w, gen, to.min(self.size * 9 / 10));
                *streak = 0;
                Ok(())
            }
            Errno::EINTR | Errno::EAGAIN => Ok(()),
            _ => {
                *streak += 1;
                if *streak > 1000 {
                    Err(Error::runtime(format!(
                        "I/O on a file in {} keeps failing: {}",
                        self.target.dir.display(),
                        common::error::errno_text(e)
                    )))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Whether an io_uring ring for `depth` I/Os in flight can be had and really reads and
/// writes; Err says in words why not. The probe ring is dropped at once: no ring is
/// inherited by the workers.
#[cfg(target_os = "linux")]
fn try_ring(depth: u32) -> Result<(), String> {
    sys::Ring::new(depth).map(drop)?;
    sys::ring_rw_works()
}

/// io_uring is Linux's: here `--engine io_uring` is refused and auto takes psync.
#[cfg(not(target_os = "linux"))]
fn try_ring(_depth: u32) -> Result<(), String> {
    Err("needs Linux".into())
}

/// Page-aligned memory for I/O buffers (O_DIRECT needs alignment), filled with random bytes
/// so that compressing or deduplicating storage cannot cheat.
fn buffers(len: usize, seed: u64, direct: bool) -> common::Result<Buffers> {
    // A direct I/O pins each page of its buffer for the time of the I/O; on one huge page a
    // 1 MiB I/O pins one page instead of 256. Worth the unused rest of the huge page only
    // from 1 MiB up.
    let huge = direct && len >= HUGE_PAGE / 2;
    let mapped = if huge {
        len.div_ceil(HUGE_PAGE) * HUGE_PAGE
    } else {
        len
    };
    let mut map = MmapMut::map_anon(mapped).map_err(Error::from)?;
    if huge {
        sys::huge_pages(&map);
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    rng.fill(&mut map[..len]);
    Ok(Buffers { map, len })
}

/// A transparent huge page on x86_64 and on aarch64 with 4 KiB pages.
const HUGE_PAGE: usize = 2 << 20;

/// I/O buffers: the first `len` bytes of their mapping, which may be larger (huge pages).
struct Buffers {
    map: MmapMut,
    len: usize,
}

impl std::ops::Deref for Buffers {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl std::ops::DerefMut for Buffers {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.map[..self.len]
    }
}

impl DiskThrash {
    fn target_of(&self, worker: usize) -> &Target {
        &self.targets[worker % self.targets.len()]
    }

    fn open(&self, w: &mut Worker) -> common::Result<Io<'_>> {
        let target = self.target_of(w.index);
        let (file, _) = common::sys::open_tmpfile(&target.dir).map_err(|e| {
            Error::from(e).context(format!("making a file in {}", target.dir.display()))
        })?;
        if self.direct {
            sys::set_direct(&file).map_err(Error::runtime)?;
        }
        Ok(Io {
            plan: self,
            target,
            file,
            size: target.file_bytes,
            written_since_kick: 0,
            read_since_drop: 0,
            writes: 0,
            last_watch: time::mono_ns(),
            bytes_cap: self.rate.map(|r| RateCap::new(CELL_BYTES, r)),
            iops_cap: self.iops.map(|r| RateCap::new(CELL_IOPS, r)),
        })
    }

    /// Writes the whole file once, in 1 MiB writes, before a pattern that reads (as fio lays
    /// out its files): reads then hit data on the disk, not holes. Counted as writes (bytes
    /// and I/Os, under the caps), without latency: it is not the pattern's I/O.
    fn layout(&self, w: &mut Worker, io: &mut Io, gen: &mut Gen) -> common::Result<()> {
        const CHUNK: u64 = 1 << 20;
        let buf = buffers(CHUNK as usize, w.seed ^ 0x5A5A, self.direct)?;
        let mut off = 0;
        let mut streak = 0;
        while off < io.size && w.running() {
            let n = CHUNK.min(io.size - off) as usize;
            if let Some(c) = &io.bytes_cap {
                if !w.pace(c, n as u64) {
                    break;
                }
            }
            if let Some(c) = &io.iops_cap {
                if !w.pace(c, 1) {
                    break;
                }
            }
            match io.file.write_at(&buf[..n], off) {
                Ok(k) => {
                    w.add(MetricId::OPS, 1);
                    w.add(self.counters.write_bytes, k as u64);
                    w.add(self.counters.write_ops, 1);
                    off += k as u64;
                }
                Err(e) => {
                    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                    io.failed(w, gen, off, errno, &mut streak)?;
                }
            }
            io.watch(w, gen);
        }
        if !self.direct {
            sys::writeback(&io.file, 0, 0, true);
            common::sys::drop_cache(&io.file, 0, 0);
        }
        w.global(G_LAYOUT_NS).fetch_max(time::mono_ns(), Relaxed);
        Ok(())
    }

    fn psync(&self, w: &mut Worker, io: &mut Io, gen: &mut Gen) -> common::Result<()> {
        let mut buf = buffers(self.bs as usize, w.seed, self.direct)?;
        let mut streak = 0u32;
        while w.running() {
            io.watch(w, gen);
            let (write, off) = gen.next_io();
            if !io.pace(w) {
                break;
            }
            let t0 = time::mono_ns();
            let r = if write {
                io.file.write_at(&buf, off)
            } else {
                io.file.read_at(&mut buf, off)
            };
            let ns = time::mono_ns() - t0;
            match r {
                Ok(n) => {
                    streak = 0;
                    io.done(w, write, off, n as u64, ns);
                }
                Err(e) => {
                    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                    io.failed(w, gen, off, errno, &mut streak)?;
                }
            }
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn uring(&self, w: &mut Worker, io: &mut Io, gen: &mut Gen, depth: u32) -> common::Result<()> {
        use std::os::fd::AsRawFd;
        let depth_n = depth as usize;
        let bs = self.bs as usize;
        // The buffers first: declared before the ring, they are dropped after it, so no I/O
        // in flight can outlive its buffer.
        let mut bufs = buffers(bs * depth_n, w.seed, self.direct)?;
        let mut ring = match sys::Ring::new(depth) {
            Ok(r) => r,
            Err(why) => {
                // Allowed while planning, refused now (a limit reached by many workers'
                // rings): this worker goes on with psync and says so.
                common::output::say(&format!(
                    "diskthrash: worker {}: {why}; this worker uses psync",
                    w.index
                ));
                return self.psync(w, io, gen);
            }
        };
        let depth = depth_n;
        let base = bufs.as_mut_ptr();
        let fd = io.file.as_raw_fd();
        // Fewer steps per I/O in the kernel where it takes the registration; a plain ring
        // does the same I/O otherwise.
        // SAFETY: `bufs` outlives the ring (declared before it, so dropped after it).
        if unsafe { ring.register(fd, base, bs * depth) } {
            w.global(G_REGISTERED).fetch_add(1, Relaxed);
        }
        // Per slot: (write, offset, start ns) of the I/O in flight.
        let mut slots: Vec<Option<(bool, u64, u64)>> = vec![None; depth];
        let mut done = Vec::with_capacity(depth);
        let mut streak = 0u32;
        let mut stopping = false;
        let mut in_flight = 0usize;
        let capped = io.bytes_cap.is_some() || io.iops_cap.is_some();
        loop {
            // Fill every free slot.
            for k in 0..depth {
                if slots[k].is_some() || stopping {
                    continue;
                }
                if capped {
                    // A cap may make us wait: what has completed is counted now, not after
                    // the wait (the enter runs the completions the ring deferred).
                    let _ = ring.submit_and_wait(0);
                    done.clear();
                    ring.completions(&mut done);
                    Self::completed(w, io, gen, &done, &mut slots, &mut in_flight, &mut streak)?;
                }
                if !w.running() || !io.pace(w) {
                    stopping = true;
                    break;
                }
                let (write, off) = gen.next_io();
                // SAFETY: slot k's buffer is bs bytes inside `bufs`, which outlives the ring
                // (dropped after it, at the end of this function), and no other I/O uses it
                // until its completion is taken.
                let pushed =
                    unsafe { ring.push(write, fd, base.add(k * bs), bs as u32, off, k as u64) };
                if !pushed {
                    break;
                }
                slots[k] = Some((write, off, time::mono_ns()));
                in_flight += 1;
                // Each I/O goes to the kernel as soon as it is queued, as fio's does: a
                // batch reaches a virtio disk as one burst and leaves it idle after. An error
                // here comes back from the wait below.
                let _ = ring.submit_and_wait(0);
            }
            if in_flight == 0 || stopping {
                // In-flight I/Os finish as the process exits; nothing more is waited for.
                break;
            }
            match ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(Error::from(e).context("io_uring_enter")),
            }
            done.clear();
            ring.completions(&mut done);
            Self::completed(w, io, gen, &done, &mut slots, &mut in_flight, &mut streak)?;
            io.watch(w, gen);
        }
        Ok(())
    }

    /// Counts io_uring completions and frees their slots.
    #[cfg(target_os = "linux")]
    fn completed(
        w: &mut Worker,
        io: &mut Io,
        gen: &mut Gen,
        done: &[(u64, i32)],
        slots: &mut [Option<(bool, u64, u64)>],
        in_flight: &mut usize,
        streak: &mut u32,
    ) -> common::Result<()> {
        let now = time::mono_ns();
        for &(tag, res) in done {
            let Some((write, off, t0)) = slots[tag as usize].take() else {
                continue;
            };
            *in_flight -= 1;
            if res >= 0 {
                *streak = 0;
                io.done(w, write, off, res as u64, now - t0);
            } else {
                io.failed(w, gen, off, Errno::from_raw(-res), streak)?;
            }
        }
        Ok(())
    }
}

impl Stressor for DiskThrash {
    const NAME: &'static str = "diskthrash";

    fn metrics(&self) -> &Metrics {
        &self.counters.list
    }

    fn latencies(&self) -> &[&'static str] {
        &LATENCIES
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn prepare(&mut self, _host: &Host) -> common::Result<()> {
        let mut seen = Vec::new();
        for t in &self.targets {
            if let Some(d) = &t.device {
                if !seen.contains(d) {
                    if let Some(s) = sys::disk_stats(d) {
                        self.devices0.push((d.clone(), s));
                    }
                    seen.push(d.clone());
                }
            }
        }
        self.psi0 = sys::io_pressure_us();
        let _ = self.quiet;
        Ok(())
    }

    fn work(&self, w: &mut Worker) -> common::Result<()> {
        let mut io = self.open(w)?;
        let mut gen = Gen::new(
            self.pattern,
            self.mix.unwrap_or(0),
            self.bs,
            io.size,
            w.seed,
        );
        io.publish(w);
        if self.pattern.needs_layout() {
            self.layout(w, &mut io, &mut gen)?;
        }
        let r = match self.engine {
            Engine::Psync => self.psync(w, &mut io, &mut gen),
            #[cfg(target_os = "linux")]
            Engine::IoUring { depth } => self.uring(w, &mut io, &mut gen, depth),
            #[cfg(not(target_os = "linux"))]
            Engine::IoUring { .. } => unreachable!("the plan takes io_uring on Linux only"),
        };
        io.publish(w);
        r
    }

    fn finish(&self, run: &RunData) -> Findings {
        let mut f = Findings::default();
        let t = run.stress_s.max(1e-9);
        let mib = (1u64 << 20) as f64;
        let r1 = |v: f64| (v * 10.0).round() / 10.0;
        f.detail("rw", Found::Text(value_name(&self.pattern)))
            .detail("engine", Found::Text(self.engine.name()));
        if matches!(self.engine, Engine::IoUring { .. }) {
            f.detail("registered_rings", Found::Count(run.globals[G_REGISTERED]));
        }
        if let Some(n) = &self.engine_note {
            f.detail("engine_note", Found::Text(n.clone()));
        }
        f.detail(
            "direct",
            Found::Text(match (&self.direct_refused, self.direct) {
                (Some(why), _) => why.clone(),
                (None, true) => "O_DIRECT".into(),
                (None, false) => "buffered".into(),
            }),
        )
        .detail("files", Found::Text(self.files.into()))
        .detail("bs_bytes", Found::Bytes(self.bs))
        .detail("data_bytes", Found::Bytes(self.data_bytes))
        .detail("max_disk_bytes", Found::Bytes(self.max_disk_bytes))
        .detail(
            "read_mib_s",
            Found::Number(
                r1(run.total(self.counters.read_bytes) as f64 / mib / t),
                "MiB/s",
            ),
        )
        .detail(
            "write_mib_s",
            Found::Number(
                r1(run.total(self.counters.write_bytes) as f64 / mib / t),
                "MiB/s",
            ),
        )
        .detail(
            "read_iops",
            Found::Number(r1(run.total(self.counters.read_ops) as f64 / t), "IOPS"),
        )
        .detail(
            "write_iops",
            Found::Number(r1(run.total(self.counters.write_ops) as f64 / t), "IOPS"),
        );
        if self.pattern.needs_layout() {
            f.detail(
                "layout_s",
                Found::seconds(run.since_start(run.globals[G_LAYOUT_NS])),
            );
        }
        let enospc: u64 = run
            .errors
            .iter()
            .filter(|(k, _)| k == "ENOSPC" || k == "EDQUOT")
            .map(|(_, n)| n)
            .sum();
        f.detail("enospc", Found::Count(enospc))
            .detail("shrinks", Found::Count(run.globals[G_SHRINKS]));
        // One device is reported: the first directory's.
        if let Some((name, s0)) = self.devices0.first() {
            if let Some(s1) = sys::disk_stats(name) {
                let d = s1.since(s0);
                f.detail("device", Found::Text(name.clone()))
                    .detail("device_reads", Found::Count(d.reads))
                    .detail("device_writes", Found::Count(d.writes))
                    .detail("device_read_bytes", Found::Bytes(d.read_sectors * 512))
                    .detail("device_write_bytes", Found::Bytes(d.write_sectors * 512))
                    .detail(
                        "device_busy_pct",
                        Found::Percent(
                            (100.0 * d.busy_ms as f64 / 1e3 / run.elapsed_s.max(1e-9)).min(100.0),
                        ),
                    );
            }
        }
        if let (Some((s0, f0)), Some((s1, f1))) = (self.psi0, sys::io_pressure_us()) {
            f.detail(
                "io_pressure_some_s",
                Found::Seconds(s1.saturating_sub(s0) as f64 / 1e6),
            )
            .detail(
                "io_pressure_full_s",
                Found::Seconds(f1.saturating_sub(f0) as f64 / 1e6),
            );
        }
        for slot in &run.slots {
            f.per_worker.push(vec![Finding::new(
                "mib_s",
                Found::Number(
                    r1((slot.counter(self.counters.read_bytes)
                        + slot.counter(self.counters.write_bytes)) as f64
                        / mib
                        / t),
                    "MiB/s",
                ),
            )]);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_writes_a_pass_then_reads_it_back() {
        let mut g = Gen::new(Pattern::Paper, 50, 4096, 3 * 4096, 1);
        let ios: Vec<(bool, u64)> = (0..7).map(|_| g.next_io()).collect();
        assert_eq!(
            ios,
            [
                (true, 0),
                (true, 4096),
                (true, 8192),
                (false, 0),
                (false, 4096),
                (false, 8192),
                (true, 0)
            ]
        );
    }

    #[test]
    fn random_reads_stay_inside_the_working_set() {
        let mut g = Gen::new(Pattern::Randread, 50, 4096, 4 * 4096, 1);
        for _ in 0..1000 {
            let (w, off) = g.next_io();
            assert!(!w && off < 4 * 4096 && off % 4096 == 0);
        }
        g.shrink(2 * 4096);
        for _ in 0..1000 {
            assert!(g.next_io().1 < 2 * 4096);
        }
    }

    #[test]
    fn rw_reads_and_writes_each_go_through_the_file_in_order() {
        let mut g = Gen::new(Pattern::Rw, 50, 4096, 1 << 20, 5);
        let (mut r, mut w) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            let (write, off) = g.next_io();
            if write {
                w.push(off)
            } else {
                r.push(off)
            }
        }
        for v in [&r, &w] {
            assert!(v.windows(2).all(|p| p[1] == p[0] + 4096), "{v:?}");
        }
        assert!(r.len() > 30 && w.len() > 30);
    }

    #[test]
    fn the_mix_sets_the_share_of_reads() {
        let mut g = Gen::new(Pattern::Randrw, 70, 4096, 1 << 30, 3);
        let reads = (0..10_000).filter(|_| !g.next_io().0).count();
        assert!((6700..7300).contains(&reads), "{reads}");
    }
}
