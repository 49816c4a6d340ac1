//! The plain data of a run: what a stressor counts ([`Metric`], declared in [`Metrics`],
//! named by [`MetricId`]), what the supervisor learned
//! ([`RunData`]), and what a stressor found ([`Findings`]). Values only: this module imports
//! nothing of the run loop, the report or the terminal, so every layer above can use it.

use std::time::SystemTime;

use nix::sys::signal::Signal;

use misbehave_report::Value;

use crate::hist::Summary;

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
    /// Stored in nanoseconds, printed and reported in seconds (`fill_ns` becomes `fill_s`).
    /// An internal clock: no rate, and not in the summary.
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
    /// The name in the report: `fill_ns` is reported as `fill_s`.
    pub fn report_name(&self) -> String {
        match self.unit {
            Unit::Nanos => format!("{}_s", self.name.trim_end_matches("_ns")),
            _ => self.name.to_string(),
        }
    }
    /// The value as the report gives it.
    pub fn value(&self, raw: u64) -> Value {
        match self.unit {
            Unit::Count => Value::Count(raw),
            Unit::Bytes => Value::Bytes(raw),
            Unit::Nanos => Value::Seconds(round3(raw as f64 / 1e9)),
        }
    }
}

/// The first metric of every stressor: its own unit of work (bogo ops, in stress-ng's words).
pub const OPS: Metric = Metric::total("ops", Unit::Count);

/// A handle on one of a stressor's metrics, handed out by [`Metrics`] as the stressor
/// declares it: what `Worker::add` and [`RunData::total`] take, so no metric is named by a
/// bare number. Inside, the metric's place in the list (its counter in shared memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricId(usize);

impl MetricId {
    /// Every stressor's first metric, [`OPS`].
    pub const OPS: MetricId = MetricId(0);

    /// The metric's place in the stressor's list (and in every per-metric vector).
    pub fn index(self) -> usize {
        self.0
    }
}

/// A stressor's metrics, owned by its plan: [`OPS`] first, then each one the stressor
/// declares with [`Metrics::total`] or [`Metrics::gauge`], which return its handle.
/// `Stressor::metrics` lends the list (it derefs to `[Metric]`).
#[derive(Debug, Clone)]
pub struct Metrics(Vec<Metric>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics(vec![OPS])
    }
}

impl Metrics {
    /// Declares a metric that only grows (operations, bytes written).
    pub fn total(&mut self, name: &'static str, unit: Unit) -> MetricId {
        self.push(Metric::total(name, unit))
    }

    /// Declares a level that goes up and down (resident bytes, live processes).
    pub fn gauge(&mut self, name: &'static str, unit: Unit) -> MetricId {
        self.push(Metric::gauge(name, unit))
    }

    fn push(&mut self, m: Metric) -> MetricId {
        self.0.push(m);
        MetricId(self.0.len() - 1)
    }
}

/// Declares a stressor's metrics as a struct of handles with their list (`ops` first,
/// then these, in order): a field for each metric, `total` or `gauge`, its report name and
/// its [`Unit`]. `Default` builds it; the plan keeps one and lends `list` as its
/// `Stressor::metrics`.
///
/// ```ignore
/// common::metrics! {
///     struct Counters {
///         /// Bytes written.
///         written: total("write_bytes", Bytes),
///         resident: gauge("resident_bytes", Bytes),
///     }
/// }
/// ```
#[macro_export]
macro_rules! metrics {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($(#[$fmeta:meta])* $field:ident: $kind:ident($metric:literal, $unit:ident)),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $name {
            /// Every metric, `ops` first, in the order declared.
            pub list: $crate::data::Metrics,
            $($(#[$fmeta])* pub $field: $crate::data::MetricId,)*
        }

        impl Default for $name {
            fn default() -> Self {
                let mut list = $crate::data::Metrics::default();
                $(let $field = list.$kind($metric, $crate::data::Unit::$unit);)*
                $name { list, $($field),* }
            }
        }
    };
}

impl std::ops::Deref for Metrics {
    type Target = [Metric];
    fn deref(&self) -> &[Metric] {
        &self.0
    }
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndStatus {
    Exited(i32),
    Killed(Signal),
}

/// A worker that ended before the run told it to.
#[derive(Debug, Clone)]
pub struct WorkerEnd {
    pub index: usize,
    pub status: EndStatus,
    /// Killed with SIGKILL while the kernel's OOM-kill count went up.
    pub oom: bool,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Interrupted(Signal),
    Failed,
}

impl Outcome {
    /// The name in the report: `completed`, `interrupted` or `failed`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Interrupted(_) => "interrupted",
            Outcome::Failed => "failed",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Completed => 0,
            Outcome::Failed => 1,
            Outcome::Interrupted(s) => 128 + s as u8,
        }
    }
}

impl From<Outcome> for misbehave_report::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Completed => Self::Completed,
            Outcome::Interrupted(_) => Self::Interrupted,
            Outcome::Failed => Self::Failed,
        }
    }
}

pub use misbehave_report::WorkerCounts;

/// One per-second sample: seconds since the start, every metric's value (totals
/// cumulative, gauges summed over workers), and the latency of that second's operations
/// for each of the stressor's histograms.
#[derive(Debug, Clone)]
pub struct Sample {
    pub t: f64,
    pub values: Vec<u64>,
    pub latency: Vec<Option<Summary>>,
}

impl Sample {
    /// Metric `m` in this sample.
    pub fn value(&self, m: MetricId) -> u64 {
        self.values.get(m.0).copied().unwrap_or(0)
    }
}

/// One worker slot at the end.
#[derive(Debug, Clone)]
pub struct SlotEnd {
    pub counters: Vec<u64>,
    pub respawns: u32,
    /// What the slot's worker left with `Worker::set_result` (empty if nothing).
    pub result: Vec<u8>,
    /// How the slot's last worker ended, if it ended before the run told it to stop (None:
    /// it ran until the stop, or the run never started it).
    pub early_end: Option<EndStatus>,
    /// That early end was the OOM killer's ([`WorkerEnd::oom`]).
    pub oom: bool,
}

/// Everything the supervisor learned; the report is made from it.
#[derive(Debug, Clone)]
pub struct RunData {
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    /// Start to the stop decision (deadline, signal...): what rates are per.
    pub stress_s: f64,
    /// Start to the last process gone.
    pub elapsed_s: f64,
    pub teardown_s: f64,
    /// How teardown killed: "process group", or a stressor's cgroup kill first.
    pub teardown_method: String,
    pub outcome: Outcome,
    pub stop_reason: String,
    pub workers: WorkerCounts,
    pub slots: Vec<SlotEnd>,
    /// Per metric: the sum over slots at the end.
    pub totals: Vec<u64>,
    /// Per metric: the highest per-second sample (gauges), or the total.
    pub peaks: Vec<u64>,
    pub samples: Vec<Sample>,
    /// Latency over the whole run, per histogram of the stressor.
    pub latency: Vec<Option<Summary>>,
    /// errno name and count, most frequent first.
    pub errors: Vec<(String, u64)>,
    /// User + system CPU seconds of every process of the run.
    pub cpu_s: f64,
    /// Steal time over the run (seconds, percent of all CPU time), where the OS reports it.
    pub steal: Option<(f64, f64)>,
    /// Processes of the run still alive when teardown gave up, grandchildren included
    /// (0 when it removed them all): see the supervisor's `Run::left_alive`.
    pub left_behind: u64,
    /// CLOCK_MONOTONIC ns at the start (workers stamp moments on the same clock).
    pub start_ns: u64,
    /// The run-wide words as they stood at the end.
    pub globals: Vec<u64>,
    /// Descendants that were not workers (a fork bomb's children) reaped by the supervisor.
    pub orphans_reaped: u64,
}

impl SlotEnd {
    /// Metric `m` of this slot at the end.
    pub fn counter(&self, m: MetricId) -> u64 {
        self.counters.get(m.0).copied().unwrap_or(0)
    }
}

impl RunData {
    /// Metric `m` summed over slots at the end.
    pub fn total(&self, m: MetricId) -> u64 {
        self.totals.get(m.0).copied().unwrap_or(0)
    }

    /// Metric `m`'s peak: the highest per-second sample (gauges), or the total.
    pub fn peak(&self, m: MetricId) -> u64 {
        self.peaks.get(m.0).copied().unwrap_or(0)
    }

    /// Seconds from the run's start to a moment a worker stamped (CLOCK_MONOTONIC ns; 0 for
    /// never), to the millisecond.
    pub fn since_start(&self, mono_ns: u64) -> Option<f64> {
        (mono_ns > 0).then(|| round3(mono_ns.saturating_sub(self.start_ns) as f64 / 1e9))
    }

    /// Marks the run failed for `why` (a stressor's verdict, [`Findings::failed`]): a
    /// completed run becomes `failed`, an interrupted one keeps its signal's outcome (and
    /// exit code); either way the stop reason says why.
    pub fn fail(&mut self, why: &str) {
        if self.outcome == Outcome::Completed {
            self.outcome = Outcome::Failed;
        }
        if self.stop_reason.is_empty() {
            self.stop_reason = why.to_string();
        } else {
            self.stop_reason = format!("{}; {why}", self.stop_reason);
        }
    }

    /// `n` per second of stress time.
    pub fn per_s(&self, n: f64) -> f64 {
        if self.stress_s > 0.0 {
            n / self.stress_s
        } else {
            0.0
        }
    }
}

/// A value a stressor found, with its unit: the report gives the number, the summary
/// prints it with its unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    Count(u64),
    Bytes(u64),
    /// Seconds (reported to the millisecond).
    Seconds(f64),
    /// Percent (reported to a tenth).
    Percent(f64),
    /// Any other number, reported as given, printed with its unit ("GiB/s", "ms").
    Number(f64, &'static str),
    Text(String),
    Flag(bool),
    /// Not known, or never happened: `null` in the report, left out of the summary.
    Missing,
    /// A list of records (a sink's senders): an array of objects in the report; the
    /// summary shows how many.
    Records(Vec<Vec<(&'static str, Found)>>),
}

impl Found {
    /// `Seconds`, or `Missing` for None.
    pub fn seconds(v: Option<f64>) -> Self {
        v.map_or(Found::Missing, Found::Seconds)
    }

    /// `Count`, or `Missing` for None.
    pub fn count(v: Option<u64>) -> Self {
        v.map_or(Found::Missing, Found::Count)
    }

    /// `Bytes`, or `Missing` for None.
    pub fn bytes(v: Option<u64>) -> Self {
        v.map_or(Found::Missing, Found::Bytes)
    }

    /// The value in the report.
    pub fn value(&self) -> Value {
        match self {
            Found::Count(n) => Value::Count(*n),
            Found::Bytes(n) => Value::Bytes(*n),
            Found::Seconds(s) => Value::Seconds(round3(*s)),
            Found::Percent(p) => Value::Percent((p * 10.0).round() / 10.0),
            Found::Number(v, unit) => Value::Number(*v, unit.to_string()),
            Found::Text(t) => Value::Text(t.clone()),
            Found::Flag(b) => Value::Flag(*b),
            Found::Missing => Value::Missing,
            Found::Records(rows) => Value::Records(
                rows.iter()
                    .map(|r| {
                        misbehave_report::map_of(r.iter().map(|(k, v)| (k.to_string(), v.value())))
                    })
                    .collect(),
            ),
        }
    }
}

/// One finding: a name in the report and a typed value. `summary` says whether people see
/// it in the summary too (false for what the summary already shows another way, such as a
/// peak or a worker count repeated in `details` for scripts).
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub name: &'static str,
    pub value: Found,
    pub summary: bool,
}

impl Finding {
    pub fn new(name: &'static str, value: Found) -> Self {
        Self {
            name,
            value,
            summary: true,
        }
    }

    /// In the report only: the summary shows it another way already.
    pub fn report_only(mut self) -> Self {
        self.summary = false;
        self
    }
}

/// What a stressor found, beyond its metrics, placed where the report puts it.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// `details`: the stressor's own findings.
    pub details: Vec<Finding>,
    /// More `totals` (a `Count` total also gets a per-second entry in `rates`).
    pub totals: Vec<Finding>,
    /// `peaks` known better than the per-second samples (a peak reached between two
    /// samples); they replace the sampled ones of the same name.
    pub peaks: Vec<Finding>,
    /// Per worker slot, added to `per_worker[i]`.
    pub per_worker: Vec<Vec<Finding>>,
    /// The stressor's verdict that the run failed although the supervisor saw nothing
    /// wrong (a part of its work died and the rest ran on), and why: the outcome becomes
    /// `failed` (an interrupted run stays interrupted) and the reason is added to the
    /// stop reason ([`RunData::fail`]).
    pub failed: Option<String>,
}

impl Findings {
    /// Adds a detail (shown in the summary).
    pub fn detail(&mut self, name: &'static str, value: Found) -> &mut Self {
        self.details.push(Finding::new(name, value));
        self
    }

    /// Adds a detail for scripts only (the summary shows it another way).
    pub fn detail_report_only(&mut self, name: &'static str, value: Found) -> &mut Self {
        self.details.push(Finding::new(name, value).report_only());
        self
    }
}

/// Rounds to the millisecond (or to three decimals).
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
