//! `forkbomb`: the isolation paper's fork test. It "continuously creates processes in an
//! attempt to overwhelm the system", with a cap that holds and a teardown that finishes.
//!
//! Modes:
//! - `classic`: every process keeps forking and so do its children, three generations deep
//!   below each worker ([`TREE_DEPTH`]): growth is exponential until the cap (or the
//!   process table) is full, then every process keeps trying.
//! - `churn`: each worker forks children that exit at once, as fast as it can: the
//!   fork/exit rate is the load.
//! - `hold`: grow like `classic` up to the cap, then sleep: a full process table that
//!   costs no CPU.
//!
//! The cap (`--max-procs`) counts every process of the run: the supervisor, the process
//! group's leader, the workers and everything they fork. It holds as root, where
//! RLIMIT_NPROC binds nothing: a run-wide counter in shared memory is raised with
//! compare-and-swap *before* each fork and lowered only once a child has been reaped, so the
//! number of live processes never exceeds it. Where a pids cgroup of the run's own can be
//! made under this process's (Linux), it is set to the same cap as a second line.
//!
//! classic and hold fork through a gate ([`gate`]): two forks in flight per CPU over the
//! whole bomb, the rest asleep, so that teardown kills sleeping processes, not thousands
//! of half-done forks.

pub mod gate;
mod sys;

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use serde::Serialize;

use common::cgroup::RunCgroup;
use common::{
    CommonArgs, Finding, Findings, Found, Host, MetricId, Metrics, RunData, Stressor, Worker,
};
use gate::Gate;

/// How the bomb behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// every process keeps forking, children too (three generations deep), until the table
    /// or the cap is full; then they all keep trying
    Classic,
    /// fork children that exit at once, as fast as possible
    Churn,
    /// fill up to the cap, then sleep
    Hold,
}

/// Fork processes until the guest's process table (or the cap) is full.
#[derive(Debug, Parser)]
#[command(name = "forkbomb", version, after_long_help = concat!("
Examples:
  forkbomb                          the paper's fork bomb for 60s, capped by what the guest allows
  forkbomb --max-procs 500 -t 30s   at most 500 live processes of this run, for 30 seconds
  forkbomb --mode churn -t 10 --json > fork.json
                                    forks/s: children that exit at once
  forkbomb --mode hold --max-procs 10000 -t 1m
                                    fill to 10,000 processes, then sleep
  forkbomb --dry-run                show the plan: the cap and where it comes from

The cap:
  --max-procs counts every process of the run (supervisor, group leader, workers, and all
  they fork). It holds also as root: a shared counter is raised before each fork and
  lowered after a child is reaped; on Linux a pids cgroup of the run's own, set to the
  same number, backs it up when one can be made. Default: the tightest of the pids cgroup
  limit, pid_max and threads-max, less what the rest of the guest already holds of it
  (kernel threads count against threads-max) and a margin (32, or a quarter of a tiny
  limit) for it. A --max-procs above that is cut to it, and the plan says so.
", common::help_footer!()), after_help = "See --help for examples, the cap, units, safety and exit codes.")]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    /// How the bomb behaves
    #[arg(short, long, value_enum, default_value_t = Mode::Classic, help_heading = "Stress")]
    pub mode: Mode,

    /// Most live processes of this run, itself included [default: what the guest allows]
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(4..=(1u64 << 32)),
          help_heading = "Stress")]
    pub max_procs: Option<u64>,
}

/// Processes of the run that are not forked by the bomb: the supervisor and the leader of
/// the process group.
pub const OVERHEAD: u64 = 2;

/// What the default cap leaves to the rest of the guest.
pub fn margin(limit: u64) -> u64 {
    32.min(limit / 4)
}

/// The plan.
#[derive(Debug, Serialize)]
pub struct ForkBomb {
    #[serde(serialize_with = "common::params::as_value_name")]
    pub mode: Mode,
    #[serde(skip)]
    pub workers: usize,
    /// Most live processes of the run, every one counted.
    pub max_procs: u64,
    /// Where `max_procs` comes from.
    #[serde(rename = "max_procs_source")]
    pub source: String,
    /// Set when a --max-procs above what the host allows was cut.
    #[serde(rename = "max_procs_note", skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Processes the workers may fork between them (the shared counter's ceiling): the cap
    /// less the supervisor, the group leader and the workers.
    #[serde(rename = "fork_budget")]
    pub budget: u64,
    /// Forks the gate lets through at once, two per CPU (classic and hold; churn forks
    /// without the gate).
    #[serde(
        rename = "forks_in_flight_max",
        skip_serializing_if = "Option::is_none"
    )]
    pub gate_width: Option<usize>,
    #[serde(rename = "host_processes_max")]
    pub host_max: Option<u64>,
    /// What the host leaves this run ([`common::Limits::processes_room`]).
    #[serde(rename = "host_processes_room")]
    pub host_room: Option<u64>,
    /// The run's own pids cgroup, once `prepare` made it.
    #[serde(skip)]
    cgroup: Option<RunCgroup>,
    /// The run's own cgroup in a separate v1 `freezer` hierarchy, if there is one: teardown
    /// freezes the bomb so that nothing forks while it is being killed.
    #[serde(skip)]
    freezer: Option<RunCgroup>,
    /// The run's own cgroup in a v1 `cpuacct` hierarchy, if there is one: the CPU time of
    /// every bomb process (v2's pids cgroup counts it itself). See [`ForkBomb::cpu_cgroup`].
    #[serde(skip)]
    cpuacct: Option<RunCgroup>,
    #[serde(skip)]
    cgroup_note: String,
    #[serde(skip)]
    counters: Counters,
}

impl ForkBomb {
    /// The cgroup that counts the CPU time of every bomb process, where there is one: v1's
    /// `cpuacct`, or v2's pids cgroup itself. classic and hold only: their processes ignore
    /// SIGCHLD, so their children are removed unwaited and never reach the supervisor's
    /// rusage; churn's workers wait for theirs, and rusage counts them all.
    fn cpu_cgroup(&self) -> Option<&RunCgroup> {
        if self.mode == Mode::Churn {
            return None;
        }
        self.cpuacct.as_ref().or(self
            .cgroup
            .as_ref()
            .filter(|c| c.version() == common::sys::CgroupVersion::V2))
    }
}

/// The niceness of classic and hold processes (the supervisor stays at its own).
const BOMB_NICE: libc::c_int = 19;

/// How long a leaf of the tree ([`TREE_DEPTH`]) sleeps at most while the bomb is not yet
/// full (it is woken when it is): it then looks at its parent, where the kernel does not
/// kill it with its parent. Thousands of leaves waking once a second each would keep a slow
/// guest's bomb from reaching its cap within a short run.
const LEAF_NAP: Duration = Duration::from_secs(10);

/// Children a churn worker has in flight at most.
const CHURN_BATCH: usize = 16;

common::metrics! {
    /// The metrics, each with its handle.
    struct Counters {
        attempts: total("forks_attempted", Count),
        failures: total("fork_failures", Count),
        capped: total("cap_waits", Count),
        live: gauge("live_procs", Count),
    }
}

/// Run-wide shared words.
/// Processes forked by the bomb, alive or reserved (raised before the fork).
const G_FORKED: usize = 0;
/// The highest G_LIVE reached.
const G_PEAK: usize = 1;
/// CLOCK_MONOTONIC ns when G_PEAK was last raised.
const G_PEAK_NS: usize = 2;
/// CLOCK_MONOTONIC ns when the budget was first full.
const G_FULL_NS: usize = 3;
/// Processes forked by the bomb and not yet reaped: raised after a fork succeeded (what
/// the peak is measured on; G_FORKED also holds reservations of forks in flight).
const G_LIVE: usize = 4;
/// 1 once the bomb can fork no more: its cap is full, or the host refused a fork. The
/// tree's leaves sleep on it (a futex: [`gate::futex_word`]) until then.
const G_SATURATED: usize = 5;

impl common::Command for Cli {
    type Stressor = ForkBomb;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn plan(&self, host: &Host) -> common::Result<ForkBomb> {
        let host_max = host.limits.processes_max;
        // What the host leaves this run: the tightest limit, less what the rest of the
        // guest already uses of it (kernel threads count against threads-max), less the
        // margin. Without the "in use", a bomb hits the kernel's limit before its own cap,
        // and the guest is left with no process to spare at all.
        let tight = host.limits.tightest();
        let allowed = tight.map(|t| t.room().saturating_sub(margin(t.max)));
        let (max_procs, source, note) = match (self.max_procs, allowed, tight) {
            (Some(n), Some(a), Some(t)) if n > a => (
                a,
                "--max-procs, cut to what the host allows".to_string(),
                Some(format!(
                    "--max-procs {n} cut to {a}: the host allows {} processes ({}), {} are in use elsewhere and {} are left to the rest of it",
                    t.max,
                    t.name,
                    t.others,
                    margin(t.max)
                )),
            ),
            (Some(n), _, _) => (n, "--max-procs".to_string(), None),
            (None, Some(a), Some(t)) => (
                a,
                format!(
                    "host: {} {}, {} in use elsewhere, minus {}",
                    t.name,
                    t.max,
                    t.others,
                    margin(t.max)
                ),
                None,
            ),
            (None, _, _) => (1 << 22, "no host limit known: 4194304, Linux's highest pid_max".to_string(), None),
        };
        let room = max_procs.saturating_sub(OVERHEAD + 1) as usize;
        let workers = match self.common.workers {
            Some(w) if w > room => {
                return Err(common::Error::usage(format!(
                    "{w} workers do not fit in {max_procs} processes: the cap counts the supervisor, the group leader and every worker; give --max-procs at least {} or fewer workers",
                    w as u64 + OVERHEAD + 1
                )))
            }
            Some(w) => w,
            None => host.cpus.usable.min(room).max(1),
        };
        if room == 0 {
            return Err(common::Error::usage(format!(
                "--max-procs {max_procs} leaves no room to fork: the host allows too few processes"
            )));
        }
        if let Some(n) = &note {
            if !self.common.quiet && !self.common.dry_run {
                eprintln!("forkbomb: note: {n}");
            }
        }
        Ok(ForkBomb {
            counters: Counters::default(),
            mode: self.mode,
            workers,
            max_procs,
            source,
            note,
            budget: max_procs - OVERHEAD - workers as u64,
            gate_width: (self.mode != Mode::Churn).then(|| 2 * host.cpus.usable.max(1)),
            host_max,
            host_room: host.limits.processes_room,
            cgroup: None,
            freezer: None,
            cpuacct: None,
            cgroup_note: String::new(),
        })
    }
}

/// Where a process stands in the bomb.
struct Proc {
    /// A worker (started by the supervisor) rather than one of its descendants.
    worker: bool,
    /// Children not yet reaped.
    children: u64,
    /// The parent a descendant watches.
    parent: Pid,
    /// This process's id (the gate's holder tag).
    me: u32,
    /// Forks between its worker and this process (the worker: 0).
    depth: u32,
}

/// How deep the bomb's tree grows below each worker: processes at this depth do not fork.
///
/// Why: a forked process inherits its parent's memory map, and each anonymous mapping
/// keeps a link to the same mapping of every ancestor (the kernel's `anon_vma` chain),
/// all of which its exit has to undo under a lock the whole tree shares. A bomb in which
/// every process forks is a binary tree about log2(N) deep (12 for 3,000 processes).
/// In guests under software emulation (aarch64, 2 vCPUs), killing 3,000 sleeping
/// processes took 3.53/4.13/4.03 s as such a tree, 2.74/2.83/2.78 s as a tree three deep
/// (15 children each), and 2.31/3.75/3.59 s as a flat set (rounds in one boot).
///
/// It fills no slower (the same guests: 4.9-8.4 s against 5.7-8.6 s): the gate lets only
/// two forks per CPU through at once, and the processes above the last level soon
/// outnumber that.
const TREE_DEPTH: u32 = 3;

impl ForkBomb {
    fn forked<'w>(&self, w: &'w Worker) -> &'w AtomicU64 {
        w.global(G_FORKED)
    }

    /// Takes one place under the cap; false when the cap is full.
    #[inline]
    fn reserve(&self, w: &Worker) -> bool {
        let g = self.forked(w);
        let budget = self.budget;
        let mut cur = g.load(Relaxed);
        loop {
            if cur >= budget {
                return false;
            }
            match g.compare_exchange_weak(cur, cur + 1, AcqRel, Relaxed) {
                Ok(_) => return true,
                Err(v) => cur = v,
            }
        }
    }

    /// The futex word the leaves sleep on: [`G_SATURATED`].
    fn saturated<'w>(&self, w: &'w Worker) -> &'w AtomicU32 {
        gate::futex_word(w.global(G_SATURATED))
    }

    /// The bomb can fork no more: wake the leaves, once.
    fn saturate(&self, w: &Worker) {
        let word = self.saturated(w);
        if word.load(Relaxed) == 0 && word.swap(1, Release) == 0 {
            sys::wake_waiters(word, u32::MAX);
        }
    }

    /// Is there a place under the cap (without taking it)?
    #[inline]
    fn room(&self, w: &Worker) -> bool {
        self.forked(w).load(Relaxed) < self.budget
    }

    /// Gives back places of forks that failed.
    #[inline]
    fn release(&self, w: &Worker, n: u64) {
        if n > 0 {
            self.forked(w).fetch_sub(n, AcqRel);
        }
    }

    /// Gives back the places of `n` children reaped.
    #[inline]
    fn reaped(&self, w: &Worker, n: u64) {
        if n > 0 {
            w.global(G_LIVE).fetch_sub(n, Relaxed);
            self.forked(w).fetch_sub(n, AcqRel);
        }
    }

    /// After a successful fork: the live count, the peak and the gauge.
    #[inline]
    fn note_fork(&self, w: &Worker) {
        w.add(MetricId::OPS, 1);
        let n = w.global(G_LIVE).fetch_add(1, Relaxed) + 1;
        let peak = w.global(G_PEAK);
        if n > peak.load(Relaxed) {
            // The time first: a process preempted between the raise and the clock would
            // otherwise stamp the peak late.
            let t = common::time::mono_ns();
            if peak.fetch_max(n, Relaxed) >= n {
                return self.publish(w);
            }
            w.global(G_PEAK_NS).fetch_max(t, Relaxed);
            if n >= self.budget {
                let _ = w.global(G_FULL_NS).compare_exchange(0, t, Relaxed, Relaxed);
                self.saturate(w);
            }
        }
        self.publish(w);
    }

    /// The run-wide live count, into the gauge of slot 0 only (the supervisor sums slots).
    #[inline]
    fn publish(&self, w: &Worker) {
        if w.index == 0 {
            let live = OVERHEAD + self.workers as u64 + w.global(G_LIVE).load(Relaxed);
            w.set(self.counters.live, live);
        }
    }

    /// Reaps ended children without waiting; frees their places under the cap.
    fn reap(&self, w: &Worker, p: &mut Proc) {
        let mut n = 0;
        while p.children > 0 {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => {
                    p.children -= 1;
                    n += 1;
                }
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    // No child left to wait for (ECHILD): what we counted is gone.
                    n += p.children;
                    p.children = 0;
                }
            }
        }
        self.reaped(w, n);
        if n > 0 {
            self.publish(w);
        }
    }

    /// True while this process should go on: the run's stop flag, and (for descendants, as
    /// a check of our own that does not wait for `running()`'s every-64th call) the parent.
    #[inline]
    fn alive(&self, w: &mut Worker, p: &Proc) -> bool {
        w.running() && (p.worker || nix::unistd::getppid() == p.parent)
    }

    /// classic and hold: fork, and let every child do the same.
    fn bomb(&self, w: &mut Worker, hold: bool) {
        let gate = Gate::on(w.words());
        let mut p = Proc {
            worker: true,
            children: 0,
            parent: nix::unistd::getppid(),
            me: nix::unistd::getpid().as_raw() as u32,
            depth: 0,
        };
        let mut spins = 0u32;
        while w.running() {
            if p.depth >= TREE_DEPTH {
                // A leaf sleeps while the others fill the bomb; then it holds (hold) or
                // keeps trying, a CPU busy, as every process does (classic).
                let full = self.saturated(w);
                if full.load(Acquire) == 0 {
                    sys::wait_while(full, 0, LEAF_NAP);
                    if !self.alive(w, &p) {
                        break;
                    }
                    continue;
                }
                if hold {
                    break;
                }
                if !self.room(w) {
                    w.add(self.counters.capped, 1);
                }
                std::thread::yield_now();
                continue;
            }
            // The gate first, then a place under the cap: a process asleep at the gate
            // holds no place, so the cap fills with processes, not with waiters.
            let pass = if self.room(w) {
                let entered = gate.enter(p.me, || {
                    self.reap(w, &mut p);
                    self.alive(w, &p)
                });
                let Some(pass) = entered else { break };
                Some(pass)
            } else {
                None
            };
            if !self.reserve(w) {
                if let Some(pass) = pass {
                    gate.leave(pass);
                }
                w.add(self.counters.capped, 1);
                if hold {
                    break;
                }
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(64) {
                    self.reap(w, &mut p);
                }
                std::thread::yield_now();
                continue;
            };
            w.add(self.counters.attempts, 1);
            let forked = w.fork();
            if !matches!(forked, Ok(ForkResult::Child)) {
                if let Some(pass) = pass {
                    gate.leave(pass);
                }
            }
            match forked {
                Ok(ForkResult::Child) => {
                    p = Proc {
                        worker: false,
                        children: 0,
                        parent: nix::unistd::getppid(),
                        me: nix::unistd::getpid().as_raw() as u32,
                        depth: p.depth + 1,
                    };
                    spins = 0;
                }
                Ok(ForkResult::Parent { .. }) => {
                    p.children += 1;
                    self.note_fork(w);
                }
                Err(e) => {
                    self.release(w, 1);
                    w.add(self.counters.failures, 1);
                    w.errno(e);
                    if matches!(e, Errno::EAGAIN | Errno::ENOMEM) {
                        self.saturate(w);
                        if hold {
                            // The table (or memory) is full before the cap: that is the hold.
                            break;
                        }
                    }
                    self.reap(w, &mut p);
                    std::thread::yield_now();
                }
            }
        }
        if hold {
            self.hold(w, &mut p);
        }
    }

    /// Sleeps while the run lasts. Workers wake often enough to return within the grace;
    /// descendants wake once a second (thousands of them) and are killed by teardown.
    fn hold(&self, w: &mut Worker, p: &mut Proc) {
        if p.worker {
            while w.running() {
                w.sleep(Duration::from_millis(200));
                self.reap(w, p);
                self.publish(w);
            }
        } else {
            while self.alive(w, p) {
                std::thread::sleep(Duration::from_secs(1));
                self.reap(w, p);
            }
        }
    }

    /// churn: fork a few children that exit at once, reap them, again. A few in flight
    /// (not one) let a child exit on one CPU while its parent forks the next on the other,
    /// and save a context switch per fork.
    fn churn(&self, w: &mut Worker) {
        let mut kids = [Pid::from_raw(0); CHURN_BATCH];
        while w.running() {
            let mut k = 0;
            while k < CHURN_BATCH {
                if !self.reserve(w) {
                    w.add(self.counters.capped, 1);
                    break;
                }
                w.add(self.counters.attempts, 1);
                // SAFETY: the child calls only _exit; the worker is single-threaded.
                match unsafe { nix::unistd::fork() } {
                    Ok(ForkResult::Child) => {
                        // SAFETY: leave at once, touching nothing.
                        unsafe { libc::_exit(0) }
                    }
                    Ok(ForkResult::Parent { child }) => {
                        kids[k] = child;
                        k += 1;
                        self.note_fork(w);
                    }
                    Err(e) => {
                        self.release(w, 1);
                        w.add(self.counters.failures, 1);
                        w.errno(e);
                        break;
                    }
                }
            }
            for &child in &kids[..k] {
                while let Err(Errno::EINTR) = waitpid(child, None) {}
            }
            self.reaped(w, k as u64);
            if k == 0 {
                std::thread::yield_now();
            }
        }
        self.publish(w);
    }
}

impl Stressor for ForkBomb {
    const NAME: &'static str = "forkbomb";

    fn metrics(&self) -> &Metrics {
        &self.counters.list
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn shared_words(&self) -> usize {
        self.gate_width.map_or(0, Gate::words)
    }

    fn prepare(&mut self, _host: &Host) -> common::Result<()> {
        // cgroup v2 kills a whole cgroup through the pids cgroup itself (cgroup.kill); v1
        // needs a freezer cgroup of its own.
        if let Some((_, common::sys::CgroupVersion::V1)) = common::sys::cgroup_dir("freezer") {
            self.freezer = RunCgroup::create("freezer", CGROUP_PREFIX).ok();
        }
        if self.mode != Mode::Churn {
            if let Some((_, common::sys::CgroupVersion::V1)) = common::sys::cgroup_dir("cpuacct") {
                // Not where cpuacct shares its hierarchy with cpu ("cpu,cpuacct"): a cgroup
                // there is a scheduling group too, and the bomb would compete for CPU as one
                // group instead of as thousands of processes. Dropped, it is removed again.
                self.cpuacct = RunCgroup::create("cpuacct", CGROUP_PREFIX)
                    .ok()
                    .filter(|cg| !cg.dir().join("cpu.shares").exists());
            }
        }
        let limit = self.max_procs - OVERHEAD;
        let made = RunCgroup::create("pids", CGROUP_PREFIX)
            .and_then(|cg| cg.limit_pids(limit).map(|()| cg));
        self.cgroup_note = match made {
            Ok(cg) => {
                let note = format!("{} (pids.max {limit})", cg.dir().display());
                self.cgroup = Some(cg);
                note
            }
            Err(why) => format!("none ({why}): the shared counter alone holds the cap"),
        };
        Ok(())
    }

    fn work(&self, w: &mut Worker) -> common::Result<()> {
        for cg in self
            .cgroup
            .iter()
            .chain(self.freezer.iter())
            .chain(self.cpuacct.iter())
        {
            if let Err(e) = std::fs::write(cg.procs_file(), "0") {
                if let Some(n) = e.raw_os_error() {
                    w.errno(Errno::from_raw(n));
                }
            }
        }
        self.publish(w);
        if self.mode != Mode::Churn {
            // Thousands of runnable bomb processes at the supervisor's priority would starve
            // it: the deadline and the teardown would slip by seconds. At nice 19 they still
            // take every CPU cycle nobody else wants, and the process table stays full.
            // Teardown is faster too, and SCHED_IDLE is no better (measured in
            // docs/notes/forkbomb-teardown.md).
            common::sys::set_nice(BOMB_NICE);
            // No zombies: a child of the bomb that dies while its parent lives is removed
            // at once (SIGCHLD ignored; the children inherit it). At teardown, thousands die
            // at once, and a tree's zombies otherwise wait for their own parents to die,
            // are handed to the supervisor and announced to it, each, which slows the
            // teardown. The cost: a parent learns that its children died only once all of
            // them did (waitpid's ECHILD), so a place under the cap freed by one child
            // killed from outside (the OOM killer) comes back when its siblings are gone
            // too.
            //
            // The bomb stays a tree: made flat (clone's CLONE_PARENT) it tore down no
            // faster, nor with the workers leading sessions of their own (the runs are in
            // docs/notes/forkbomb-teardown.md).
            // SAFETY: SIG_IGN installs no handler code.
            let _ = unsafe {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGCHLD,
                    nix::sys::signal::SigHandler::SigIgn,
                )
            };
        }
        match self.mode {
            Mode::Classic => self.bomb(w, false),
            Mode::Hold => self.bomb(w, true),
            Mode::Churn => self.churn(w),
        }
        Ok(())
    }

    /// No grace: every count is in shared memory already, and thousands of processes
    /// returning on their own take longer than killing them (see [`gate`]).
    fn grace(&self) -> Duration {
        Duration::ZERO
    }

    fn cpu_s(&self) -> Option<f64> {
        self.cpu_cgroup().and_then(RunCgroup::cpu_s)
    }

    fn kill_all(&self) -> Option<&'static str> {
        self.freezer
            .as_ref()
            .or(self.cgroup.as_ref())
            .and_then(RunCgroup::kill_all)
    }

    fn finish(&self, run: &RunData) -> Findings {
        let base = OVERHEAD + self.workers as u64;
        let ops = run.totals.first().copied().unwrap_or(0);
        let g = |i: usize| run.globals.get(i).copied().unwrap_or(0);
        let sampled = run.peak(self.counters.live);
        // Forks between two samples: the bomb's own peak counter is exact.
        let peak = sampled.max(base + g(G_PEAK));
        let mut f = Findings::default();
        f.peaks
            .push(Finding::new("live_procs", Found::Count(peak)).report_only());
        // The same as ops, under the name scripts look for.
        f.totals
            .push(Finding::new("forks_succeeded", Found::Count(ops)).report_only());
        f.detail("mode", Found::Text(common::params::value_name(&self.mode)))
            .detail("max_procs", Found::Count(self.max_procs));
        if self.mode != Mode::Churn {
            f.detail("nice", Found::Count(BOMB_NICE as u64));
        }
        f.detail_report_only("peak_live_procs", Found::Count(peak))
            .detail(
                "time_to_peak_s",
                Found::seconds(run.since_start(g(G_PEAK_NS))),
            )
            .detail(
                "time_to_full_s",
                Found::seconds(run.since_start(g(G_FULL_NS))),
            )
            .detail("cap_reached", Found::Flag(peak >= self.max_procs))
            .detail("cgroup", Found::Text(self.cgroup_note.clone()));
        if let Some(cg) = &self.cgroup {
            // Forks the pids cgroup refused (it is still there: cleanup comes after).
            f.detail(
                "cgroup_limit_hits",
                Found::count(cg.event("pids.events", "max")),
            );
        }
        match (self.mode, self.cpu_cgroup().and_then(RunCgroup::cpu_s)) {
            (Mode::Churn, _) => {}
            (_, Some(_)) => {
                f.detail_report_only(
                    "cpu_counted",
                    Found::Text("every process of the bomb (its cgroup)".into()),
                );
            }
            (_, None) => {
                f.detail(
                    "cpu_counted",
                    Found::Text(
                        "partly: the workers and the orphans reaped; no cgroup counts the processes the bomb removes itself"
                            .into(),
                    ),
                );
            }
        }
        f.detail("orphans_reaped", Found::Count(run.orphans_reaped))
            .detail_report_only(
                "teardown_ms",
                Found::Number((run.teardown_s * 1e4).round() / 10.0, "ms"),
            );
        f
    }

    fn cleanup(&mut self) {
        // Dropping them removes them (after killing anything left inside).
        self.freezer = None;
        self.cpuacct = None;
        self.cgroup = None;
    }
}

/// The prefix of the run's own cgroups: `misbehave-forkbomb-<supervisor pid>`.
const CGROUP_PREFIX: &str = "misbehave-forkbomb-";

#[cfg(test)]
mod tests {
    use super::*;
    use common::Command;

    fn host(pids: Option<u64>, pid_max: u64, threads: u64) -> Host {
        let mut h = common::host::probe();
        h.limits.pids_cgroup_max = pids;
        h.limits.pid_max = Some(pid_max);
        h.limits.threads_max = Some(threads);
        h.limits.processes_max = [pids, Some(pid_max), Some(threads)]
            .into_iter()
            .flatten()
            .min();
        // Nothing else in use: only this process.
        h.limits.pids_cgroup_in_use = pids.map(|_| 1);
        h.limits.threads_in_use = Some(1);
        h.limits.own_threads = 1;
        h.limits.rlimit_nproc = None;
        h.cpus.usable = 2;
        h
    }

    fn plan(args: &[&str], h: &Host) -> common::Result<ForkBomb> {
        let mut argv = vec!["forkbomb", "-q"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().plan(h)
    }

    #[test]
    fn the_default_cap_is_the_tightest_limit_minus_a_margin() {
        let p = plan(&[], &host(None, 32768, 192730)).unwrap();
        assert_eq!(p.max_procs, 32768 - 32);
        assert!(p.source.contains("pid_max"), "{}", p.source);
        let p = plan(&[], &host(Some(200), 32768, 192730)).unwrap();
        assert_eq!((p.max_procs, p.budget), (168, 164));
        assert!(p.source.contains("pids cgroup"), "{}", p.source);
        // A tiny limit keeps three quarters.
        assert_eq!(
            plan(&[], &host(Some(40), 32768, 192730)).unwrap().max_procs,
            30
        );
    }

    #[test]
    fn a_cap_above_the_host_is_cut_and_said_so() {
        let p = plan(&["-n", "50000"], &host(None, 32768, 4096)).unwrap();
        assert_eq!(p.max_procs, 4096 - 32);
        assert!(
            p.note.as_deref().unwrap().contains("cut to 4064"),
            "{:?}",
            p.note
        );
        assert!(
            p.note.as_deref().unwrap().contains("threads-max"),
            "{:?}",
            p.note
        );
        let p = plan(&["-n", "100"], &host(None, 32768, 4096)).unwrap();
        assert_eq!((p.max_procs, p.note.is_none()), (100, true));
    }

    #[test]
    fn what_the_rest_of_the_guest_uses_is_not_the_bombs() {
        // 101 threads at start (kernel threads count), this process one of them: 100 are
        // someone else's, and the margin comes on top.
        let mut h = host(None, 32768, 4096);
        h.limits.threads_in_use = Some(101);
        let p = plan(&[], &h).unwrap();
        assert_eq!(p.max_procs, 4096 - 100 - 32);
        assert!(
            p.source.contains("threads-max 4096, 100 in use"),
            "{}",
            p.source
        );
        let p = plan(&["-n", "4000"], &h).unwrap();
        assert_eq!(p.max_procs, 4096 - 100 - 32);
        let note = p.note.unwrap();
        assert!(
            note.contains("cut to 3964") && note.contains("100 are in use"),
            "{note}"
        );
        // A pids cgroup that others fill binds before a larger, emptier limit.
        let mut h = host(Some(1000), 32768, 4096);
        h.limits.pids_cgroup_in_use = Some(901);
        h.limits.threads_in_use = Some(101);
        let p = plan(&[], &h).unwrap();
        assert_eq!(p.max_procs, 1000 - 900 - 32);
        assert!(p.source.contains("pids cgroup"), "{}", p.source);
    }

    #[test]
    fn workers_must_fit_under_the_cap() {
        let h = host(None, 32768, 192730);
        assert_eq!(plan(&["-n", "10", "-w", "7"], &h).unwrap().budget, 1);
        let e = plan(&["-n", "10", "-w", "8"], &h).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        // The default worker count shrinks to fit.
        assert_eq!(plan(&["-n", "4"], &h).unwrap().workers, 1);
    }
}
