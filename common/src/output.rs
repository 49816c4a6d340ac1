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

/// The summary for people, printed on stderr at the end of a run.
pub fn summary(r: &Report, metrics: &[Metric], style: Style) -> String {
    let mut out = String::new();
    let outcome = match r.outcome {
        "completed" => style.green(r.outcome),
        "interrupted" => style.yellow(r.outcome),
        _ => style.red(r.outcome),
    };
    out += &format!(
        "{}: {} after {:.2}s ({}; teardown {:.0}ms)\n",
        style.bold(r.tool),
        outcome,
        r.elapsed_s,
        r.stop_reason,
        r.teardown_s * 1000.0
    );
    let w = &r.workers;
    out += &format!(
        "  {:<10} {} started, {} exited, {} failed, {} killed ({} by OOM), {} respawned\n",
        "workers", w.started, w.exited, w.failed, w.killed, w.oom_killed, w.respawned
    );
    for m in metrics {
        let name = m.report_name();
        match m.kind {
            Kind::Total => {
                let Some(t) = r.totals.get(&name).and_then(num) else {
                    continue;
                };
                let raw = if m.unit == Unit::Nanos { t * 1e9 } else { t };
                let rate = r
                    .rates
                    .get(&name)
                    .and_then(num)
                    .map(|v| format!(", {}/s", fmt_value(m, v)))
                    .unwrap_or_default();
                out += &format!("  {:<10} {}{rate}\n", m.name, fmt_value(m, raw));
            }
            Kind::Gauge => {
                if let Some(p) = r.peaks.get(&name).and_then(num) {
                    out += &format!("  {:<10} peak {}\n", m.name, fmt_value(m, p));
                }
            }
        }
    }
    if let Some(c) = r.totals.get("cpu_s").and_then(num) {
        out += &format!("  {:<10} {c:.2}s of CPU", "cpu");
        if let Some(s) = r.totals.get("steal_pct").and_then(num) {
            out += &format!(", guest steal {s:.1}%");
        }
        out += "\n";
    }
    for (k, v) in &r.details {
        let shown = match v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        out += &format!("  {k:<10} {shown}\n");
    }
    if !r.errors.is_empty() {
        let e: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out += &format!("  {:<10} {}\n", "errors", e.join(", "));
    }
    out += &format!("  {:<10} {}\n", "where", r.host.virtualization.describe());
    out
}
