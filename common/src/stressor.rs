//! The whole API a stressor implements: two traits, [`Command`] (its flags and plan) and
//! [`Stressor`] (its worker loop and findings). Everything else (forking, deadlines,
//! signals, teardown, counters, latency histograms, rate caps, samples, the report and the
//! summary) is `common`'s. The life cycle, after stress-ng's:
//!
//! 1. [`Command::plan`] resolves the flags against the [`Host`] into the stressor value (a
//!    usage error here exits 2 with nothing started); that value serialises (serde) to the
//!    effective parameters, `params.effective` in the report and `--dry-run`'s plan;
//! 2. [`Stressor::prepare`] runs once in the supervisor (make a cgroup, check a directory);
//! 3. the supervisor forks [`Stressor::workers`] processes, each running [`Stressor::work`]
//!    with a [`Worker`] handle (stop flag, counters, histograms, rate caps) until told to
//!    stop; [`Stressor::on_exit`] decides what happens when one ends early;
//! 4. at the stop, the supervisor tears down (with [`Stressor::kill_all`] first, if the
//!    stressor can kill its processes at once), then asks [`Stressor::finish`] for typed
//!    findings, then [`Stressor::cleanup`] removes what `prepare` made;
//! 5. the report and the summary are drawn from the metrics, the run data and the findings.
//!
//! Rules the supervisor relies on:
//! - **No thread exists when the supervisor forks.** `plan`, `prepare`, `on_exit` and
//!   `kill_all` run in the supervisor and must not start threads (a forked child gets one
//!   copy of one thread; a lock another thread held stays locked for ever in it). Threads
//!   are fine inside `work`, in the worker's own process. The supervisor checks this before
//!   it forks (Linux, illumos) and refuses to run with an internal error if it is broken.
//! - `work` returns when `w.running()` says stop, within a fraction of a second: teardown
//!   gives 250 ms before SIGKILL.
//! - Counters, histograms and rate words live in shared memory made before the first fork;
//!   a slot is written only by its worker.

use crate::cli::CommonArgs;
use crate::data::{Findings, Metrics, RunData, WorkerEnd};
use crate::error::Result;
use crate::host::Host;
use crate::worker::Worker;

/// What the supervisor does when a worker ends before it was told to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitAction {
    /// Count it, go on with the others.
    Keep,
    /// Start a new worker in its place (same slot: its counters go on adding up).
    Respawn,
    /// End the whole run now, with this reason (the outcome stays `completed`).
    EndRun(String),
}

/// A stressor: its plan (the value itself) and its worker loop.
///
/// The plan's `Serialize` gives the effective parameters after every cap: each field by its
/// name (`#[serde(rename)]` where the report names it otherwise), `#[serde(skip)]` for
/// what is private to the run (handles, cgroups, counters' ids, `workers`, which `common`
/// reports itself), `#[serde(skip_serializing_if = "Option::is_none")]` for a note that is
/// there only sometimes, [`crate::params::as_value_name`] for a flag's enum. It must serialise
/// to a JSON object.
pub trait Stressor: serde::Serialize {
    /// The binary's name.
    const NAME: &'static str;

    /// The counters each worker keeps, as the plan declared them ([`Metrics`]: `ops`
    /// first, each other one with its [`crate::MetricId`]).
    fn metrics(&self) -> &Metrics;

    /// Names of the latency histograms each worker records into (`Worker::record`), in
    /// order: `["read", "write"]`. The report gives their percentiles for the run and for
    /// every second.
    fn latencies(&self) -> &[&'static str] {
        &[]
    }

    /// How many workers to start.
    fn workers(&self) -> usize;

    /// Run-wide words the stressor needs beyond [`crate::shm::GLOBALS`] (a fork gate's
    /// places, one per CPU or so), in the run's one shared mapping: [`crate::Worker::words`].
    fn shared_words(&self) -> usize {
        0
    }

    /// Runs in the supervisor before the first worker starts (create a cgroup, a file...).
    /// Must not start a thread.
    fn prepare(&mut self, _host: &Host) -> Result<()> {
        Ok(())
    }

    /// The worker loop, in its own process: work until `w.running()` says stop.
    fn work(&self, w: &mut Worker) -> Result<()>;

    /// CPU seconds of the run's processes, where the stressor counts them better than
    /// `getrusage(RUSAGE_CHILDREN)` does: rusage holds only processes that someone waited
    /// for, and a fork bomb's own children are removed by the kernel unwaited. The report's
    /// `totals.cpu_s` takes the larger of the two. Asked after teardown, before `cleanup`.
    fn cpu_s(&self) -> Option<f64> {
        None
    }

    /// A worker ended before it was told to: what now?
    fn on_exit(&self, _end: &WorkerEnd) -> ExitAction {
        ExitAction::Keep
    }

    /// How long teardown waits for workers to return on their own (to flush what they
    /// hold, leave a result) before it kills them. A stressor whose workers hold nothing
    /// that shared memory does not already have may say zero: its workers are then killed
    /// at once, as planned, and counted as exited.
    fn grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(250)
    }

    /// Teardown, after the grace: kill every process of the run at once if the stressor
    /// can (a cgroup of its own: [`crate::cgroup::RunCgroup::kill_all`]), before the
    /// supervisor's process-group kill loop mops up. Returns the method used.
    fn kill_all(&self) -> Option<&'static str> {
        None
    }

    /// The stressor's own findings, once every process is gone and before `cleanup` (what
    /// `prepare` made is still there to be read). A run that did not do what it was asked
    /// to although the supervisor saw nothing wrong (probe: a kind of work died while the
    /// others ran) is failed here, with why: [`Findings::failed`].
    fn finish(&self, _run: &RunData) -> Findings {
        Findings::default()
    }

    /// Runs in the supervisor after every worker is gone, also after a failure: remove
    /// what `prepare` made.
    fn cleanup(&mut self) {}
}

/// A binary's command line: common flags plus the stressor's own, and how to plan from them.
pub trait Command: clap::Parser + clap::CommandFactory + clap::FromArgMatches {
    type Stressor: Stressor;

    fn common(&self) -> &CommonArgs;

    /// Resolves the flags against the host into a stressor. A usage error here (a size the
    /// guest cannot hold, a cap above a limit) exits 2 with nothing started.
    fn plan(&self, host: &Host) -> Result<Self::Stressor>;
}
