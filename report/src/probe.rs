//! probe's own records in `details`: per kind of work over the run (`kinds`), per second
//! and kind (`per_second`), and the contention signals per second (`signals`). What
//! `misbehave compare` reads of a probe report is [`Run`].
//!
//! Every field but the kind is optional when read: a report of an older probe, or one cut to
//! what compare needs, has fewer.

use serde::{Deserialize, Serialize};

use crate::Outcome;

/// The kinds of work probe knows, as the report names them.
pub const KINDS: [&str; 4] = ["cpu", "mem", "disk", "net"];

/// One kind of work over the run (`details.kinds[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "probe_kind"))]
pub struct Kind {
    #[cfg_attr(feature = "schema", schemars(extend("enum" = KINDS)))]
    pub kind: String,
    /// Operations offered per second.
    pub rate_per_s: Option<f64>,
    /// The latency within which an operation counts as good.
    pub slo_ms: Option<f64>,
    /// The SLO is the kind's default (not given with --slo).
    pub slo_default: Option<bool>,
    /// Operations the schedule offered (completed + lost, or more where workers died).
    pub offered: Option<u64>,
    pub completed: Option<u64>,
    /// Completed within the SLO.
    pub good: Option<u64>,
    /// Offered and never answered (net).
    pub lost: Option<u64>,
    pub workers_ended_early: Option<u64>,
    /// Every worker of this kind ended before the run's stop: its numbers are an outage,
    /// not a measurement, and the run's outcome is failed (stop_reason names the kind).
    /// Absent in reports of older probes.
    pub failed: Option<bool>,
    /// How the kind's workers ended when failed (null otherwise): oom_killed if the OOM
    /// killer took any of them, else killed if a signal did, else exited (a worker's own
    /// error).
    #[cfg_attr(
        feature = "schema",
        schemars(extend("enum" = ["oom_killed", "killed", "exited", null]))
    )]
    pub failed_reason: Option<String>,
    /// good / offered, in percent (null: nothing offered).
    pub good_pct: Option<f64>,
    pub achieved_per_s: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
}

impl Kind {
    /// The within-SLO share in percent (None: nothing offered, or not reported).
    pub fn good_share(&self) -> Option<f64> {
        match (self.good, self.offered) {
            (Some(g), Some(o)) if o > 0 => Some(100.0 * g as f64 / o as f64),
            _ => None,
        }
    }
}

/// One kind of work in one second (`details.per_second[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "probe_second"))]
pub struct Second {
    pub t: f64,
    pub kind: String,
    pub offered_per_s: Option<f64>,
    pub achieved_per_s: Option<f64>,
    pub good_pct: Option<f64>,
    pub lost: Option<u64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub max_us: Option<f64>,
}

/// The contention signals of one second (`details.signals[]`); null where the OS does not
/// give one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "probe_signals"))]
pub struct Signals {
    pub t: f64,
    pub steal_pct: Option<f64>,
    pub psi_cpu_some_pct: Option<f64>,
    pub psi_memory_some_pct: Option<f64>,
    pub psi_io_some_pct: Option<f64>,
    pub runq_wait_ms: Option<f64>,
}

/// probe's `details`, as far as they are its own records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "probe_details"))]
pub struct Details {
    #[serde(default)]
    pub kinds: Vec<Kind>,
    #[serde(default)]
    pub per_second: Vec<Second>,
    #[serde(default)]
    pub signals: Vec<Signals>,
}

/// What compare reads of a probe report.
#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub schema: String,
    pub tool: String,
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub details: Details,
}
