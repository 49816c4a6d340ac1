//! What people see: the live status line and the summary, both on stderr.
//!
//! Like hyperfine: the status line appears only when stderr is a terminal (a pipe or a log
//! file gets the summary alone), colour only when it is a terminal and NO_COLOR is unset,
//! and `--quiet` silences both. stdout is kept for the JSON report.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::data::{Kind, Metric, Unit, OPS};
use crate::report::{Report, Section, Show, Value};
use crate::supervisor::Progress;
use crate::units;
use misbehave_report::Outcome;

pub use crate::error::say;

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
    metrics: Vec<Metric>,
    last: Vec<u64>,
    last_t: Duration,
    drawn: bool,
}

impl Status {
    pub fn new(tool: &'static str, style: Style, quiet: bool, metrics: &[Metric]) -> Self {
        Status {
            tool,
            style,
            enabled: style.tty && !quiet,
            metrics: metrics.to_vec(),
            last: vec![0; metrics.len()],
            last_t: Duration::ZERO,
            drawn: false,
        }
    }
}

impl Progress for Status {
    /// Draws the line for one sample.
    fn tick(&mut self, now: Duration, deadline: Option<Duration>, live: usize, values: &[u64]) {
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
    fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

/// A value as people read it; None for what is not known.
fn show(v: &Value) -> Option<String> {
    Some(match v {
        Value::Count(n) => units::count(*n as f64),
        Value::Bytes(n) => units::bytes(*n),
        Value::Seconds(s) => format!("{s:.3}s"),
        Value::Percent(p) => format!("{p:.1}%"),
        Value::Number(v, unit) => format!("{v} {unit}"),
        Value::Text(t) => t.clone(),
        Value::Flag(b) => b.to_string(),
        Value::Missing => return None,
        Value::Records(rows) => format!("{} (see the JSON report)", rows.len()),
    })
}

/// A metric's value (or rate) as the status line prints it, by the value's unit.
fn metric_value(unit: &Value, v: f64) -> String {
    match unit {
        Value::Bytes(_) => units::bytes(v as u64),
        Value::Seconds(_) => format!("{:.1}s", v),
        _ => units::count(v),
    }
}

/// Rows in the order of their place: a handful of them, picked smallest first (a sort's code,
/// once per row type, weighs more than this on binaries held under 1 MiB).
fn in_order<K, V>(mut rows: Vec<(Show, K, V)>) -> Vec<(Show, K, V)> {
    let mut out = Vec::with_capacity(rows.len());
    while let Some(i) = (0..rows.len()).min_by_key(|&i| rows[i].0) {
        out.push(rows.remove(i));
    }
    out
}

/// The summary for people, printed on stderr at the end of a run: the outcome, the
/// workers, each metric with its rate or peak, latency, CPU, the stressor's findings,
/// errors, and where it ran. Drawn from the report alone, in the order and with the units
/// its entries keep ([`Show`]): internal clocks (nanosecond metrics), zero totals, missing
/// values and findings marked as shown elsewhere are left out (the JSON report has
/// everything).
pub fn summary(r: &Report, style: Style) -> String {
    let outcome = match r.outcome {
        Outcome::Completed => style.green(r.outcome.name()),
        Outcome::Interrupted => style.yellow(r.outcome.name()),
        Outcome::Failed => style.red(r.outcome.name()),
    };
    let head = format!(
        "{}: {} after {:.2}s ({}; teardown {:.0}ms)\n",
        style.bold(&r.tool),
        outcome,
        r.elapsed_s,
        r.stop_reason,
        r.teardown_s * 1000.0
    );
    let mut rows: Vec<(String, String)> = Vec::new();
    if r.left_behind > 0 {
        // Said apart from the head line too: a frozen or stuck process is the one thing in
        // the summary the reader has to act on.
        rows.push((
            "left behind".into(),
            style.red(&format!(
                "{} of the run's processes alive after teardown",
                r.left_behind
            )),
        ));
    }
    let w = &r.workers;
    rows.push((
        "workers".into(),
        format!(
            "{} started, {} exited, {} failed, {} killed ({} by OOM), {} respawned",
            w.started, w.exited, w.failed, w.killed, w.oom_killed, w.respawned
        ),
    ));
    // The metrics in their order: totals with their rate, levels as peaks.
    let mut metrics: Vec<(Show, &String, Option<String>)> = Vec::new();
    for (name, e) in &r.totals.counted {
        let Some(t) = e.value.as_f64() else { continue };
        let row = (t > 0.0 || name == OPS.name).then(|| {
            let rate = r
                .rates
                .get(name)
                .map(|v| format!(", {}/s", metric_value(&e.value, *v)))
                .unwrap_or_default();
            format!("{}{rate}", metric_value(&e.value, t))
        });
        metrics.push((e.show, name, row));
    }
    for (name, e) in &r.peaks {
        let row = e
            .value
            .as_f64()
            .filter(|&p| p > 0.0)
            .map(|p| format!("peak {}", metric_value(&e.value, p)));
        metrics.push((e.show, name, row));
    }
    metrics.retain(|(show, _, _)| matches!(show, Show::Metric(_)));
    rows.extend(
        in_order(metrics)
            .into_iter()
            .filter_map(|(_, name, row)| Some((name.clone(), row?))),
    );
    // The stressor's own totals and peaks, in the order it gave them.
    let shown = |s: &Section| -> Vec<(Show, String, String)> {
        s.iter()
            .filter(|(_, e)| matches!(e.show, Show::Finding(_)))
            .filter_map(|(k, e)| Some((e.show, k.clone(), show(&e.value)?)))
            .collect()
    };
    let mut found = shown(&r.totals.counted);
    found.extend(shown(&r.peaks));
    rows.extend(in_order(found).into_iter().map(|(_, k, v)| (k, v)));
    for (name, l) in &r.latency {
        rows.push((
            format!("{name}_latency"),
            format!(
                "p50 {}  p99 {}  max {}",
                units::micros(l.p50_us),
                units::micros(l.p99_us),
                units::micros(l.max_us)
            ),
        ));
    }
    let steal = r
        .totals
        .steal_pct
        .map(|s| format!(", guest steal {s:.1}%"))
        .unwrap_or_default();
    rows.push((
        "cpu".into(),
        format!("{:.2}s of CPU{steal}", r.totals.cpu_s),
    ));
    rows.extend(
        in_order(shown(&r.details))
            .into_iter()
            .map(|(_, k, v)| (k, v)),
    );
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
