//! The one life cycle every stressor plugs into (after stress-ng's): plan, run until told to
//! stop, tear down, report.
//!
//! A stressor's crate holds only what is its own: its flags (a clap `Parser` that flattens
//! [`crate::CommonArgs`]), its plan ([`Command::plan`] resolves sizes and caps against the
//! host), its worker loop ([`Stressor::work`], run in each worker process), and its metrics.
//! Forking, deadlines, signals, teardown, counters, samples, the report and the summary are
//! all [`crate::run`]'s.

use serde_json::{Map, Value};

use crate::host::Host;
use crate::report::Report;
use crate::supervisor::{RunData, WorkerEnd};
use crate::worker::Worker;
use crate::{CommonArgs, Result};

/// How a metric adds up over workers and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (operations, bytes written): totals and per-second rates.
    Total,
    /// A level that goes up and down (resident bytes, live processes): peaks.
    Gauge,
}

/// How to print a metric's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    /// Stored in nanoseconds, printed and reported in seconds (`cpu_ns` becomes `cpu_s`).
    Nanos,
}

/// One counter every worker keeps in its shared slot.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
}

impl Metric {
    pub const fn total(name: &'static str, unit: Unit) -> Self {
        Self {
            name,
            kind: Kind::Total,
            unit,
        }
    }
    pub const fn gauge(name: &'static str, unit: Unit) -> Self {
        Self {
            name,
            kind: Kind::Gauge,
            unit,
        }
    }
    /// The name in the report: `cpu_ns` is reported as `cpu_s`.
    pub fn report_name(&self) -> String {
        match self.unit {
            Unit::Nanos => format!("{}_s", self.name.trim_end_matches("_ns")),
            _ => self.name.to_string(),
        }
    }
    /// The value as the report gives it.
    pub fn value(&self, raw: u64) -> Value {
        match self.unit {
            Unit::Nanos => round3(raw as f64 / 1e9).into(),
            _ => raw.into(),
        }
    }
}

/// The first metric of every stressor: its own unit of work (bogo ops, in stress-ng's words).
pub const OPS: Metric = Metric::total("ops", Unit::Count);

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
pub trait Stressor {
    /// The binary's name.
    const NAME: &'static str;

    /// The counters each worker keeps; the first must be [`OPS`].
    fn metrics(&self) -> &'static [Metric];

    /// How many workers to start.
    fn workers(&self) -> usize;

    /// The effective parameters after every cap, for `--dry-run` and `params.effective`.
    fn params(&self) -> Map<String, Value>;

    /// Runs in the supervisor before the first worker starts (create a cgroup, a file...).
    fn prepare(&mut self, _host: &Host) -> Result<()> {
        Ok(())
    }

    /// The worker loop, in its own process: work until `w.running()` says stop.
    fn work(&self, w: &mut Worker) -> Result<()>;

    /// A worker ended before it was told to: what now?
    fn on_exit(&self, _end: &WorkerEnd) -> ExitAction {
        ExitAction::Keep
    }

    /// Teardown, after the grace: kill every process of the run at once if the stressor
    /// can (a cgroup of its own: `common::sys::cgroup_kill_all`), before the supervisor's
    /// process-group kill loop mops up. Returns the method used.
    fn kill_all(&self) -> Option<&'static str> {
        None
    }

    /// Adds the stressor's own findings to the report (`details`, extra totals...).
    fn finish(&self, _run: &RunData, _report: &mut Report) {}

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

pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
