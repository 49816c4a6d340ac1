//! What people see: the live status line and the summary, both on stderr.
//!
//! Like hyperfine: the status line appears only when stderr is a terminal (a pipe or a log
//! file gets the summary alone), colour only when it is a terminal and NO_COLOR is unset,
//! and `--quiet` silences both. stdout is kept for the JSON report.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::Value;

use crate::report::Report;
use crate::stressor::{Kind, Metric, Unit};
use crate::units;

/// How stderr may be written to.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub tty: bool,
    pub color: bool,
}

impl Style {
    pub fn detect() -> Self {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
            || std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Style {
            tty,
            color: tty && !no_color,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
}

/// Prints one line on stderr in a single write(2): lines from several worker processes
/// then never interleave mid-line (`eprintln!` with arguments writes piece by piece).
pub fn say(line: &str) {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}

fn fmt_value(m: &Metric, v: f64) -> String {
    match m.unit {
        Unit::Bytes => units::bytes(v as u64),
        Unit::Nanos => format!("{:.1}s", v / 1e9),
        Unit::Count => units::count(v),
    }
}

/// The live one-line status, redrawn once a second while the run lasts.
pub struct Status {
    tool: &'static str,
    style: Style,
    enabled: bool,
    metrics: &'static [Metric],
    last: Vec<u64>,
    last_t: Duration,
    drawn: bool,
}

impl Status {
    pub fn new(tool: &'static str, style: Style, quiet: bool, metrics: &'static [Metric]) -> Self {
        Status {
            tool,
            style,
            enabled: style.tty && !quiet,
            metrics,
            last: vec![0; metrics.len()],
            last_t: Duration::ZERO,
            drawn: false,
        }
    }

    /// Draws the line for one sample.
    pub fn tick(&mut self, now: Duration, deadline: Option<Duration>, live: usize, values: &[u64]) {
        if !self.enabled {
            return;
        }
        let dt = (now - self.last_t).as_secs_f64().max(1e-3);
        let mut line = format!(
            "{} {}/{} workers {live}",
            self.style.bold(self.tool),
            units::duration(Duration::from_secs(now.as_secs())),
            deadline.map_or("forever".into(), units::duration),
        );
        for (i, m) in self.metrics.iter().enumerate() {
            let v = values[i];
            match (m.kind, m.unit) {
                (Kind::Total, Unit::Nanos) => {}
                (Kind::Total, _) => {
                    let rate = v.saturating_sub(self.last[i]) as f64 / dt;
                    line += &format!(
                        "  {} {} ({}/s)",
                        m.name,
                        fmt_value(m, v as f64),
                        fmt_value(m, rate)
                    );
                }
                (Kind::Gauge, _) => line += &format!("  {} {}", m.name, fmt_value(m, v as f64)),
            }
        }
        self.last.copy_from_slice(values);
        self.last_t = now;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    /// Removes the line before anything else is printed.
    pub fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// The summary for people, printed on stderr at the end of a run: the outcome, the
/// workers, each metric with its rate or peak, CPU, the stressor's own findings, errors,
/// and where it ran. Zero counts, internal clocks and anything already shown are left out
/// (the JSON report has everything).
pub fn summary(r: &Report, metrics: &[Metric], style: Style) -> String {
    let outcome = match r.outcome {
        "completed" => style.green(r.outcome),
        "interrupted" => style.yellow(r.outcome),
        _ => style.red(r.outcome),
    };
    let head = format!(
        "{}: {} after {:.2}s ({}; teardown {:.0}ms)\n",
        style.bold(r.tool),
        outcome,
        r.elapsed_s,
        r.stop_reason,
        r.teardown_s * 1000.0
    );
    let mut rows: Vec<(String, String)> = Vec::new();
    let w = &r.workers;
    rows.push((
        "workers".into(),
        format!(
            "{} started, {} exited, {} failed, {} killed ({} by OOM), {} respawned",
            w.started, w.exited, w.failed, w.killed, w.oom_killed, w.respawned
        ),
    ));
    let mut shown: Vec<String> = vec!["workers".into()];
    for m in metrics {
        let name = m.report_name();
        shown.push(name.clone());
        let row = match m.kind {
            Kind::Total if m.unit == Unit::Nanos => None,
            Kind::Total => r
                .totals
                .get(&name)
                .and_then(num)
                .filter(|&t| t > 0.0 || name == "ops")
                .map(|t| {
                    let rate = r
                        .rates
                        .get(&name)
                        .and_then(num)
                        .map(|v| format!(", {}/s", fmt_value(m, v)))
                        .unwrap_or_default();
                    format!("{}{rate}", fmt_value(m, t))
                }),
            Kind::Gauge => r
                .peaks
                .get(&name)
                .and_then(num)
                .filter(|&p| p > 0.0)
                .map(|p| format!("peak {}", fmt_value(m, p))),
        };
        if let Some(v) = row {
            rows.push((m.name.to_string(), v));
        }
    }
    if let Some(c) = r.totals.get("cpu_s").and_then(num) {
        let steal = r
            .totals
            .get("steal_pct")
            .and_then(num)
            .map(|s| format!(", guest steal {s:.1}%"))
            .unwrap_or_default();
        rows.push(("cpu".into(), format!("{c:.2}s of CPU{steal}")));
    }
    for (k, v) in &r.details {
        // Already in the workers row, or a gauge's peak already shown.
        let repeated = ["oom_killed", "respawned", "killed", "failed"].contains(&k.as_str())
            || k.strip_prefix("peak_")
                .is_some_and(|g| r.peaks.contains_key(g));
        if repeated || shown.iter().any(|s| s == k) || r.peaks.contains_key(k) {
            continue;
        }
        let text = match v {
            Value::Number(n) if k.ends_with("_bytes") => {
                units::bytes(n.as_f64().unwrap_or(0.0) as u64)
            }
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        rows.push((k.clone(), text));
    }
    if !r.errors.is_empty() {
        let e: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        rows.push(("errors".into(), e.join(", ")));
    }
    rows.push(("where".into(), r.host.virtualization.describe()));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = head;
    for (k, v) in rows {
        out += &format!("  {k:<width$}  {v}\n");
    }
    out
}
