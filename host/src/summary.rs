//! `misbehave summary`: a fleet's reports as one table, stressor x host.
//!
//! The layout is what the `misbehave.fleet` roles fetch: `RESULTS/<host>/<stressor>-<stamp>.json`.
//! One row per report: stressor, host, run (the stamp), outcome, exit code, seconds of
//! stress, the main rate, peaks and errors. The main rate is the report's largest byte rate
//! (a rate named `*bytes`), else its operations per second: one rule for every stressor,
//! so a new stressor needs nothing here.
//!
//! A run that left no report has a row too where what ran it wrote
//! `RESULTS/<host>/<stressor>-<stamp>.dnr` (one line: why, e.g. the host was lost mid-run):
//! outcome `DNR: <why>`, the other cells empty.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use common::units;

/// The columns, in order, as the CSV header names them.
pub const COLUMNS: [&str; 9] = [
    "stressor",
    "host",
    "run",
    "outcome",
    "exit",
    "stress_s",
    "main_rate",
    "peaks",
    "errors",
];

/// What the table takes from a `misbehave.report/1`.
#[derive(Debug, Deserialize)]
struct Fields {
    tool: String,
    outcome: String,
    exit_code: i64,
    stress_s: f64,
    #[serde(default)]
    rates: BTreeMap<String, f64>,
    #[serde(default)]
    peaks: BTreeMap<String, f64>,
    #[serde(default)]
    errors: BTreeMap<String, u64>,
}

/// One row of the table, every cell as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub stressor: String,
    pub host: String,
    pub run: String,
    pub outcome: String,
    pub exit: String,
    pub stress_s: String,
    pub main_rate: String,
    pub peaks: String,
    pub errors: String,
}

impl Row {
    fn cells(&self) -> [&str; 9] {
        [
            &self.stressor,
            &self.host,
            &self.run,
            &self.outcome,
            &self.exit,
            &self.stress_s,
            &self.main_rate,
            &self.peaks,
            &self.errors,
        ]
    }
}

/// A value as people read it: bytes in powers of 1024 where the name says bytes, else a
/// count with a decimal prefix.
fn value(name: &str, v: f64) -> String {
    if name.ends_with("bytes") {
        units::bytes(v.max(0.0) as u64)
    } else {
        units::count(v)
    }
}

fn main_rate(rates: &BTreeMap<String, f64>) -> String {
    let fastest = rates
        .iter()
        .filter(|(k, _)| k.ends_with("bytes"))
        .max_by(|a, b| a.1.total_cmp(b.1));
    match (fastest, rates.get("ops")) {
        (Some((k, v)), _) => format!("{k} {}/s", value(k, *v)),
        (None, Some(ops)) => format!("ops {}/s", units::count(*ops)),
        (None, None) => "-".into(),
    }
}

fn joined<V>(m: &BTreeMap<String, V>, show: impl Fn(&str, &V) -> String) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {}", show(k, v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The row of one report file; a file that is not a report still gets a row that says so,
/// so that a lost or truncated report shows in the table instead of vanishing from it.
pub fn row(path: &Path, host: &str) -> Row {
    let stem = path
        .file_stem()
        .map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let (stressor, run) = match stem.rsplit_once('-') {
        Some((s, r)) if !s.is_empty() => (s.to_string(), r.to_string()),
        _ => (stem.clone(), String::new()),
    };
    let empty = |outcome: String| Row {
        stressor: stressor.clone(),
        host: host.to_string(),
        run: run.clone(),
        outcome,
        exit: String::new(),
        stress_s: String::new(),
        main_rate: String::new(),
        peaks: String::new(),
        errors: String::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return empty(format!("unreadable ({e})")),
    };
    // Another version's fields may mean something else: its row says so, not its values.
    if let Err(why) = misbehave_report::Head::of_report(&text) {
        return empty(why);
    }
    let head: Fields = match serde_json::from_str(&text) {
        Ok(h) => h,
        Err(e) => return empty(format!("not a report ({e})")),
    };
    Row {
        stressor: head.tool,
        host: host.to_string(),
        run,
        outcome: head.outcome,
        exit: head.exit_code.to_string(),
        stress_s: format!("{:.1}", head.stress_s),
        main_rate: main_rate(&head.rates),
        peaks: joined(&head.peaks, |k, v| value(k, *v)),
        errors: joined(&head.errors, |_, n| n.to_string()),
    }
}

/// The row of a run that left no report: its `.dnr` file's first line says why.
fn dnr_row(path: &Path, host: &str) -> Row {
    let why = std::fs::read_to_string(path).unwrap_or_else(|e| format!("unreadable ({e})"));
    let mut r = row(path, host);
    r.outcome = format!("DNR: {}", why.lines().next().unwrap_or("").trim());
    r
}

/// Every report under `results/<host>/*.json`, sorted by stressor, host and run.
pub fn collect(results: &Path) -> Result<Vec<Row>, String> {
    let entries = |d: &Path| -> Result<Vec<std::path::PathBuf>, String> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    let mut rows = Vec::new();
    for host_dir in entries(results)?.into_iter().filter(|p| p.is_dir()) {
        let host = host_dir
            .file_name()
            .map_or(String::new(), |h| h.to_string_lossy().into_owned());
        for f in entries(&host_dir)? {
            if f.is_file() && f.extension().is_some_and(|e| e == "json") {
                rows.push(row(&f, &host));
            } else if f.is_file() && f.extension().is_some_and(|e| e == "dnr") {
                rows.push(dnr_row(&f, &host));
            }
        }
    }
    rows.sort_by(|a, b| (&a.stressor, &a.host, &a.run).cmp(&(&b.stressor, &b.host, &b.run)));
    Ok(rows)
}

/// A Markdown table (a `|` inside a cell is escaped).
pub fn markdown(rows: &[Row]) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        COLUMNS.join(" | "),
        "---|".repeat(COLUMNS.len())
    );
    for r in rows {
        let cells: Vec<String> = r.cells().iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s
}

/// CSV with a header line (RFC 4180 quoting).
pub fn csv(rows: &[Row]) -> String {
    let mut s = COLUMNS.join(",") + "\n";
    for r in rows {
        let cells: Vec<String> = r.cells().iter().map(|c| crate::csv_field(c)).collect();
        s += &cells.join(",");
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_rate_is_the_fastest_byte_rate_else_ops() {
        let m: BTreeMap<String, f64> = [
            ("ops".into(), 5e6),
            ("read_bytes".into(), 2048.0),
            ("write_bytes".into(), 3.0 * 1024.0 * 1024.0),
        ]
        .into();
        assert_eq!(main_rate(&m), "write_bytes 3.00 MiB/s");
        let m: BTreeMap<String, f64> = [("ops".into(), 12_345.0)].into();
        assert_eq!(main_rate(&m), "ops 12.3k/s");
        assert_eq!(main_rate(&BTreeMap::new()), "-");
    }
}
