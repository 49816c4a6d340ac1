//! The report: one schema (`misbehave.report/1`) for every binary, published as a JSON
//! Schema in `common/schema/` and documented in `docs/report.md`.
//!
//! Made from the supervisor's [`RunData`], the stressor's metrics and latency histograms,
//! and the typed [`Findings`] the stressor returns; nothing patches it afterwards. Written
//! as JSON to stdout (`--json`) and/or to a file (`-o`), also when the run was interrupted.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::data::{round3, Findings, Kind, Metric, Outcome, RunData, Unit, WorkerCounts};
use crate::error::{Context, Result};
use crate::hist::Summary;
use crate::host::Host;
use crate::time;

pub const SCHEMA: &str = "misbehave.report/1";
pub const PLAN_SCHEMA: &str = "misbehave.plan/1";

/// The target triple this binary was built for.
pub const TARGET: &str = env!("MISBEHAVE_TARGET");
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// The flags as given on the command line (raw text).
    pub requested: Map<String, Value>,
    /// What the run used after defaults, percentages and caps were resolved.
    pub effective: Map<String, Value>,
}

/// What `--dry-run --json` prints (`misbehave.plan/1`).
#[derive(Debug, Clone, Serialize)]
pub struct Plan<'a> {
    pub schema: &'static str,
    pub tool: &'static str,
    pub version: &'static str,
    pub target: &'static str,
    pub host: &'a Host,
    pub params: &'a Params,
    /// Whether it would run here (a guest, or --allow-host).
    pub allowed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub tool: &'static str,
    pub version: &'static str,
    pub target: &'static str,
    pub host: Host,
    pub params: Params,
    pub started_at: String,
    pub ended_at: String,
    /// Start to the last process gone, teardown included.
    pub elapsed_s: f64,
    /// Start to the stop decision: the time rates are computed over.
    pub stress_s: f64,
    pub teardown_s: f64,
    /// "process group", or "freezer, then process group" / "cgroup.kill, then process group"
    pub teardown_method: String,
    /// Processes of the run still alive when teardown gave up; 0 in a clean run.
    pub left_behind: u64,
    pub outcome: Outcome,
    pub stop_reason: String,
    pub exit_code: u8,
    pub workers: WorkerCounts,
    pub totals: Map<String, Value>,
    pub rates: Map<String, Value>,
    pub peaks: Map<String, Value>,
    /// Per latency histogram of the stressor: percentiles over the run (microseconds).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub latency: Map<String, Value>,
    pub errors: Map<String, Value>,
    pub samples: Vec<Map<String, Value>>,
    pub per_worker: Vec<Map<String, Value>>,
    pub details: Map<String, Value>,
}

/// Percentiles in microseconds, as the report gives them.
pub fn latency_json(s: &Summary) -> Value {
    let us = |ns: u64| round3(ns as f64 / 1e3);
    serde_json::json!({
        "count": s.count,
        "min_us": us(s.min_ns),
        "mean_us": us(s.mean_ns),
        "p50_us": us(s.p50_ns),
        "p90_us": us(s.p90_ns),
        "p99_us": us(s.p99_ns),
        "p99_9_us": us(s.p99_9_ns),
        "max_us": us(s.max_ns),
    })
}

/// The report's parts, made of a run: everything but the host and the parameters.
pub struct Parts<'a> {
    pub metrics: &'a [Metric],
    pub latencies: &'a [&'static str],
    pub run: &'a RunData,
    pub findings: &'a Findings,
}

impl Report {
    pub fn new(tool: &'static str, host: Host, params: Params, parts: Parts) -> Self {
        let Parts {
            metrics,
            latencies,
            run,
            findings,
        } = parts;
        let per_s = |v: u64| round3(run.per_s(v as f64));
        let mut totals = Map::new();
        let mut rates = Map::new();
        let mut peaks = Map::new();
        for (m, v) in metrics.iter().zip(&run.totals) {
            if m.kind == Kind::Total {
                totals.insert(m.report_name(), m.value(*v));
                if m.unit != Unit::Nanos {
                    rates.insert(m.report_name(), per_s(*v).into());
                }
            }
        }
        for (m, v) in metrics.iter().zip(&run.peaks) {
            if m.kind == Kind::Gauge {
                peaks.insert(m.report_name(), m.value(*v));
            }
        }
        totals.insert("cpu_s".into(), round3(run.cpu_s).into());
        if let Some((s, pct)) = run.steal {
            totals.insert("steal_s".into(), round3(s).into());
            totals.insert("steal_pct".into(), round3(pct).into());
        }
        for f in &findings.totals {
            totals.insert(f.name.into(), f.value.json());
            if let crate::data::Found::Count(n) = f.value {
                rates.insert(f.name.into(), per_s(n).into());
            }
        }
        for f in &findings.peaks {
            peaks.insert(f.name.into(), f.value.json());
        }
        let latency = latencies
            .iter()
            .zip(&run.latency)
            .filter_map(|(name, s)| Some((name.to_string(), latency_json(s.as_ref()?))))
            .collect();
        let errors = run
            .errors
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(*v)))
            .collect();
        let samples = run
            .samples
            .iter()
            .map(|s| {
                let mut o = Map::new();
                o.insert("t".into(), s.t.into());
                for (m, v) in metrics.iter().zip(&s.values) {
                    o.insert(m.report_name(), m.value(*v));
                }
                if !latencies.is_empty() {
                    let lat: Map<String, Value> = latencies
                        .iter()
                        .zip(&s.latency)
                        .filter_map(|(name, s)| Some((name.to_string(), latency_json(s.as_ref()?))))
                        .collect();
                    o.insert("latency".into(), lat.into());
                }
                o
            })
            .collect();
        let per_worker = run
            .slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let mut o = Map::new();
                o.insert("index".into(), i.into());
                o.insert("respawns".into(), slot.respawns.into());
                for (m, v) in metrics.iter().zip(&slot.counters) {
                    if m.kind == Kind::Total {
                        o.insert(m.report_name(), m.value(*v));
                    }
                }
                o.insert("ops_per_s".into(), per_s(slot.counters[0]).into());
                for f in findings.per_worker.get(i).into_iter().flatten() {
                    o.insert(f.name.into(), f.value.json());
                }
                o
            })
            .collect();
        let details = findings
            .details
            .iter()
            .map(|f| (f.name.to_string(), f.value.json()))
            .collect();
        Report {
            schema: SCHEMA,
            tool,
            version: VERSION,
            target: TARGET,
            host,
            params,
            started_at: time::rfc3339(run.started_at),
            ended_at: time::rfc3339(run.ended_at),
            elapsed_s: round3(run.elapsed_s),
            stress_s: round3(run.stress_s),
            teardown_s: round3(run.teardown_s),
            teardown_method: run.teardown_method.clone(),
            left_behind: run.left_behind,
            outcome: run.outcome,
            stop_reason: run.stop_reason.clone(),
            exit_code: run.outcome.exit_code(),
            workers: run.workers.clone(),
            totals,
            rates,
            peaks,
            latency,
            errors,
            samples,
            per_worker,
            details,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }
}

/// Where reports go; the one trait every exporter implements (stdout, a file).
pub trait Export {
    fn export(&self, json: &str) -> Result<()>;
}

/// `--json`: the report on stdout.
pub struct Stdout;

impl Export for Stdout {
    fn export(&self, json: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(json.as_bytes())
            .and_then(|_| out.write_all(b"\n"))
            .and_then(|_| out.flush())
            .context("writing the report to stdout")
    }
}

/// `-o PATH`: the report in a file.
///
/// Where PATH is (or will be) a regular file, the report goes to a temporary name beside it
/// and is renamed over it, so a reader (an Ansible fetch, a script polling for it) never
/// sees half a report, and a failed write leaves nothing behind. A symbolic link is
/// followed: the report goes to its target, and the link stays. Anything else (a device
/// such as /dev/null or /dev/stdout, a FIFO, a socket) is written through, never replaced:
/// replacing /dev/null with a regular file would harm the guest, and a FIFO's reader would
/// wait for ever.
pub struct File<'a>(pub &'a Path);

impl Export for File<'_> {
    fn export(&self, json: &str) -> Result<()> {
        let shown = self.0.display();
        let path = resolve_links(self.0).context(format!("writing the report to {shown}"))?;
        let regular = match std::fs::metadata(&path) {
            Ok(m) => m.is_file(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                return Err(
                    crate::error::Error::from(e).context(format!("writing the report to {shown}"))
                )
            }
        };
        let written = if regular {
            write_atomically(&path, json)
        } else {
            write_through(&path, json)
        };
        written
            .map_err(crate::error::Error::from)
            .context(format!("writing the report to {shown}"))
    }
}

/// The path a chain of symbolic links ends at (the path itself if it is not a link; a
/// dangling link gives the path it points to, which will be created).
fn resolve_links(path: &Path) -> Result<std::path::PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(crate::error::Error::runtime(
        "too many levels of symbolic links".to_string(),
    ))
}

fn write_atomically(path: &Path, json: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(json.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Writes into what is there (a device, a FIFO), in one write where it can, without
/// creating, truncating or replacing anything.
fn write_through(path: &Path, json: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    let mut buf = String::with_capacity(json.len() + 1);
    buf.push_str(json);
    buf.push('\n');
    f.write_all(buf.as_bytes())?;
    f.flush()
}

/// Checks before the run that `-o PATH` can be written, so a typo is a usage error and
/// not an hour of stress with no report.
pub fn check_output_path(path: &Path) -> Result<()> {
    let resolved = resolve_links(path)
        .map_err(|e| crate::error::Error::usage(format!("--output {}: {e}", path.display())))?;
    let dir = match resolved.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(crate::error::Error::usage(format!(
            "--output {}: is a directory",
            path.display()
        )));
    }
    if !dir.is_dir() {
        return Err(crate::error::Error::usage(format!(
            "--output {}: directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}
