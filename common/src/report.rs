//! The report: one schema (`misbehave.report/1`) for every binary, published as a JSON
//! Schema in `common/schema/` and documented in `docs/report.md`.
//!
//! The types are `misbehave-report`'s (`report/`), shared with the host tools; this module
//! makes a report of the supervisor's [`RunData`], the stressor's metrics and latency
//! histograms, and the typed [`Findings`] the stressor returns; nothing patches it
//! afterwards. Written as JSON to stdout (`--json`) and/or to a file (`-o`), also when the run was interrupted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub use misbehave_report::{
    map_of, Effective, Entry, Latency, Params, PerWorker, Plan, Report, Requested, Sample, Section,
    Show, Totals, Value, PLAN_SCHEMA, SCHEMA,
};

use crate::data::{round3, Finding, Findings, Found, Kind, Metric, RunData, Unit};
use crate::error::{Context, Result};
use crate::hist::Summary;
use crate::host::Host;
use crate::time;

/// The target triple this binary was built for.
pub const TARGET: &str = env!("MISBEHAVE_TARGET");
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Percentiles in microseconds, as the report gives them.
pub fn latency(s: &Summary) -> Latency {
    let us = |ns: u64| round3(ns as f64 / 1e3);
    Latency {
        count: s.count,
        min_us: us(s.min_ns),
        mean_us: us(s.mean_ns),
        p50_us: us(s.p50_ns),
        p90_us: us(s.p90_ns),
        p99_us: us(s.p99_ns),
        p99_9_us: us(s.p99_9_ns),
        max_us: us(s.max_ns),
    }
}

/// The report's parts, made of a run: everything but the host and the parameters.
pub struct Parts<'a> {
    pub metrics: &'a [Metric],
    pub latencies: &'a [&'static str],
    pub run: &'a RunData,
    pub findings: &'a Findings,
}

/// A finding as an entry: shown in the summary in the order given, unless it is for the
/// report only.
fn finding(rank: usize, f: &Finding) -> Entry {
    let show = if f.summary {
        Show::Finding(rank as u16)
    } else {
        Show::Hidden
    };
    Entry::new(f.value.value(), show)
}

/// Percentiles per histogram name, of those that have any.
fn latencies(names: &[&'static str], of: &[Option<Summary>]) -> BTreeMap<String, Latency> {
    map_of(
        names
            .iter()
            .zip(of)
            .filter_map(|(name, s)| Some((name.to_string(), latency(s.as_ref()?)))),
    )
}

/// The report of a run.
pub fn make(tool: &'static str, host: Host, params: Params, parts: Parts) -> Report {
    let Parts {
        metrics,
        latencies: names,
        run,
        findings,
    } = parts;
    let per_s = |v: u64| round3(run.per_s(v as f64));
    let mut counted = Section::new();
    let mut rates = BTreeMap::new();
    let mut peaks = Section::new();
    for (i, (m, v)) in metrics.iter().zip(&run.totals).enumerate() {
        if m.kind == Kind::Total {
            // An internal clock (nanoseconds) is reported, not shown.
            let show = if m.unit == Unit::Nanos {
                Show::Hidden
            } else {
                Show::Metric(i as u16)
            };
            counted.insert(m.report_name(), Entry::new(m.value(*v), show));
            if m.unit != Unit::Nanos {
                rates.insert(m.report_name(), per_s(*v));
            }
        }
    }
    for (i, (m, v)) in metrics.iter().zip(&run.peaks).enumerate() {
        if m.kind == Kind::Gauge {
            peaks.insert(
                m.report_name(),
                Entry::new(m.value(*v), Show::Metric(i as u16)),
            );
        }
    }
    let mut rank = 0;
    let mut next = || {
        rank += 1;
        rank
    };
    for f in &findings.totals {
        let e = finding(next(), f);
        if let Found::Count(n) = f.value {
            rates.insert(f.name.into(), per_s(n));
        }
        put(&mut counted, f.name, e);
    }
    for f in &findings.peaks {
        let e = finding(next(), f);
        put(&mut peaks, f.name, e);
    }
    let details = map_of(
        findings
            .details
            .iter()
            .map(|f| (f.name.to_string(), finding(next(), f))),
    );
    let samples = run
        .samples
        .iter()
        .map(|s| Sample {
            t: s.t,
            latency: (!names.is_empty()).then(|| latencies(names, &s.latency)),
            values: map_of(
                metrics
                    .iter()
                    .zip(&s.values)
                    .map(|(m, v)| (m.report_name(), m.value(*v))),
            ),
        })
        .collect();
    let per_worker = run
        .slots
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let mut values = map_of(
                metrics
                    .iter()
                    .zip(&slot.counters)
                    .filter(|(m, _)| m.kind == Kind::Total)
                    .map(|(m, v)| (m.report_name(), m.value(*v))),
            );
            for f in findings.per_worker.get(i).into_iter().flatten() {
                values.insert(f.name.into(), f.value.value());
            }
            PerWorker {
                index: i as u64,
                respawns: slot.respawns.into(),
                ops_per_s: per_s(slot.counters[0]),
                values,
            }
        })
        .collect();
    Report {
        schema: SCHEMA.into(),
        tool: tool.into(),
        version: VERSION.into(),
        target: TARGET.into(),
        host,
        params,
        started_at: time::rfc3339(run.started_at),
        ended_at: time::rfc3339(run.ended_at),
        elapsed_s: round3(run.elapsed_s),
        stress_s: round3(run.stress_s),
        teardown_s: round3(run.teardown_s),
        teardown_method: run.teardown_method.clone(),
        left_behind: run.left_behind,
        outcome: run.outcome.into(),
        stop_reason: run.stop_reason.clone(),
        exit_code: run.outcome.exit_code(),
        workers: run.workers.clone(),
        totals: Totals {
            cpu_s: round3(run.cpu_s),
            steal_s: run.steal.map(|(s, _)| round3(s)),
            steal_pct: run.steal.map(|(_, pct)| round3(pct)),
            counted,
        },
        rates,
        peaks,
        latency: latencies(names, &run.latency),
        errors: map_of(run.errors.iter().cloned()),
        samples,
        per_worker,
        details,
    }
}

/// Puts a finding into a section. One that replaces a metric's value (a peak reached
/// between two samples) keeps the metric's place in the summary.
fn put(section: &mut Section, name: &str, mut e: Entry) {
    if let Some(old) = section.get(name) {
        if matches!(old.show, Show::Metric(_)) {
            e.show = old.show;
        }
    }
    section.insert(name.to_string(), e);
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
