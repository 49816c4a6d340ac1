//! The types of misbehave's JSON report (`misbehave.report/1`) and dry-run plan
//! (`misbehave.plan/1`): one set of types, written by `common` at the end of a run, printed
//! by its summary, and read by the host tools (`misbehave compare`, `summary`) and the
//! guest harness. The JSON Schema in `common/schema/` is generated from them (feature
//! `schema`, see [`schema`]); `docs/report.md` describes every field.
//!
//! Within version 1 fields may be added, never removed or renamed: a reader ignores what it
//! does not know, so none of these types denies unknown fields (the generated schema does,
//! where the published one always did, to catch a field written by mistake).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod host;
pub mod probe;
#[cfg(feature = "schema")]
pub mod schema;
mod value;

pub use host::Host;
pub use value::{Entry, Section, Show, Value};

/// The `schema` of every report this version writes.
pub const SCHEMA: &str = "misbehave.report/1";
/// The `schema` of every dry-run plan.
pub const PLAN_SCHEMA: &str = "misbehave.plan/1";

/// What every misbehave binary writes with --json or -o at the end of a run. Version 1:
/// fields may be added (a reader must ignore what it does not know), never removed, renamed
/// or given another meaning; such a change makes misbehave.report/2.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(
        title = "misbehave report, version 1",
        extend("$id" = "urn:misbehave:report:1", "additionalProperties" = false)
    )
)]
pub struct Report {
    #[cfg_attr(feature = "schema", schemars(extend("const" = SCHEMA)))]
    pub schema: String,
    /// The binary's name.
    pub tool: String,
    pub version: String,
    /// The target triple it was built for.
    pub target: String,
    pub host: Host,
    pub params: Params,
    #[cfg_attr(feature = "schema", schemars(with = "Timestamp"))]
    pub started_at: String,
    #[cfg_attr(feature = "schema", schemars(with = "Timestamp"))]
    pub ended_at: String,
    /// Start to the last process gone, teardown included.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub elapsed_s: f64,
    /// Start to the stop decision: the time rates are computed over.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub stress_s: f64,
    /// Stop decision to the last process reaped.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub teardown_s: f64,
    /// "process group", or "freezer, then process group" / "cgroup.kill, then process group".
    pub teardown_method: String,
    /// Processes of the run (grandchildren included) still alive when teardown gave up; 0
    /// in a clean run. Above 0, outcome is failed (or interrupted) and stop_reason says it
    /// too.
    #[serde(default)]
    pub left_behind: u64,
    pub outcome: Outcome,
    pub stop_reason: String,
    pub exit_code: u8,
    pub workers: WorkerCounts,
    pub totals: Totals,
    /// Per second of stress_s, for every total that counts something.
    #[cfg_attr(
        feature = "schema",
        schemars(with = "BTreeMap<String, Amount>", extend("required" = ["ops"]))
    )]
    pub rates: BTreeMap<String, f64>,
    /// The highest value of each level-type metric (live processes, resident bytes).
    #[cfg_attr(feature = "schema", schemars(with = "BTreeMap<String, Amount>"))]
    pub peaks: Section,
    /// Per latency histogram of the stressor: percentiles over the run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency: BTreeMap<String, Latency>,
    /// Count per errno name.
    #[cfg_attr(
        feature = "schema",
        schemars(extend("propertyNames" = {"pattern": "^E[A-Z0-9]+$|^UnknownErrno$"}))
    )]
    pub errors: BTreeMap<String, u64>,
    /// One per second of the run.
    pub samples: Vec<Sample>,
    /// One per worker slot.
    pub per_worker: Vec<PerWorker>,
    /// The binary's own findings.
    pub details: Section,
}

/// How the run ended. failed: the run did not do what it was asked to (every worker
/// failed, teardown left processes, or the stressor said so: for probe, every worker of
/// some kind of work ended before the stop, see details.kinds[].failed); stop_reason says
/// why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Completed,
    Interrupted,
    Failed,
}

impl Outcome {
    /// The name in the report: `completed`, `interrupted` or `failed`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Interrupted => "interrupted",
            Outcome::Failed => "failed",
        }
    }
}

/// A number of the run's own (a total, a rate, a peak): never below zero.
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
#[schemars(rename = "amount", transparent)]
#[allow(dead_code)]
struct Amount(#[schemars(range(min = 0))] f64);

/// RFC 3339, UTC, to the millisecond.
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
#[schemars(
    rename = "timestamp",
    transparent,
    extend("pattern" = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$")
)]
#[allow(dead_code)]
struct Timestamp(String);

/// The flags as given and the plan the run used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("additionalProperties" = false)))]
pub struct Params {
    /// The flags as given on the command line, by their long names, as raw text; a
    /// subcommand (netflood's `send`) as `mode`.
    pub requested: BTreeMap<String, Requested>,
    pub effective: Effective,
}

/// A flag as given: its text, its texts (given more than once), or `true` for a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum Requested {
    Switch(bool),
    Text(String),
    Texts(Vec<String>),
}

/// What the run used after defaults, percentages and caps were resolved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["duration", "duration_s", "workers"])))]
pub struct Effective {
    /// As given (`30s`, `forever`).
    pub duration: String,
    /// null: until stopped.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub duration_s: Option<f64>,
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub workers: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The stressor's own parameters (each binary's guide lists them).
    #[serde(flatten)]
    pub own: serde_json::Map<String, serde_json::Value>,
}

/// Worker processes, counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend(
        "additionalProperties" = false,
        "required" = ["started", "exited", "failed", "killed", "oom_killed", "respawned", "ready_s", "first_oom_s"]
    ))
)]
pub struct WorkerCounts {
    /// Worker processes started, respawns included.
    pub started: u64,
    /// Ended by themselves with status 0.
    pub exited: u64,
    /// Ended by themselves with an error.
    pub failed: u64,
    /// Ended by a signal (teardown's SIGKILL after the grace included).
    pub killed: u64,
    /// Of the killed, those the kernel's OOM killer took.
    pub oom_killed: u64,
    /// Started again in the place of one that ended.
    pub respawned: u64,
    /// Seconds from the start until every first-generation worker was in its loop.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub ready_s: Option<f64>,
    /// Seconds from the start to the first OOM kill of a worker.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub first_oom_s: Option<f64>,
}

/// The totals of the run: the stressor's counted metrics and findings, and CPU time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["ops", "cpu_s"])))]
pub struct Totals {
    /// User+system CPU seconds of every process of the run.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub cpu_s: f64,
    /// The guest's steal time over the run, where the OS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub steal_s: Option<f64>,
    /// Steal time in percent of all CPU time over the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub steal_pct: Option<f64>,
    /// `ops` (always) and the stressor's own totals.
    #[serde(flatten)]
    #[cfg_attr(feature = "schema", schemars(with = "BTreeMap<String, Amount>"))]
    pub counted: Section,
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("additionalProperties" = false)))]
pub struct Latency {
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub count: u64,
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub min_us: f64,
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub mean_us: f64,
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub p50_us: f64,
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub p90_us: f64,
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub p99_us: f64,
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub p99_9_us: f64,
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub max_us: f64,
}

/// One second of the run: every metric (totals cumulative, levels summed over workers) and,
/// for timing stressors, that second's latency.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Sample {
    /// Seconds since the start.
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub t: f64,
    /// Per latency histogram of the stressor (those that timed an operation that second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<BTreeMap<String, Latency>>,
    #[serde(flatten)]
    #[cfg_attr(feature = "schema", schemars(with = "BTreeMap<String, Amount>"))]
    pub values: BTreeMap<String, Value>,
}

/// One worker slot at the end: its totals and the stressor's findings for it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["index", "respawns", "ops", "ops_per_s"])))]
pub struct PerWorker {
    pub index: u64,
    pub respawns: u64,
    #[cfg_attr(feature = "schema", schemars(range(min = 0)))]
    pub ops_per_s: f64,
    #[serde(flatten)]
    pub values: BTreeMap<String, Value>,
}

/// What `--dry-run --json` prints: the resolved plan, nothing started. Versioned like
/// misbehave.report/1 (fields may be added, never removed or given another meaning); host
/// and params are the report's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(
        title = "misbehave plan, version 1",
        extend("$id" = "urn:misbehave:plan:1", "additionalProperties" = false)
    )
)]
pub struct Plan {
    #[cfg_attr(feature = "schema", schemars(extend("const" = PLAN_SCHEMA)))]
    pub schema: String,
    pub tool: String,
    pub version: String,
    pub target: String,
    pub host: Host,
    pub params: Params,
    /// Whether it would run here (a guest, or --allow-host).
    pub allowed: bool,
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }
}

/// A map of `(name, value)` pairs, built by inserting: `collect` would sort them first, and
/// its sort code, once per value type, weighs on binaries held under 1 MiB.
pub fn map_of<V>(pairs: impl IntoIterator<Item = (String, V)>) -> BTreeMap<String, V> {
    let mut m = BTreeMap::new();
    for (k, v) in pairs {
        m.insert(k, v);
    }
    m
}

/// The first fields of any report, to tell which tool wrote it before reading the rest.
#[derive(Debug, Clone, Deserialize)]
pub struct Head {
    #[serde(default)]
    pub schema: String,
    #[serde(default)]
    pub tool: String,
}

impl Head {
    /// The head of `text` when it is a report of the version this build reads ([`SCHEMA`]);
    /// Err says why not in a few words: not a misbehave report, or another version of one.
    pub fn of_report(text: &str) -> Result<Head, String> {
        let head: Head =
            serde_json::from_str(text).map_err(|e| format!("not a misbehave report ({e})"))?;
        if !head.schema.starts_with("misbehave.report/") {
            return Err("not a misbehave report".into());
        }
        if head.schema != SCHEMA {
            return Err(format!(
                "schema {}, this misbehave reads {SCHEMA}",
                head.schema
            ));
        }
        Ok(head)
    }
}
