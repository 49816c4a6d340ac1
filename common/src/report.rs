//! The report: one schema (`misbehave.report/1`) for every binary, documented in the README.
//!
//! Made from the supervisor's [`RunData`]; a stressor adds its own findings in
//! [`crate::Stressor::finish`] (to `details`, or extra entries in `totals`, `rates`, `peaks`).
//! Written as JSON to stdout (`--json`) and/or atomically to a file (`-o`), also when the
//! run was interrupted.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::host::Host;
use crate::stressor::{round3, Kind, Metric, Unit};
use crate::supervisor::{RunData, WorkerCounts};
use crate::{time, Context, Result};

pub const SCHEMA: &str = "misbehave.report/1";

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
    /// completed | interrupted | failed
    pub outcome: &'static str,
    pub stop_reason: String,
    pub exit_code: u8,
    pub workers: WorkerCounts,
    pub totals: Map<String, Value>,
    pub rates: Map<String, Value>,
    pub peaks: Map<String, Value>,
    pub errors: Map<String, Value>,
    pub samples: Vec<Map<String, Value>>,
    pub per_worker: Vec<Map<String, Value>>,
    pub details: Map<String, Value>,
}

impl Report {
    pub fn new(
        tool: &'static str,
        host: Host,
        params: Params,
        metrics: &[Metric],
        run: &RunData,
    ) -> Self {
        let per_s = |v: u64| {
            if run.stress_s > 0.0 {
                round3(v as f64 / run.stress_s)
            } else {
                0.0
            }
        };
        let mut totals = Map::new();
        let mut rates = Map::new();
        let mut peaks = Map::new();
        for (m, v) in metrics.iter().zip(&run.totals) {
            match m.kind {
                Kind::Total => {
                    totals.insert(m.report_name(), m.value(*v));
                    if m.unit != Unit::Nanos {
                        rates.insert(m.report_name(), per_s(*v).into());
                    }
                }
                Kind::Gauge => {}
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
                o
            })
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
            outcome: run.outcome.name(),
            stop_reason: run.stop_reason.clone(),
            exit_code: run.outcome.exit_code(),
            workers: run.workers.clone(),
            totals,
            rates,
            peaks,
            errors,
            samples,
            per_worker,
            details: Map::new(),
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

/// `-o PATH`: the report in a file, written to a temporary name and renamed, so a reader
/// (an Ansible fetch, a script polling for it) never sees half a report.
pub struct File<'a>(pub &'a Path);

impl Export for File<'_> {
    fn export(&self, json: &str) -> Result<()> {
        let path = self.0;
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
        write()
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                crate::Error::from(e)
            })
            .context(format!("writing the report to {}", path.display()))
    }
}

/// Checks before the run that `-o PATH` can be written, so a typo is a usage error and
/// not an hour of stress with no report.
pub fn check_output_path(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(crate::Error::usage(format!(
            "--output {}: is a directory",
            path.display()
        )));
    }
    if !dir.is_dir() {
        return Err(crate::Error::usage(format!(
            "--output {}: directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}
