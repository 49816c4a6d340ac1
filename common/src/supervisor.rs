//! The supervisor: forks the workers, watches the clock and the signals, samples the
//! counters, and tears everything down.
//!
//! Shape of a run:
//! 1. The supervisor sets its own OOM score to -1000 (where permitted), becomes the
//!    subreaper of its descendants (Linux), installs its signal pipe, and maps the shared
//!    counters. Everything it needs later is allocated here, so it keeps working while its
//!    workers exhaust memory or the process table.
//! 2. It forks a *sentinel*: a sleeping process that leads the run's process group. The
//!    group then outlives any worker (a worker that is OOM-killed and respawned rejoins it)
//!    and its id cannot be reused by a stranger while the run lasts, so `killpg` never hits
//!    anyone else. Workers join the group; their own children inherit it.
//! 3. Workers get OOM score 1000 and PDEATHSIG=SIGKILL (Linux), and also stop when their
//!    parent changes (everywhere): killing the supervisor, even with SIGKILL, ends them.
//! 4. The loop sleeps in `poll` on the signal pipe until the next one-second tick, a signal,
//!    or a worker's death; it reaps, respawns where the stressor asks, samples each second.
//! 5. Teardown (deadline, signal, or nothing left to run): raise the stop flag, give the
//!    workers a short grace to return, then SIGKILL the group and reap, again and again,
//!    until the group is empty and no child is left. Its time goes into the report.
//!
//! Only the supervisor holds its stdout and stderr: workers (and the sentinel) write to
//! /dev/null and to a pipe the supervisor copies to its stderr ([`WorkerOutput`]), so a
//! reader of the report (`cpubomb --json | jq`) sees its end when the supervisor ends, even
//! if a worker outlives it (frozen, or stuck in the kernel).

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, setpgid, ForkResult, Pid};

use crate::cli::CommonArgs;
use crate::data::{EndStatus, Kind, Outcome, RunData, Sample, SlotEnd, WorkerCounts, WorkerEnd};
use crate::error::{Context, Error, Result};
use crate::hist::Histogram;
use crate::shm::{Shared, ERRNOS};
use crate::signals::Signals;
use crate::stressor::{ExitAction, Stressor};
use crate::worker::Worker;
use crate::{sys, time};

/// How often teardown repeats its process-group kill while processes of the run remain
/// (one kill reaches every member, also those forked while it runs; the repeat is a
/// safety net, and each one walks the whole group, so not in a tight loop).
const REKILL: Duration = Duration::from_millis(250);
/// The supervisor's nice value where it may raise its priority (root): thousands of busy
/// workers (a fork bomb's full process table) must not starve the one process that keeps
/// the deadline. It sleeps nearly all the time, so it takes little from anyone.
const SUPERVISOR_NICE: i32 = -15;
/// After this long, teardown gives up and reports what is left.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Where the supervisor reports progress once a second (the terminal's live status line
/// implements it; tests and quiet runs pass one that does nothing).
pub trait Progress {
    /// One per-second sample: time since the start, the deadline, live workers, and every
    /// metric's value.
    fn tick(&mut self, now: Duration, deadline: Option<Duration>, live: usize, values: &[u64]);
    /// The run is over: remove whatever was drawn.
    fn clear(&mut self);
}

/// A [`Progress`] that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn tick(&mut self, _: Duration, _: Option<Duration>, _: usize, _: &[u64]) {}
    fn clear(&mut self) {}
}

/// Where the output of the run's other processes goes: stdout to /dev/null (only the
/// supervisor writes a report), stderr into a pipe that the supervisor reads and copies to
/// its own stderr (a worker's error line). A process that inherited the supervisor's
/// stdout or stderr would hold a pipe to the report's reader open for as long as it lived.
struct WorkerOutput {
    read: OwnedFd,
    write: OwnedFd,
    null: OwnedFd,
}

impl WorkerOutput {
    fn new() -> Result<Self> {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
        let (read, write) = nix::unistd::pipe().context("making the workers' stderr pipe")?;
        // The supervisor never waits to read; a worker may wait to write (the supervisor
        // reads at least once a second), which beats losing its error line.
        fcntl(read.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .context("making the workers' stderr pipe")?;
        for fd in [&read, &write] {
            let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .context("opening /dev/null")?;
        Ok(Self {
            read,
            write,
            null: null.into(),
        })
    }

    /// In a freshly forked process of the run: stdout to /dev/null, stderr into the pipe.
    fn redirect_child(&self) {
        let _ = nix::unistd::dup2(self.null.as_raw_fd(), libc::STDOUT_FILENO);
        let _ = nix::unistd::dup2(self.write.as_raw_fd(), libc::STDERR_FILENO);
        let _ = nix::unistd::close(self.read.as_raw_fd());
    }

    /// Copies what the workers wrote so far to the supervisor's stderr, through a buffer on
    /// the stack (no allocation while memory may be exhausted).
    fn forward(&self) {
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(self.read.as_raw_fd(), &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }
}

struct Run<'a, S: Stressor> {
    stressor: &'a S,
    seed: u64,
    shared: &'a Shared,
    signals: &'a Signals,
    output: &'a WorkerOutput,
    me: Pid,
    pgid: Pid,
    sentinel: Pid,
    start: Instant,
    start_ns: u64,
    by_pid: HashMap<Pid, usize>,
    generation: Vec<u32>,
    /// Per slot: how its worker ended, and whether the OOM killer took it, if it ended
    /// before the stop (cleared when the slot is respawned).
    early_ends: Vec<Option<(EndStatus, bool)>>,
    counts: WorkerCounts,
    tearing_down: bool,
    end_run: Option<String>,
    oom_seen: Option<u64>,
    orphans: u64,
    /// The nice value the run was started with: workers go back to it.
    worker_nice: i32,
    teardown_method: String,
}

/// Runs the stressor's workers under supervision until the deadline, a stop signal, or
/// nothing is left to run.
pub fn supervise<S: Stressor>(
    s: &S,
    common: &CommonArgs,
    progress: &mut dyn Progress,
) -> Result<RunData> {
    let workers = s.workers();
    let metrics = s.metrics();
    let hists = s.latencies().len();
    assert!(metrics.len() <= crate::shm::MAX_METRICS && metrics[0].name == "ops");
    assert!(hists <= crate::shm::MAX_HISTOGRAMS);
    check_single_threaded()?;

    sys::set_oom_score_adj(-1000);
    sys::become_subreaper();
    let worker_nice = sys::nice();
    sys::set_nice(SUPERVISOR_NICE);
    let shared = Shared::new(workers, hists, s.shared_words())?;
    let signals = Signals::install()?;
    let output = WorkerOutput::new()?;
    let me = getpid();
    let deadline = common.duration.as_duration();
    // Samples for the whole run, reserved now (a day's worth at most; then it grows).
    let expect = deadline
        .map_or(3600, |d| d.as_secs() as usize + 2)
        .min(86_400);
    let mut samples: Vec<Sample> = Vec::with_capacity(expect);
    let mut peaks = vec![0u64; metrics.len()];
    // Latency: the merged histograms as of the last second, now, and one second's worth.
    let mut lat_prev: Vec<Histogram> = (0..hists).map(|_| Histogram::new()).collect();
    let mut lat_now: Vec<Histogram> = (0..hists).map(|_| Histogram::new()).collect();
    let mut lat_second = Histogram::new();
    let ticks0 = sys::cpu_ticks();
    let seed = common
        .seed
        .unwrap_or_else(|| time::mono_ns() ^ u64::from(std::process::id()));

    let sentinel = spawn_sentinel(&signals, &output, me)?;
    let started_at = SystemTime::now();
    let start_ns = time::mono_ns();
    shared.header().start_ns.store(start_ns, Relaxed);
    let mut run = Run {
        stressor: s,
        seed,
        shared: &shared,
        signals: &signals,
        output: &output,
        me,
        pgid: sentinel,
        sentinel,
        start: Instant::now(),
        start_ns,
        by_pid: HashMap::with_capacity(workers * 2 + 16),
        generation: vec![0; workers],
        early_ends: vec![None; workers],
        counts: WorkerCounts::default(),
        tearing_down: false,
        end_run: None,
        oom_seen: sys::oom_kills(),
        orphans: 0,
        worker_nice,
        teardown_method: "process group".into(),
    };

    let mut first_error = None;
    for i in 0..workers {
        if let Err(e) = run.spawn(i) {
            first_error = Some(e);
            break;
        }
    }

    let mut stop_reason = String::new();
    let mut outcome = Outcome::Completed;
    if let Some(e) = &first_error {
        outcome = Outcome::Failed;
        stop_reason = format!("could not start every worker: {e}");
    }
    let mut next_tick = Duration::from_secs(1);
    while first_error.is_none() {
        let now = run.start.elapsed();
        let until = deadline.map_or(next_tick, |d| d.min(next_tick));
        if now < until {
            signals.wait(until - now);
        }
        run.reap();
        output.forward();
        let now = run.start.elapsed();
        if now >= next_tick {
            let values = run.snapshot(&mut lat_now);
            for (p, v) in peaks.iter_mut().zip(&values) {
                *p = (*p).max(*v);
            }
            progress.tick(now, deadline, run.by_pid.len(), &values);
            let mut latency = Vec::with_capacity(hists);
            for (prev, cur) in lat_prev.iter_mut().zip(lat_now.iter_mut()) {
                cur.since(prev, &mut lat_second);
                latency.push(lat_second.summary());
                std::mem::swap(prev, cur);
            }
            samples.push(Sample {
                t: next_tick.as_secs_f64(),
                values,
                latency,
            });
            next_tick += Duration::from_secs(1);
        }
        if let Some(sig) = signals.stop_signal() {
            outcome = Outcome::Interrupted(sig);
            stop_reason = format!("received {sig}");
            break;
        }
        if let Some(r) = run.end_run.take() {
            stop_reason = r;
            break;
        }
        if deadline.is_some_and(|d| now >= d) {
            stop_reason = "deadline".into();
            break;
        }
        if run.by_pid.is_empty() {
            let c = &run.counts;
            if c.exited == c.started {
                stop_reason = "every worker finished".into();
            } else {
                outcome = Outcome::Failed;
                stop_reason = format!(
                    "every worker ended early ({} failed, {} killed)",
                    c.failed, c.killed
                );
            }
            break;
        }
    }
    progress.clear();

    let stress = run.start.elapsed();
    // Counters as they stood at the stop decision (teardown adds no work worth counting).
    let ready_s = run.ready_s(workers);
    let t0 = Instant::now();
    let left_behind = run.teardown();
    output.forward();
    let teardown = t0.elapsed();
    let elapsed = run.start.elapsed();
    let ended_at = SystemTime::now();

    let slots: Vec<_> = (0..workers)
        .map(|i| SlotEnd {
            counters: (0..metrics.len())
                .map(|m| shared.slot(i).counters[m].load(Relaxed))
                .collect(),
            respawns: run.generation[i],
            result: shared.result(i),
            early_end: run.early_ends[i].map(|e| e.0),
            oom: run.early_ends[i].is_some_and(|e| e.1),
        })
        .collect();
    let totals = run.snapshot(&mut lat_now);
    let latency = lat_now.iter().map(Histogram::summary).collect();
    for (m, (p, v)) in peaks.iter_mut().zip(&totals).enumerate() {
        if metrics[m].kind == Kind::Total || *p == 0 {
            *p = (*p).max(*v);
        }
    }
    let mut errors: Vec<(String, u64)> = (0..ERRNOS)
        .filter_map(|i| {
            let n = shared.header().errnos[i].load(Relaxed);
            (n > 0).then(|| (format!("{:?}", Errno::from_raw(i as i32)), n))
        })
        .collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    let usage = sys::children_cpu_s();
    let usage = run.stressor.cpu_s().map_or(usage, |c| c.max(usage));
    let steal = match (ticks0, sys::cpu_ticks()) {
        (Some(a), Some(b)) if b.total > a.total => {
            let st = b.steal.saturating_sub(a.steal) as f64;
            Some((
                st / sys::ticks_per_second() as f64,
                100.0 * st / (b.total - a.total) as f64,
            ))
        }
        _ => None,
    };
    let mut counts = run.counts.clone();
    counts.ready_s = ready_s;
    if left_behind > 0 {
        // An interrupted run stays interrupted (its exit code says which signal), but says
        // what it left as well.
        if outcome == Outcome::Completed {
            outcome = Outcome::Failed;
        }
        let what = if left_behind == 1 {
            "process"
        } else {
            "processes"
        };
        stop_reason += &format!("; teardown left {left_behind} {what} of the run alive");
    }

    Ok(RunData {
        started_at,
        ended_at,
        stress_s: stress.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        teardown_s: teardown.as_secs_f64(),
        teardown_method: run.teardown_method.clone(),
        outcome,
        stop_reason,
        workers: counts,
        slots,
        totals,
        peaks,
        samples,
        latency,
        errors,
        cpu_s: usage,
        steal,
        left_behind,
        start_ns: run.start_ns,
        globals: (0..crate::shm::GLOBALS)
            .map(|i| shared.header().globals[i].load(Relaxed))
            .collect(),
        orphans_reaped: run.orphans,
    })
}

static THREADS_AT_START: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// Records how many threads the process has before anything of the stressor runs (1, or
/// more under an emulator): the baseline of the single-thread check.
pub fn note_threads_at_start() {
    if let Some(n) = sys::thread_count() {
        THREADS_AT_START.store(n, Relaxed);
    }
}

/// "No thread exists when the supervisor forks" (see [`Stressor`]): a forked child gets a
/// copy of the forking thread alone, and any lock another thread held stays locked in it.
///
/// The count is compared with the threads the process had when the program started
/// ([`note_threads_at_start`]): an emulator such as qemu-user runs threads of its own in the
/// process, and those are not the stressor's.
fn check_single_threaded() -> Result<()> {
    let base = THREADS_AT_START.load(Relaxed).max(1);
    match sys::thread_count() {
        Some(n) if n > base => Err(Error::runtime(format!(
            "internal error: {n} threads exist before the workers are forked; a stressor's plan or prepare must not start threads (see common::Stressor)"
        ))),
        _ => Ok(()),
    }
}

fn flush_stdio() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// Forks the sleeping leader of the run's process group.
fn spawn_sentinel(signals: &Signals, output: &WorkerOutput, me: Pid) -> Result<Pid> {
    flush_stdio();
    // SAFETY: the supervisor is single-threaded; the child only sleeps and exits.
    match unsafe { fork() }.context("starting the process-group leader")? {
        ForkResult::Child => {
            signals.reset_in_child();
            output.redirect_child();
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            if sys::die_with_parent(me) {
                while nix::unistd::getppid() == me {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            // SAFETY: ends the child without unwinding into the parent's state.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            let _ = setpgid(child, child);
            Ok(child)
        }
    }
}

impl<S: Stressor> Run<'_, S> {
    fn spawn(&mut self, index: usize) -> Result<()> {
        flush_stdio();
        if cfg!(debug_assertions) {
            check_single_threaded()?;
        }
        // The slot is no longer "ended" once its new worker exists; cleared before the fork,
        // so nobody sees the new worker's slot as gone.
        let ended = self.shared.slot(index).ended_ns.swap(0, Relaxed);
        let mut tries = 0;
        let pid = loop {
            // SAFETY: the supervisor is single-threaded; the child runs the stressor's work
            // and leaves with _exit.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => self.worker_main(index),
                Ok(ForkResult::Parent { child }) => break child,
                // A full process table or memory: try a few times, then give up on it.
                Err(e @ (Errno::EAGAIN | Errno::ENOMEM)) if tries < 20 => {
                    tries += 1;
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    self.shared.slot(index).ended_ns.store(ended, Relaxed);
                    return Err(Error::from(e).context(format!("starting worker {index}: fork")));
                }
            }
        };
        let _ = setpgid(pid, self.pgid);
        self.by_pid.insert(pid, index);
        self.early_ends[index] = None;
        self.counts.started += 1;
        Ok(())
    }

    fn worker_main(&self, index: usize) -> ! {
        self.signals.reset_in_child();
        self.output.redirect_child();
        let _ = setpgid(Pid::from_raw(0), self.pgid);
        if !sys::die_with_parent(self.me) {
            // SAFETY: the supervisor is already gone; leave at once.
            unsafe { libc::_exit(0) };
        }
        sys::set_oom_score_adj(1000);
        sys::set_nice(self.worker_nice);
        let mut w = Worker::new(
            index,
            self.generation[index],
            self.seed,
            self.shared,
            self.me,
        );
        let code = match self.stressor.work(&mut w) {
            Ok(()) => 0,
            Err(e) => {
                crate::error::say(&format!("{}: worker {index}: error: {e}", S::NAME));
                1
            }
        };
        // SAFETY: a worker never returns into the supervisor's code.
        unsafe { libc::_exit(code) }
    }

    /// Reaps every child that has ended; respawns where the stressor says so.
    fn reap(&mut self) {
        loop {
            let st = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => return,
                Ok(st) => st,
            };
            let (pid, status) = match st {
                WaitStatus::Exited(p, c) => (p, EndStatus::Exited(c)),
                WaitStatus::Signaled(p, s, _) => (p, EndStatus::Killed(s)),
                _ => continue,
            };
            let Some(index) = self.by_pid.remove(&pid) else {
                if pid != self.sentinel {
                    self.orphans += 1;
                }
                continue;
            };
            // Never 0 (that means "not ended"), even on a clock that starts at 0.
            self.shared
                .slot(index)
                .ended_ns
                .store(time::mono_ns().max(1), Relaxed);
            // A dead worker holds nothing: its gauges (resident bytes, live children) drop
            // to zero; its totals stay.
            for (m, metric) in self.stressor.metrics().iter().enumerate() {
                if metric.kind == Kind::Gauge {
                    self.shared.slot(index).counters[m].store(0, Relaxed);
                }
            }
            let mut oom = false;
            match status {
                EndStatus::Exited(0) => self.counts.exited += 1,
                // Killed on purpose: a stressor with no grace is stopped this way.
                EndStatus::Killed(Signal::SIGKILL)
                    if self.tearing_down && self.stressor.grace().is_zero() =>
                {
                    self.counts.exited += 1
                }
                EndStatus::Exited(_) => self.counts.failed += 1,
                EndStatus::Killed(sig) => {
                    self.counts.killed += 1;
                    if sig == Signal::SIGKILL && !self.tearing_down && self.took_oom_kill() {
                        oom = true;
                        self.counts.oom_killed += 1;
                        self.counts
                            .first_oom_s
                            .get_or_insert(self.start.elapsed().as_secs_f64());
                    }
                }
            }
            if self.tearing_down {
                continue;
            }
            self.early_ends[index] = Some((status, oom));
            match self.stressor.on_exit(&WorkerEnd { index, status, oom }) {
                ExitAction::Keep => {}
                ExitAction::EndRun(r) => self.end_run = Some(r),
                ExitAction::Respawn => {
                    self.generation[index] += 1;
                    if self.spawn(index).is_ok() {
                        self.counts.respawned += 1;
                    }
                }
            }
        }
    }

    /// Was the last SIGKILL the OOM killer's? Yes if the kernel's count of OOM kills went
    /// up since the last one we attributed (or if the kernel does not count them).
    fn took_oom_kill(&mut self) -> bool {
        match (sys::oom_kills(), self.oom_seen) {
            (Some(now), Some(seen)) if now > seen => {
                self.oom_seen = Some(seen + 1);
                true
            }
            (Some(_), Some(_)) => false,
            _ => true,
        }
    }

    /// Every metric summed over the slots (gauges: of live workers only matter, and a
    /// dead worker's gauge is stale, so respawned slots overwrite theirs), and every
    /// histogram merged into `hists`.
    ///
    /// A slot's counters and histograms are read one right after the other, so a second's
    /// latency count and its ops differ by what the worker did in between: at most the
    /// batch it was recording (a worker records an op's latency, then counts it). Reading
    /// every counter first and every histogram after would leave a whole pass over the
    /// slots in between.
    fn snapshot(&self, hists: &mut [Histogram]) -> Vec<u64> {
        let n = self.stressor.metrics().len();
        let mut v = vec![0u64; n];
        hists.iter_mut().for_each(Histogram::clear);
        for i in 0..self.shared.slots() {
            let slot = self.shared.slot(i);
            for (m, acc) in v.iter_mut().enumerate() {
                *acc += slot.counters[m].load(Relaxed);
            }
            for (h, into) in hists.iter_mut().enumerate() {
                into.add_cells(self.shared.hist(i, h));
            }
        }
        v
    }

    fn ready_s(&self, workers: usize) -> Option<f64> {
        let mut latest = 0;
        for i in 0..workers {
            let r = self.shared.slot(i).ready_ns.load(Relaxed);
            if r == 0 {
                return None;
            }
            latest = latest.max(r);
        }
        Some(latest.saturating_sub(self.start_ns) as f64 / 1e9)
    }

    /// How many processes of the run are alive when teardown gives up, grandchildren
    /// included: the larger of two counts, as each can miss some. The run's process group
    /// holds every process forked under it (the sentinel too, counted like any other
    /// process of the run if it still lives), but a process may leave the group (setsid);
    /// the run's own cgroups (forkbomb's) hold whatever was forked inside, and nothing but
    /// that. Where neither can be counted: the workers still alive, plus one if any other
    /// child is.
    fn left_alive(&self, children_left: bool) -> u64 {
        let group = sys::group_alive(self.pgid.as_raw());
        let cgroup = crate::cgroup::procs_alive();
        // Workers not yet reaped are alive, whatever the scans saw.
        let workers = self.by_pid.len() as u64;
        match group.into_iter().chain(cgroup).max() {
            Some(n) => n.max(workers),
            None => workers + u64::from(children_left),
        }
    }

    /// Stops everything; returns how many processes of the run could not be removed.
    fn teardown(&mut self) -> u64 {
        self.tearing_down = true;
        self.shared.header().stop.store(1, Relaxed);
        let t0 = Instant::now();
        let grace = self.stressor.grace();
        while !self.by_pid.is_empty() && t0.elapsed() < grace {
            self.signals.wait(Duration::from_millis(2));
            self.reap();
        }
        if let Some(m) = self.stressor.kill_all() {
            self.teardown_method = format!("{m}, then process group");
        }
        // Once they are killed, the run's processes go first: each must run its own exit
        // before there is anything to reap, and a reaping pass walks every child of this
        // process (thousands, in a fork bomb) with the process table locked. At nice -15
        // this process would take the CPUs from a bomb at nice 19 to do just that.
        let mut niced = false;
        let mut killed_at: Option<Instant> = None;
        loop {
            let mut group_gone = false;
            if killed_at.is_none_or(|t| t.elapsed() >= REKILL) {
                group_gone = matches!(killpg(self.pgid, Signal::SIGKILL), Err(Errno::ESRCH));
                killed_at = Some(Instant::now());
                if !niced {
                    niced = sys::set_nice(19);
                }
            }
            self.reap();
            let no_children = matches!(
                waitpid(None, Some(WaitPidFlag::WNOHANG)),
                Err(Errno::ECHILD)
            );
            // Every process of the run is a descendant of this one (subreaper), so with no
            // child left the group is empty; the kill says so also where orphans went to
            // init instead (illumos).
            if no_children
                && (group_gone || matches!(killpg(self.pgid, Signal::SIGKILL), Err(Errno::ESRCH)))
            {
                return 0;
            }
            if t0.elapsed() > TEARDOWN_LIMIT {
                return self.left_alive(!no_children);
            }
            // Reaping passes 10 ms apart, not at every SIGCHLD: each walks all children.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
