//! `probe`: a well-behaved guest, measured. The isolation paper ran SPECweb in every guest
//! and reported the drop in the share of requests with a good response time; `probe` is
//! that workload, small and static: a steady load of four kinds of work at a fixed offered
//! rate, each operation timed.
//!
//! - `cpu`: a fixed compute unit (integer multiply, divide, remainder);
//! - `mem`: random reads and writes of cache lines over a fixed working set;
//! - `disk`: alternately a 4 KiB write followed by fdatasync and a 4 KiB random read (its
//!   page dropped from the cache first) of a file of its own that has no name (O_TMPFILE,
//!   as diskthrash: nothing is left behind);
//! - `net`: a 64-byte UDP request to a `netflood echo` and its reply.
//!
//! **Open loop.** Operation `i` of a worker is due at `t0 + i / rate`; its latency is
//! measured from that intended start, not from when it really started. A stall (the guest
//! descheduled, a page reclaimed, the disk busy) shows as the latency it caused to every
//! operation that should have run meanwhile, as wrk2 does, instead of hiding as fewer
//! operations (coordinated omission). A worker that falls behind runs the late operations
//! back to back until it is on schedule again.
//!
//! **Good share.** An operation is good when its latency is within the kind's SLO
//! (`--slo`). Per second: good / (completed + lost) of that second's operations; over the
//! run: good / offered, where offered counts every operation that was due before the stop,
//! so an operation that never ran (a hung guest) counts as not good.
//!
//! **Contention signals** (Linux, per second): the guest's CPU steal (/proc/stat), PSI
//! stall time for cpu, memory and io (/proc/pressure), and the probe workers' own run-queue
//! wait (/proc/thread-self/schedstat). A monitor worker reads the host-wide ones.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use clap::Parser;
use serde::{Serialize, Serializer};

use common::units::{parse_bytes, parse_plain_duration, parse_rate, RateKind};
use common::{
    time, CommonArgs, EndStatus, Error, Finding, Findings, Found, Host, MetricId, Metrics, RunData,
    Stressor, Unit, Worker,
};

mod sys;

/// A kind of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Cpu,
    Mem,
    Disk,
    Net,
}

/// Every kind, in the order the report lists them.
pub const WORKS: [Work; 4] = [Work::Cpu, Work::Mem, Work::Disk, Work::Net];

impl Work {
    pub fn name(self) -> &'static str {
        ["cpu", "mem", "disk", "net"][self.index()]
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(s: &str) -> Option<Work> {
        WORKS.into_iter().find(|w| w.name() == s.trim())
    }

    /// Operations per second when `--rate` does not say.
    pub fn default_rate(self) -> f64 {
        match self {
            Work::Cpu | Work::Mem | Work::Net => 200.0,
            Work::Disk => 50.0,
        }
    }

    /// The SLO when `--slo` does not say: about ten times the p99 of a quiet run on a
    /// quiet machine (`docs/probe.md`), so a quiet guest is ~100% good and a stall of a few
    /// milliseconds is not.
    pub fn default_slo(self) -> Duration {
        Duration::from_millis(match self {
            Work::Cpu => 2,
            Work::Mem => 2,
            Work::Disk => 20,
            Work::Net => 2,
        })
    }

    const fn ops_metric(self) -> &'static str {
        ["cpu_ops", "mem_ops", "disk_ops", "net_ops"][self as usize]
    }
    const fn good_metric(self) -> &'static str {
        ["cpu_good", "mem_good", "disk_good", "net_good"][self as usize]
    }
    const fn good_pct_name(self) -> &'static str {
        [
            "cpu_good_pct",
            "mem_good_pct",
            "disk_good_pct",
            "net_good_pct",
        ][self as usize]
    }
    const fn p99_name(self) -> &'static str {
        ["cpu_p99_ms", "mem_p99_ms", "disk_p99_ms", "net_p99_ms"][self as usize]
    }
}

/// Measure what the neighbours lose: steady cpu, memory, disk and network work at a fixed
/// rate, each operation timed from its intended start.
#[derive(Debug, Parser)]
#[command(name = "probe", version, after_long_help = concat!("
Run probe in every well-behaved guest (and in the misbehaving one, beside the bomb), once
with no stress (the baseline) and once per stress test; `compare` (a host-side tool of the
suite) turns the reports into the isolation paper's degradation table.

Examples:
  probe -t 60s                         cpu, mem and disk work, 60 s (net needs --echo)
  probe --echo 10.0.0.1:9000 -t 5m     also UDP round trips to `netflood echo --listen 0.0.0.0:9000`
  probe --work cpu,disk --rate 500/s --rate disk=100/s
  probe --slo 5ms --slo disk=50ms      good = within 5 ms (disk: 50 ms)
  probe --json -q -o probe.json        for Ansible: report in a file

Each kind runs open loop: operation i is due at start + i/rate and its latency is taken from
that moment, so a stall shows as latency (as wrk2). Default rates: cpu, mem, net 200/s,
disk 50/s. Default SLOs: cpu, mem, net 2ms, disk 20ms. -w N runs N workers per kind, each
at rate/N.
", common::help_footer!()), after_help = "See --help for examples, units, safety and exit codes.")]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Kinds of work, comma-separated: cpu,mem,disk,net [default: all that can run here]
    #[arg(long, value_name = "LIST", help_heading = "Probe")]
    pub work: Option<String>,

    /// Offered operations per second per kind: `500/s` (every kind) or `KIND=RATE`;
    /// repeatable
    #[arg(long, value_name = "RATE", help_heading = "Probe")]
    pub rate: Vec<String>,

    /// Latency within which an operation is good: `5ms` (every kind) or `KIND=DUR`;
    /// repeatable
    #[arg(long, value_name = "DUR", help_heading = "Probe")]
    pub slo: Vec<String>,

    /// A `netflood echo` to time round trips against (net work runs only with it)
    #[arg(long, value_name = "HOST:PORT", help_heading = "Probe")]
    pub echo: Option<String>,

    /// Directory for the disk work's file (it never has a name: nothing is left behind)
    #[arg(long, value_name = "PATH", default_value = ".", help_heading = "Probe")]
    pub dir: PathBuf,

    /// Working set of the mem work
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "64M",
        help_heading = "Probe"
    )]
    pub mem_size: String,

    /// Size of the disk work's file
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "16M",
        help_heading = "Probe"
    )]
    pub file_size: String,
}

/// The most operations per second per kind (a probe is a light, steady load).
pub const MAX_RATE: f64 = 100_000.0;

/// A net request not answered within this long is lost.
const NET_TIMEOUT_NS: u64 = 1_000_000_000;

/// Disk I/O size.
const BLOCK: u64 = 4096;

/// Iterations of the cpu unit (tens of microseconds on a current core).
const CPU_UNIT: u64 = 4000;

/// Cache lines read and written per mem operation.
const MEM_READS: usize = 256;
const MEM_WRITES: usize = 64;

/// The plan. Its parameters are [`Probe`]'s `Serialize`.
#[derive(Debug, Clone)]
pub struct Probe {
    pub works: Vec<Work>,
    pub per_kind: usize,
    /// Offered operations per second, per kind (index: `Work::index`).
    pub rates: [f64; 4],
    pub slos_ns: [u64; 4],
    pub slo_given: [bool; 4],
    pub echo: Option<SocketAddr>,
    pub dir: PathBuf,
    pub mem_bytes: u64,
    pub file_bytes: u64,
    pub notes: Vec<String>,
    online_cpus: usize,
    metrics: Metrics,
    lats: Vec<&'static str>,
    /// Per kind: its metrics and histogram ([`KindIds`]), for the kinds that run.
    slots: [Option<KindIds>; 4],
    m_lost: Option<MetricId>,
    /// The signals' metrics, in the order of [`SIGNALS`].
    m_signals: [MetricId; SIGNALS.len()],
}

/// A kind's metrics (operations, and those within the SLO) and its latency histogram.
#[derive(Debug, Clone, Copy)]
struct KindIds {
    ops: MetricId,
    good: MetricId,
    hist: usize,
}

/// The plan's parameters: only the kinds that run, and what each of them uses (the plan
/// keeps one entry per kind, running or not).
impl Serialize for Probe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::collections::BTreeMap;
        #[derive(Serialize)]
        struct Params<'a> {
            work: Vec<&'static str>,
            workers_per_kind: usize,
            rate_per_s: BTreeMap<&'static str, f64>,
            slo_ms: BTreeMap<&'static str, f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            echo: Option<SocketAddr>,
            #[serde(skip_serializing_if = "Option::is_none")]
            dir: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            file_bytes: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            mem_bytes: Option<u64>,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            notes: &'a [String],
        }
        let runs = |w| self.works.contains(&w);
        let per_kind =
            |v: &dyn Fn(Work) -> f64| self.works.iter().map(|&w| (w.name(), v(w))).collect();
        Params {
            work: self.works.iter().map(|w| w.name()).collect(),
            workers_per_kind: self.per_kind,
            rate_per_s: per_kind(&|w| self.rates[w.index()]),
            slo_ms: per_kind(&|w| Self::ms(self.slos_ns[w.index()])),
            echo: self.echo,
            dir: runs(Work::Disk).then(|| self.dir.display().to_string()),
            file_bytes: runs(Work::Disk).then_some(self.file_bytes),
            mem_bytes: runs(Work::Mem).then_some(self.mem_bytes),
            notes: &self.notes,
        }
        .serialize(s)
    }
}

/// Signal metrics, after the kinds': run-queue wait, steal, PSI some (cpu, memory, io).
const SIGNALS: [&str; 5] = [
    "runq_wait_ns",
    "guest_steal_ns",
    "psi_cpu_some_ns",
    "psi_memory_some_ns",
    "psi_io_some_ns",
];
const S_RUNQ: usize = 0;
const S_STEAL: usize = 1;
const S_PSI: usize = 2;
const PSI: [&str; 3] = ["cpu", "memory", "io"];

fn split_kind<'a>(flag: &str, v: &'a str) -> common::Result<(Option<Work>, &'a str)> {
    match v.split_once('=') {
        Some((k, rest)) => match Work::parse(k) {
            Some(w) => Ok((Some(w), rest)),
            None => Err(Error::usage(format!(
                "--{flag} {v}: unknown kind `{k}` (cpu, mem, disk, net)"
            ))),
        },
        None => Ok((None, v)),
    }
}

impl common::Command for Cli {
    type Stressor = Probe;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn plan(&self, host: &Host) -> common::Result<Probe> {
        let mut notes = Vec::new();
        let asked: Option<Vec<Work>> = match &self.work {
            None => None,
            Some(list) => {
                let mut v = Vec::new();
                for k in list.split(',').filter(|k| !k.trim().is_empty()) {
                    let w = Work::parse(k).ok_or_else(|| {
                        Error::usage(format!(
                            "--work {list}: unknown kind `{k}` (cpu, mem, disk, net)"
                        ))
                    })?;
                    if !v.contains(&w) {
                        v.push(w);
                    }
                }
                if v.is_empty() {
                    return Err(Error::usage(
                        "--work: name at least one of cpu, mem, disk, net",
                    ));
                }
                Some(v)
            }
        };
        let explicit = |w: Work| asked.as_ref().is_some_and(|a| a.contains(&w));
        let mut rates = WORKS.map(Work::default_rate);
        for r in &self.rate {
            let (k, v) = split_kind("rate", r)?;
            let per_s = parse_rate(v, RateKind::Count)
                .map_err(|e| Error::usage(format!("--rate {r}: {e}")))?;
            if per_s > MAX_RATE {
                return Err(Error::usage(format!(
                    "--rate {r}: at most {MAX_RATE}/s per kind (a probe is a light load)"
                )));
            }
            match k {
                Some(w) => rates[w.index()] = per_s,
                None => rates = [per_s; 4],
            }
        }
        let mut slos_ns = WORKS.map(|w| w.default_slo().as_nanos() as u64);
        let mut slo_given = [false; 4];
        for s in &self.slo {
            let (k, v) = split_kind("slo", s)?;
            let d = parse_plain_duration(v).map_err(|e| Error::usage(format!("--slo {s}: {e}")))?;
            if d.is_zero() {
                return Err(Error::usage(format!("--slo {s}: must be more than 0")));
            }
            let ns = d.as_nanos().min(u64::MAX as u128) as u64;
            match k {
                Some(w) => {
                    slos_ns[w.index()] = ns;
                    slo_given[w.index()] = true;
                }
                None => {
                    slos_ns = [ns; 4];
                    slo_given = [true; 4];
                }
            }
        }
        let echo = match &self.echo {
            None => None,
            Some(e) => {
                let a = e
                    .to_socket_addrs()
                    .map_err(|err| Error::usage(format!("--echo {e}: {err} (expected HOST:PORT)")))?
                    .next()
                    .ok_or_else(|| Error::usage(format!("--echo {e}: no address")))?;
                if a.port() == 0 || a.ip().is_unspecified() || a.ip().is_multicast() {
                    return Err(Error::usage(format!(
                        "--echo {e}: needs a unicast address and a port other than 0"
                    )));
                }
                Some(a)
            }
        };
        let mem_bytes = parse_bytes(&self.mem_size)
            .map_err(|e| Error::usage(format!("--mem-size {}: {e}", self.mem_size)))?;
        if !(4096..=(1u64 << 34)).contains(&mem_bytes) {
            return Err(Error::usage("--mem-size: from 4k to 16G"));
        }
        let file_bytes = parse_bytes(&self.file_size)
            .map_err(|e| Error::usage(format!("--file-size {}: {e}", self.file_size)))?;
        if !(64 * 1024..=(1u64 << 34)).contains(&file_bytes) {
            return Err(Error::usage("--file-size: from 64k to 16G"));
        }
        let file_bytes = file_bytes / BLOCK * BLOCK;

        let mut works = Vec::new();
        for w in asked.clone().unwrap_or(WORKS.to_vec()) {
            match w {
                Work::Net if echo.is_none() => {
                    if explicit(w) {
                        return Err(Error::usage(
                            "--work net needs --echo HOST:PORT (a `netflood echo`)",
                        ));
                    }
                    notes.push("net skipped: no --echo HOST:PORT given".to_string());
                }
                Work::Disk => match disk_check(&self.dir, file_bytes) {
                    Ok(()) => works.push(w),
                    Err(why) if explicit(w) => {
                        return Err(Error::usage(format!("--dir {}: {why}", self.dir.display())))
                    }
                    Err(why) => notes.push(format!("disk skipped: {}: {why}", self.dir.display())),
                },
                _ => works.push(w),
            }
        }
        works.sort_by_key(|w| w.index());
        if works.is_empty() {
            return Err(Error::usage("no kind of work can run here"));
        }
        let per_kind = self.common.workers.unwrap_or(1);

        // Metrics and histograms of the kinds that run only.
        let mut metrics = Metrics::default();
        let mut lats = Vec::new();
        let mut slots = [None; 4];
        for w in &works {
            slots[w.index()] = Some(KindIds {
                ops: metrics.total(w.ops_metric(), Unit::Count),
                good: metrics.total(w.good_metric(), Unit::Count),
                hist: lats.len(),
            });
            lats.push(w.name());
        }
        let m_lost = works
            .contains(&Work::Net)
            .then(|| metrics.total("net_lost", Unit::Count));
        let m_signals = SIGNALS.map(|s| metrics.total(s, Unit::Nanos));
        Ok(Probe {
            works,
            per_kind,
            rates,
            slos_ns,
            slo_given,
            echo,
            dir: self.dir.clone(),
            mem_bytes,
            file_bytes,
            notes,
            online_cpus: host.cpus.online.max(1),
            metrics,
            lats,
            slots,
            m_lost,
            m_signals,
        })
    }
}

/// Can the disk work run in `dir`: a nameless file there, and room for it twice over.
fn disk_check(dir: &std::path::Path, bytes: u64) -> Result<(), String> {
    if !dir.is_dir() {
        return Err("not a directory".into());
    }
    let free = common::sys::disk_free(dir).map_err(|e| e.to_string())?;
    if free < 2 * bytes {
        return Err(format!(
            "{} free, the file needs {} (twice over)",
            common::units::bytes(free),
            common::units::bytes(bytes)
        ));
    }
    common::sys::open_tmpfile(dir)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What one operation came to.
enum Op {
    Done,
    /// A net request with no reply in time.
    Lost,
}

/// xorshift64: cheap randomness inside the timed operations.
#[inline]
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// The cpu unit: integer multiply, divide and remainder, `n` rounds.
#[inline(never)]
fn cpu_unit(seed: u64, n: u64) -> u64 {
    let (mut x, mut y) = (seed | 1, seed.rotate_left(17) | 3);
    for _ in 0..n {
        x = x.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(y);
        let d = (y >> 7) | 3;
        y = y.rotate_left(13) ^ (x / d) ^ (x % (d ^ 0x55));
    }
    std::hint::black_box(x ^ y)
}

/// A worker's schedule as its result: start (CLOCK_MONOTONIC ns), operations offered, and
/// whether the worker returned (the count is final).
fn schedule(t0: u64, offered: u64, done: bool) -> [u8; 17] {
    let mut b = [0u8; 17];
    b[..8].copy_from_slice(&t0.to_le_bytes());
    b[8..16].copy_from_slice(&offered.to_le_bytes());
    b[16] = u8::from(done);
    b
}

/// Operations of a schedule starting at `t0`, one every `period` ns, due by `until`.
fn due(t0: u64, until: u64, period: f64) -> u64 {
    if until >= t0 {
        ((until - t0) as f64 / period) as u64 + 1
    } else {
        0
    }
}

fn read_schedule(b: &[u8]) -> Option<(u64, u64, bool)> {
    let b: &[u8; 17] = b.try_into().ok()?;
    let word = |r: std::ops::Range<usize>| u64::from_le_bytes(b[r].try_into().unwrap());
    Some((word(0..8), word(8..16), b[16] == 1))
}

impl Probe {
    /// The kind and the number within the kind of worker `index` (None: the monitor).
    fn role(&self, index: usize) -> Option<(Work, usize)> {
        let w = self.works.get(index / self.per_kind)?;
        Some((*w, index % self.per_kind))
    }

    /// The open loop: operation `i` is due at `t0 + i * period`; latency from then.
    fn paced(
        &self,
        w: &mut Worker,
        kind: Work,
        j: usize,
        mut op: impl FnMut(&mut Worker, u64) -> common::Result<Op>,
    ) -> common::Result<()> {
        // Every worker starts its schedule once all are set up (the mem working set filled,
        // the disk file laid out), so one kind's setup is not measured as another's stall.
        // One that died while it set up (OOM-killed filling its working set) never will be:
        // the gate waits for the others set up or gone, so the kinds that can run do.
        let workers = self.works.len() * self.per_kind;
        let set_up = w.words();
        set_up[w.index].store(1, Relaxed);
        let give_up = time::mono_ns() + 10_000_000_000;
        let all_there =
            |w: &Worker| (0..workers).all(|i| set_up[i].load(Relaxed) != 0 || w.slot_ended(i));
        while !all_there(w) && time::mono_ns() < give_up {
            if !w.running() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let ids = self.slots[kind.index()].expect("a planned kind");
        let rec = w.histogram(ids.hist);
        let slo = self.slos_ns[kind.index()];
        let period = self.period_ns(kind);
        let t0 = time::mono_ns() + (period * j as f64 / self.per_kind as f64) as u64;
        // The schedule, for `finish`: a worker killed before it returns (the OOM killer's
        // victim) still had every operation due until the run stopped offered to it.
        w.set_result(&schedule(t0, 0, false));
        let runq0 = sys::run_queue_wait_ns();
        let mut next_look = t0;
        let mut i = 0u64;
        // The last moment the run was seen going on: operations due by then were offered.
        let mut alive_at = time::mono_ns();
        while w.running() {
            alive_at = time::mono_ns();
            let due = t0 + (i as f64 * period) as u64;
            if alive_at < due {
                w.sleep(Duration::from_nanos(due - alive_at));
                continue;
            }
            match op(w, i)? {
                Op::Done => {
                    let lat = time::mono_ns().saturating_sub(due);
                    rec.record(lat);
                    w.add(MetricId::OPS, 1);
                    w.add(ids.ops, 1);
                    if lat <= slo {
                        w.add(ids.good, 1);
                    }
                }
                Op::Lost => w.add(self.m_lost.expect("net has a lost count"), 1),
            }
            i += 1;
            if alive_at >= next_look {
                next_look = alive_at + 250_000_000;
                if let (Some(a), Some(b)) = (runq0, sys::run_queue_wait_ns()) {
                    w.set(self.m_signals[S_RUNQ], b.saturating_sub(a));
                }
            }
        }
        if let (Some(a), Some(b)) = (runq0, sys::run_queue_wait_ns()) {
            w.set(self.m_signals[S_RUNQ], b.saturating_sub(a));
        }
        w.set_result(&schedule(t0, due(t0, alive_at, period).max(i), true));
        Ok(())
    }

    /// Nanoseconds between two operations of one of `kind`'s workers.
    fn period_ns(&self, kind: Work) -> f64 {
        1e9 * self.per_kind as f64 / self.rates[kind.index()]
    }

    /// Operations offered to `kind` over the run, and how many of its workers ended before
    /// the run did (killed: their results hold no final count). Such a worker was offered
    /// every operation due from its schedule's start until the run stopped, and served
    /// none after its death: the outage counts against the good share, as a stall does.
    fn offered(&self, run: &RunData, kind: Work) -> (u64, u64) {
        let pos = self.works.iter().position(|k| *k == kind).expect("planned");
        let period = self.period_ns(kind);
        let stop_ns = run.start_ns + (run.stress_s * 1e9) as u64;
        let (mut offered, mut ended) = (0, 0);
        for j in 0..self.per_kind {
            let slot = run.slots.get(pos * self.per_kind + j);
            match slot.and_then(|s| read_schedule(&s.result)) {
                Some((_, n, true)) => offered += n,
                Some((t0, _, false)) => {
                    ended += 1;
                    offered += due(t0, stop_ns, period);
                }
                // Killed before its schedule began (while it set up).
                None => {
                    ended += 1;
                    offered += (run.stress_s * 1e9 / period) as u64;
                }
            }
        }
        (offered, ended)
    }

    /// Whether every worker of `kind` ended before the run's stop, and then how:
    /// `oom_killed` if the OOM killer took any of them, else `killed` if a signal did,
    /// else `exited` (a worker's own error).
    fn died(&self, run: &RunData, kind: Work) -> Option<&'static str> {
        let pos = self.works.iter().position(|k| *k == kind).expect("planned");
        let slots = run
            .slots
            .get(pos * self.per_kind..(pos + 1) * self.per_kind)?;
        if slots.is_empty() || slots.iter().any(|s| s.early_end.is_none()) {
            return None;
        }
        Some(if slots.iter().any(|s| s.oom) {
            "oom_killed"
        } else if slots
            .iter()
            .any(|s| matches!(s.early_end, Some(EndStatus::Killed(_))))
        {
            "killed"
        } else {
            "exited"
        })
    }

    fn cpu(&self, w: &mut Worker, j: usize) -> common::Result<()> {
        let seed = w.seed;
        self.paced(w, Work::Cpu, j, |_, i| {
            cpu_unit(seed ^ i, CPU_UNIT);
            Ok(Op::Done)
        })
    }

    fn mem(&self, w: &mut Worker, j: usize) -> common::Result<()> {
        let words = (self.mem_bytes / 8) as usize;
        let mut set: Vec<u64> = Vec::new();
        set.try_reserve_exact(words).map_err(|_| {
            Error::runtime(format!("mem: cannot allocate {} bytes", self.mem_bytes))
        })?;
        // Every page touched before the first operation.
        set.extend((0..words as u64).map(|v| v.wrapping_mul(0x9E37_79B9)));
        let lines = (words / 8).max(1) as u64;
        let mut x = w.seed | 1;
        self.paced(w, Work::Mem, j, |_, _| {
            let mut sum = 0u64;
            for _ in 0..MEM_READS {
                sum = sum.wrapping_add(set[(next(&mut x) % lines) as usize * 8]);
            }
            for _ in 0..MEM_WRITES {
                let k = (next(&mut x) % lines) as usize * 8;
                set[k] = set[k].wrapping_add(sum);
            }
            std::hint::black_box(sum);
            Ok(Op::Done)
        })
    }

    fn disk(&self, w: &mut Worker, j: usize) -> common::Result<()> {
        let (file, _) = common::sys::open_tmpfile(&self.dir)
            .map_err(|e| Error::runtime(format!("disk: {}: {e}", self.dir.display())))?;
        // Lay the file out in 1 MiB writes, on disk before the first operation.
        let chunk = vec![0x5Au8; 1 << 20];
        let mut off = 0;
        while off < self.file_bytes && w.running() {
            let n = (self.file_bytes - off).min(chunk.len() as u64) as usize;
            file.write_all_at(&chunk[..n], off)
                .map_err(|e| Error::runtime(format!("disk: laying out the file: {e}")))?;
            off += n as u64;
        }
        file.sync_all()
            .map_err(|e| Error::runtime(format!("disk: fsync: {e}")))?;
        common::sys::drop_cache(&file, 0, 0);
        let blocks = (self.file_bytes / BLOCK).max(1);
        let mut buf = vec![0u8; BLOCK as usize];
        let mut x = w.seed | 1;
        self.paced(w, Work::Disk, j, |w, i| {
            let at = next(&mut x) % blocks * BLOCK;
            let r = if i % 2 == 0 {
                buf[..8].copy_from_slice(&i.to_le_bytes());
                file.write_all_at(&buf, at).and_then(|_| file.sync_data())
            } else {
                common::sys::drop_cache(&file, at, BLOCK);
                file.read_exact_at(&mut buf, at)
            };
            if let Err(e) = r {
                if let Some(n) = e.raw_os_error() {
                    w.errno(nix::errno::Errno::from_raw(n));
                }
                return Err(Error::runtime(format!("disk: {e}")));
            }
            Ok(Op::Done)
        })
    }

    fn net(&self, w: &mut Worker, j: usize) -> common::Result<()> {
        let to = self.echo.expect("net runs with --echo");
        let bind: SocketAddr = if to.is_ipv4() {
            "0.0.0.0:0".parse().expect("an address")
        } else {
            "[::]:0".parse().expect("an address")
        };
        let sock = UdpSocket::bind(bind)
            .and_then(|s| s.connect(to).map(|_| s))
            .map_err(|e| Error::runtime(format!("net: {to}: {e}")))?;
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(|e| Error::runtime(format!("net: {e}")))?;
        let tag = (w.seed as u32) ^ std::process::id();
        let mut req = [0u8; 64];
        let mut resp = [0u8; 128];
        self.paced(w, Work::Net, j, |w, i| {
            req[..4].copy_from_slice(&tag.to_le_bytes());
            req[4..12].copy_from_slice(&i.to_le_bytes());
            let sent = time::mono_ns();
            if let Err(e) = sock.send(&req) {
                // Refused (no echo yet), unreachable: the request is lost, the probe goes on.
                if let Some(n) = e.raw_os_error() {
                    w.errno(nix::errno::Errno::from_raw(n));
                }
                return Ok(Op::Lost);
            }
            loop {
                match sock.recv(&mut resp) {
                    Ok(n)
                        if n >= 12
                            && resp[..4] == tag.to_le_bytes()
                            && resp[4..12] == i.to_le_bytes() =>
                    {
                        return Ok(Op::Done);
                    }
                    Ok(_) => {} // a late reply to an earlier request
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => {
                        if let Some(n) = e.raw_os_error() {
                            w.errno(nix::errno::Errno::from_raw(n));
                        }
                        return Ok(Op::Lost);
                    }
                }
                if time::mono_ns().saturating_sub(sent) >= NET_TIMEOUT_NS || !w.running() {
                    return Ok(Op::Lost);
                }
            }
        })
    }

    /// The monitor: host-wide contention signals, read five times a second.
    fn monitor(&self, w: &mut Worker) {
        let hz = common::sys::ticks_per_second() as f64;
        let steal0 = common::sys::cpu_ticks().map(|t| t.steal);
        let psi0 = PSI.map(|r| common::sys::pressure_us(r).map(|p| p.0));
        let look = |w: &Worker| {
            if let (Some(a), Some(t)) = (steal0, common::sys::cpu_ticks()) {
                let ns = (t.steal.saturating_sub(a)) as f64 * 1e9 / hz;
                w.set(self.m_signals[S_STEAL], ns as u64);
            }
            for (k, r) in PSI.iter().enumerate() {
                if let (Some(a), Some(p)) = (psi0[k], common::sys::pressure_us(r)) {
                    w.set(self.m_signals[S_PSI + k], p.0.saturating_sub(a) * 1000);
                }
            }
        };
        while w.running() {
            look(w);
            w.sleep(Duration::from_millis(200));
        }
        look(w);
    }

    fn ms(ns: u64) -> f64 {
        ns as f64 / 1e6
    }
}

fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

impl Stressor for Probe {
    const NAME: &'static str = "probe";

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn latencies(&self) -> &[&'static str] {
        &self.lats
    }

    fn workers(&self) -> usize {
        self.works.len() * self.per_kind + 1
    }

    /// One word per worker of a kind: set once that worker is set up (the start gate).
    fn shared_words(&self) -> usize {
        self.works.len() * self.per_kind
    }

    fn work(&self, w: &mut Worker) -> common::Result<()> {
        match self.role(w.index) {
            None => {
                self.monitor(w);
                Ok(())
            }
            Some((Work::Cpu, j)) => self.cpu(w, j),
            Some((Work::Mem, j)) => self.mem(w, j),
            Some((Work::Disk, j)) => self.disk(w, j),
            Some((Work::Net, j)) => self.net(w, j),
        }
    }

    fn finish(&self, run: &RunData) -> Findings {
        let mut f = Findings::default();
        let names: Vec<&str> = self.works.iter().map(|w| w.name()).collect();
        f.detail("work", Found::Text(names.join(",")));
        if !self.notes.is_empty() {
            f.detail("notes", Found::Text(self.notes.join("; ")));
        }
        // Over the run, per kind.
        let mut kinds = Vec::new();
        let mut died = Vec::new();
        for w in &self.works {
            let failed = self.died(run, *w);
            if let Some(why) = failed {
                died.push(format!("{} ({why})", w.name()));
            }
            let ids = self.slots[w.index()].expect("planned");
            let done = run.total(ids.ops);
            let good = run.total(ids.good);
            let lost = if *w == Work::Net {
                self.m_lost.map_or(0, |l| run.total(l))
            } else {
                0
            };
            let (offered, ended) = self.offered(run, *w);
            let offered = offered.max(done + lost);
            let good_pct = (offered > 0).then(|| 100.0 * good as f64 / offered as f64);
            let lat = run.latency[ids.hist];
            let us = |v: Option<u64>| {
                v.map_or(Found::Missing, |ns| {
                    Found::Number(r3(ns as f64 / 1e3), "us")
                })
            };
            kinds.push(vec![
                ("kind", Found::Text(w.name().into())),
                ("rate_per_s", Found::Number(self.rates[w.index()], "/s")),
                (
                    "slo_ms",
                    Found::Number(Self::ms(self.slos_ns[w.index()]), "ms"),
                ),
                ("slo_default", Found::Flag(!self.slo_given[w.index()])),
                ("offered", Found::Count(offered)),
                ("completed", Found::Count(done)),
                ("good", Found::Count(good)),
                ("lost", Found::Count(lost)),
                ("workers_ended_early", Found::Count(ended)),
                ("failed", Found::Flag(failed.is_some())),
                (
                    "failed_reason",
                    failed.map_or(Found::Missing, |r| Found::Text(r.into())),
                ),
                (
                    "good_pct",
                    good_pct.map_or(Found::Missing, |p| Found::Number(r3(p), "%")),
                ),
                (
                    "achieved_per_s",
                    Found::Number(r3(run.per_s(done as f64)), "/s"),
                ),
                ("p50_us", us(lat.map(|s| s.p50_ns))),
                ("p99_us", us(lat.map(|s| s.p99_ns))),
                ("max_us", us(lat.map(|s| s.max_ns))),
            ]);
            f.detail(
                w.good_pct_name(),
                good_pct.map_or(Found::Missing, Found::Percent),
            );
            f.detail(
                w.p99_name(),
                lat.map_or(Found::Missing, |s| {
                    Found::Number(r3(s.p99_ns as f64 / 1e6), "ms")
                }),
            );
        }
        f.detail_report_only("kinds", Found::Records(kinds));
        // A kind that died took its share of the measurement with it: the run did not
        // measure what it was asked to, and compare must not read the silence as a loss.
        if !died.is_empty() {
            f.failed = Some(format!("probe work died: {}", died.join(", ")));
        }

        // Per second, per kind; and the contention signals per second.
        let mut per_second = Vec::new();
        let mut signals = Vec::new();
        let steal = common::sys::cpu_ticks().is_some();
        let psi = PSI.map(|r| common::sys::pressure_us(r).is_some());
        let runq = sys::run_queue_wait_ns().is_some();
        let (mut t_prev, mut prev) = (0.0, vec![0u64; self.metrics.len()]);
        for s in &run.samples {
            let dt = s.t - t_prev;
            if dt <= 0.0 {
                continue;
            }
            let d = |m: MetricId| s.value(m).saturating_sub(prev[m.index()]);
            let t = Found::Number(r3(s.t), "s");
            for w in &self.works {
                let ids = self.slots[w.index()].expect("planned");
                let lost = if *w == Work::Net {
                    self.m_lost.map_or(0, d)
                } else {
                    0
                };
                let (done, good) = (d(ids.ops), d(ids.good));
                let lat = s.latency[ids.hist];
                let us = |v: Option<u64>| {
                    v.map_or(Found::Missing, |ns| {
                        Found::Number(r3(ns as f64 / 1e3), "us")
                    })
                };
                per_second.push(vec![
                    ("t", t.clone()),
                    ("kind", Found::Text(w.name().into())),
                    ("offered_per_s", Found::Number(self.rates[w.index()], "/s")),
                    ("achieved_per_s", Found::Number(r3(done as f64 / dt), "/s")),
                    (
                        "good_pct",
                        if done + lost > 0 {
                            Found::Number(r3(100.0 * good as f64 / (done + lost) as f64), "%")
                        } else {
                            Found::Missing
                        },
                    ),
                    ("lost", Found::Count(lost)),
                    ("p50_us", us(lat.map(|s| s.p50_ns))),
                    ("p99_us", us(lat.map(|s| s.p99_ns))),
                    ("max_us", us(lat.map(|s| s.max_ns))),
                ]);
            }
            let pct = |m: usize, of: f64, on: bool| {
                if on {
                    Found::Number(r3(100.0 * d(self.m_signals[m]) as f64 / 1e9 / of), "%")
                } else {
                    Found::Missing
                }
            };
            signals.push(vec![
                ("t", t),
                (
                    "steal_pct",
                    pct(S_STEAL, dt * self.online_cpus as f64, steal),
                ),
                ("psi_cpu_some_pct", pct(S_PSI, dt, psi[0])),
                ("psi_memory_some_pct", pct(S_PSI + 1, dt, psi[1])),
                ("psi_io_some_pct", pct(S_PSI + 2, dt, psi[2])),
                (
                    "runq_wait_ms",
                    if runq {
                        Found::Number(r3(d(self.m_signals[S_RUNQ]) as f64 / 1e6), "ms")
                    } else {
                        Found::Missing
                    },
                ),
            ]);
            t_prev = s.t;
            prev.clone_from(&s.values);
        }
        f.detail_report_only("per_second", Found::Records(per_second));
        f.detail_report_only("signals", Found::Records(signals));
        f.details
            .push(Finding::new("psi", Found::Flag(psi.iter().any(|p| *p))).report_only());
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_name() {
        for w in WORKS {
            assert_eq!(Work::parse(w.name()), Some(w));
        }
        assert_eq!(Work::parse("gpu"), None);
    }

    #[test]
    fn the_cpu_unit_is_deterministic() {
        assert_eq!(cpu_unit(7, 1000), cpu_unit(7, 1000));
        assert_ne!(cpu_unit(7, 1000), cpu_unit(8, 1000));
    }
}
