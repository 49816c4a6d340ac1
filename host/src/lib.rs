//! `misbehave-host`: tools for the operator's machine (not shipped into guests, not
//! size-bound). `compare` reads sets of `probe` reports, a baseline and one per stress test,
//! and computes the isolation paper's table: per stress test and per kind of work, the
//! percent degradation of the well-behaved guests (mean and worst) and of the misbehaving
//! one, `DNR` where a guest reported nothing or its run failed. A probe report that says
//! per kind of work whether it failed (`details.kinds[].failed`: every worker of the kind
//! died) makes only the failed kinds DNR, with the reason in a footnote; one that does not
//! (an older probe) makes every kind of a failed run DNR.
//!
//! Degradation of guest `h` in test `T` against the baseline `B`, per kind of work:
//! - within-SLO ("good") share `G = good / offered`: `(G_B - G_T) / G_B * 100`;
//! - p99 latency `P`: `(P_T - P_B) / P_B * 100`.
//!
//! A positive number is a loss; a negative one means the guest did better than in the
//! baseline (noise, usually). Good = the mean over the well-behaved guests that reported,
//! worst = the largest of them; Bad = the misbehaving guest's own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use misbehave_report::{Head, Outcome};
use serde_json::{json, Value};

pub mod cli;
pub mod platforms;
pub mod summary;

/// The schema of `compare --format json`.
pub const SCHEMA: &str = "misbehave.compare/1";

/// What compare needs of one probe report: per kind of work, the good share and the p99.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRun {
    pub path: PathBuf,
    pub started_at: String,
    /// `outcome` is `failed` and the report does not say which kinds failed (no
    /// `kinds[].failed`: an older probe): every kind counts as DNR.
    pub failed: bool,
    /// kind -> (good share in percent, p99 in microseconds)
    pub kinds: BTreeMap<String, (Option<f64>, Option<f64>)>,
    /// kind -> why it failed (`kinds[].failed_reason`: `oom_killed`, ...): the kinds the
    /// report says died, DNR; the others keep their numbers.
    pub failed_kinds: BTreeMap<String, String>,
}

impl ProbeRun {
    /// Why `kind` of this run is DNR although the run reported (None: it has numbers).
    pub fn dnr_reason(&self, kind: &str) -> Option<String> {
        if self.failed {
            return Some("the run failed".into());
        }
        self.failed_kinds.get(kind).cloned()
    }
}

/// Reads a report; Ok(None) when it is JSON of another tool (a bomb's report beside the
/// probe's), Err when it is not a misbehave report at all.
pub fn read_report(path: &Path) -> Result<Option<ProbeRun>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_report(path, &text)
}

/// The part of [`read_report`] after reading the file.
pub fn parse_report(path: &Path, text: &str) -> Result<Option<ProbeRun>, String> {
    let not_json = |e: serde_json::Error| format!("{}: not JSON ({e})", path.display());
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(not_json)?;
    let head = Head::of_report(text).map_err(|e| format!("{}: {e}", path.display()))?;
    if head.tool != <probe::Probe as common::Stressor>::NAME {
        return Ok(None);
    }
    let run: misbehave_report::probe::Run = serde_json::from_str(text)
        .map_err(|e| format!("{}: not a probe report ({e})", path.display()))?;
    let mut kinds = BTreeMap::new();
    let mut failed_kinds = BTreeMap::new();
    let mut per_kind = false;
    for k in &run.details.kinds {
        if let Some(failed) = k.failed {
            per_kind = true;
            if failed {
                let why = k.failed_reason.as_deref().unwrap_or("failed");
                failed_kinds.insert(k.kind.clone(), why.to_string());
            }
        }
        kinds.insert(k.kind.clone(), (k.good_share(), k.p99_us));
    }
    Ok(Some(ProbeRun {
        path: path.to_path_buf(),
        started_at: run.started_at,
        failed: run.outcome == Some(Outcome::Failed) && !per_kind,
        kinds,
        failed_kinds,
    }))
}

/// Every report, by set and host.
#[derive(Debug, Default)]
pub struct Results {
    /// set -> host -> the newest probe run of that host in that set
    pub sets: BTreeMap<String, BTreeMap<String, ProbeRun>>,
    /// set -> the misbehaving host named by a `BAD` file in the set's directory
    pub bad_files: BTreeMap<String, String>,
    /// Every host seen in any set (a host missing from a set is DNR there).
    pub hosts: BTreeSet<String>,
    /// set -> host -> why that host has no probe report there: the one line of a `DNR` file
    /// in the host's directory of the set, written by what ran it (a host lost mid-phase,
    /// a guest that died), where no report could say it.
    pub missing: BTreeMap<String, BTreeMap<String, String>>,
    /// What a person should know (files skipped, several runs of one host).
    pub notes: Vec<String>,
}

impl Results {
    /// Adds one run of `host` in `set`; the newest (by `started_at`) wins.
    pub fn add(&mut self, set: &str, host: &str, run: ProbeRun) {
        self.hosts.insert(host.to_string());
        let hosts = self.sets.entry(set.to_string()).or_default();
        match hosts.get(host) {
            Some(old) => {
                self.notes.push(format!(
                    "{set}/{host}: several probe reports, the newest is used ({} over {})",
                    if run.started_at > old.started_at {
                        &run.path
                    } else {
                        &old.path
                    }
                    .display(),
                    if run.started_at > old.started_at {
                        &old.path
                    } else {
                        &run.path
                    }
                    .display(),
                ));
                if run.started_at > old.started_at {
                    hosts.insert(host.to_string(), run);
                }
            }
            None => {
                hosts.insert(host.to_string(), run);
            }
        }
    }

    /// Why `host` has no probe report in `set`, where a `DNR` file says.
    pub fn missing_reason(&self, set: &str, host: &str) -> Option<&str> {
        self.missing.get(set)?.get(host).map(String::as_str)
    }

    /// Makes a set known even when no host reported in it (every guest is DNR there).
    pub fn touch(&mut self, set: &str) {
        self.sets.entry(set.to_string()).or_default();
    }

    /// Reads a results directory: `DIR/<set>/<host>/*.json` (any depth below the host),
    /// and `DIR/<set>/BAD` naming the misbehaving host of that set.
    pub fn read_dir(&mut self, dir: &Path) -> Result<(), String> {
        let sets = sorted_entries(dir)?;
        for set_dir in sets.into_iter().filter(|p| p.is_dir()) {
            let set = file_name(&set_dir);
            self.touch(&set);
            let bad = set_dir.join("BAD");
            if bad.is_file() {
                let name = std::fs::read_to_string(&bad)
                    .map_err(|e| format!("{}: {e}", bad.display()))?
                    .trim()
                    .to_string();
                if !name.is_empty() {
                    self.hosts.insert(name.clone());
                    self.bad_files.insert(set.clone(), name);
                }
            }
            for host_dir in sorted_entries(&set_dir)?.into_iter().filter(|p| p.is_dir()) {
                let host = file_name(&host_dir);
                self.hosts.insert(host.clone());
                let dnr = host_dir.join("DNR");
                if dnr.is_file() {
                    let why = std::fs::read_to_string(&dnr)
                        .map_err(|e| format!("{}: {e}", dnr.display()))?;
                    let why = why.lines().next().unwrap_or("").trim();
                    if !why.is_empty() {
                        self.missing
                            .entry(set.clone())
                            .or_default()
                            .insert(host.clone(), why.to_string());
                    }
                }
                let mut files = Vec::new();
                json_files(&host_dir, &mut files, 0)?;
                for f in files {
                    match read_report(&f) {
                        Ok(Some(run)) => self.add(&set, &host, run),
                        Ok(None) => {}
                        Err(e) => self.notes.push(format!("skipped {e}")),
                    }
                }
            }
        }
        Ok(())
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !file_name(p).starts_with('.'))
        .collect();
    v.sort();
    Ok(v)
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), String> {
    if depth > 4 {
        return Ok(());
    }
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            json_files(&p, out, depth + 1)?;
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    Ok(())
}

/// The paper's stress tests, in its table's order: set names that mean each (our binaries'
/// names and short ones) and the row label.
pub const PAPER_TESTS: [(&[&str], &str); 6] = [
    (&["memory", "mem", "membomb"], "Memory"),
    (&["fork", "forkbomb"], "Fork"),
    (&["cpu", "cpubomb"], "CPU"),
    (&["disk", "diskthrash"], "Disk intensive"),
    (
        &["net-send", "netflood-send", "send"],
        "Network, server transmits",
    ),
    (
        &["net-recv", "net-sink", "netflood-sink", "sink", "recv"],
        "Network, server receives",
    ),
];

/// The row label of a set and its place in the table.
pub fn test_label(set: &str) -> (usize, String) {
    let s = set.to_ascii_lowercase();
    for (i, (names, label)) in PAPER_TESTS.iter().enumerate() {
        if names.contains(&s.as_str()) {
            return (i, label.to_string());
        }
    }
    (PAPER_TESTS.len(), set.to_string())
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// The within-SLO share (the paper's "good responses").
    Good,
    /// p99 latency.
    P99,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Good => "good_share",
            Measure::P99 => "p99_latency",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Measure::Good => "within-SLO share",
            Measure::P99 => "p99 latency",
        }
    }
}

/// Percent degradation of `test` against `base` (None when either is missing or the base is
/// zero).
pub fn degradation(m: Measure, base: Option<f64>, test: Option<f64>) -> Option<f64> {
    let (b, t) = (base?, test?);
    if b <= 0.0 {
        return None;
    }
    Some(match m {
        Measure::Good => (b - t) / b * 100.0,
        Measure::P99 => (t - b) / b * 100.0,
    })
}

/// Rounded to two decimals, as every output gives it.
pub fn r2(v: f64) -> f64 {
    let r = (v * 100.0).round() / 100.0;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// A set's name without its repetition, and the repetition: `cpu.r3` is the third run of
/// the stress test `cpu`, `cpu` its first.
pub fn repetition(set: &str) -> (&str, u32) {
    if let Some((name, k)) = set.rsplit_once(".r") {
        match k.parse::<u32>() {
            Ok(n) if n >= 2 && !name.is_empty() && !k.starts_with(['0', '+']) => return (name, n),
            _ => {}
        }
    }
    (set, 1)
}

/// The smallest and the largest of `v` (None for none).
fn span(v: &[f64]) -> Option<(f64, f64)> {
    let lo = v.iter().copied().reduce(f64::min)?;
    let hi = v.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// One row of the table: a stress test, a kind of work, a measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub set: String,
    pub label: String,
    pub kind: String,
    pub measure: Measure,
    pub bad_host: String,
    /// Mean over the well-behaved guests that reported (None: none did: DNR).
    pub good_mean: Option<f64>,
    pub good_worst: Option<f64>,
    pub good_reported: usize,
    pub good_hosts: usize,
    /// The misbehaving guest's own (None: DNR).
    pub bad: Option<f64>,
    /// Every guest's degradation (None: DNR), the mean over the repetitions.
    pub per_host: BTreeMap<String, Option<f64>>,
    /// Repetitions of the stress test that were run (its sets `S`, `S.r2`, ...).
    pub repeats: usize,
    /// Over the repetitions (two or more): the lowest and highest mean of the well-behaved
    /// guests, and of the misbehaving one.
    pub good_span: Option<(f64, f64)>,
    pub bad_span: Option<(f64, f64)>,
    /// The baseline's own noise for this kind and measure: the largest degradation of one
    /// baseline repetition against the mean of all of them, over every guest (None: one
    /// baseline only).
    pub noise: Option<f64>,
    /// Why a guest is DNR where its run or this kind of it failed ("mem on web2 in
    /// memory: oom_killed"); a guest missing a report has one where a `DNR` file says why.
    pub per_host_dnr_reason: BTreeMap<String, String>,
    /// Why the Good cells are DNR, where failures made them so (the well-behaved guests'
    /// reasons, `; `-separated).
    pub good_dnr_reason: Option<String>,
    /// Why the Bad cell is DNR, where a failure made it so.
    pub bad_dnr_reason: Option<String>,
}

impl Row {
    /// Whether `v` stands out of the baseline's noise (None: no noise band, or DNR).
    pub fn significant(&self, v: Option<f64>) -> Option<bool> {
        Some(v?.abs() > self.noise?)
    }
}

/// The whole comparison.
#[derive(Debug, Clone)]
pub struct Table {
    pub baseline: String,
    /// Repetitions of the baseline.
    pub baselines: usize,
    pub kinds: Vec<String>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// Computes the table. `bad` names the misbehaving host unless a set's `BAD` file does.
/// Repetitions of a set (`S.r2`, `S.r3`, ...) are taken together: each guest's baseline is
/// the mean over the baseline's repetitions, each cell the mean over the stress test's.
pub fn compare(res: &Results, baseline: &str, bad: Option<&str>) -> Result<Table, String> {
    // Each set under its stress test, in the order of its repetitions.
    let mut groups: BTreeMap<&str, Vec<(u32, &String)>> = BTreeMap::new();
    for set in res.sets.keys() {
        let (name, k) = repetition(set);
        groups.entry(name).or_default().push((k, set));
    }
    for g in groups.values_mut() {
        g.sort();
    }
    let base_sets: Vec<&String> = groups
        .get(baseline)
        .ok_or_else(|| format!("no baseline set `{baseline}` (name it with --baseline)"))?
        .iter()
        .map(|(_, s)| *s)
        .collect();
    let bases: Vec<&BTreeMap<String, ProbeRun>> = base_sets.iter().map(|s| &res.sets[*s]).collect();
    if bases.iter().all(|b| b.is_empty()) {
        return Err(format!(
            "the baseline set `{baseline}` holds no probe report"
        ));
    }
    let mut tests: Vec<(usize, &str, String)> = groups
        .keys()
        .filter(|s| **s != baseline)
        .map(|s| {
            let (i, l) = test_label(s);
            (i, *s, l)
        })
        .collect();
    if tests.is_empty() {
        return Err("no stress test set beside the baseline".into());
    }
    tests.sort();
    // Kinds in probe's order.
    let mut kinds: Vec<String> = Vec::new();
    for w in probe::WORKS {
        if bases
            .iter()
            .any(|b| b.values().any(|r| r.kinds.contains_key(w.name())))
        {
            kinds.push(w.name().to_string());
        }
    }
    let measured = |r: Option<&ProbeRun>, kind: &str, m: Measure| {
        r.filter(|r| r.dnr_reason(kind).is_none())
            .and_then(|r| r.kinds.get(kind))
            .and_then(|&(g, p)| match m {
                Measure::Good => g,
                Measure::P99 => p,
            })
    };
    let mut rows = Vec::new();
    let mut notes = res.notes.clone();
    if bases.len() == 1 && groups.values().any(|g| g.len() > 1) {
        notes.push(format!(
            "one run of `{baseline}`: no noise band (repeat the baseline to see which cells stand out)"
        ));
    }
    for (_, test, label) in &tests {
        let sets: Vec<&String> = groups[test].iter().map(|(_, s)| *s).collect();
        let mut bad_hosts: Vec<String> = Vec::new();
        for set in &sets {
            let b = match (res.bad_files.get(*set), bad) {
                (Some(b), _) => b.clone(),
                (None, Some(b)) => b.to_string(),
                (None, None) => {
                    return Err(format!(
                    "which guest misbehaved in `{set}`? Give --bad HOST or put its name in {set}/BAD"
                ))
                }
            };
            if !bad_hosts.contains(&b) {
                bad_hosts.push(b);
            }
        }
        if bad_hosts.len() > 1 {
            return Err(format!(
                "the repetitions of `{test}` name different misbehaving guests: {}",
                bad_hosts.join(", ")
            ));
        }
        let bad_host = bad_hosts.remove(0);
        if !res.sets.values().any(|hosts| hosts.contains_key(&bad_host)) {
            let n = format!("{bad_host} (named as misbehaving) has no probe report in any set");
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
        for kind in &kinds {
            for m in [Measure::Good, Measure::P99] {
                // Each guest's baseline: the mean over the baseline's repetitions.
                let base: BTreeMap<&String, Option<f64>> = res
                    .hosts
                    .iter()
                    .map(|h| {
                        let v: Vec<f64> = bases
                            .iter()
                            .filter_map(|b| measured(b.get(h), kind, m))
                            .collect();
                        (h, mean(&v))
                    })
                    .collect();
                let noise = (bases.len() > 1)
                    .then(|| {
                        bases
                            .iter()
                            .flat_map(|b| {
                                res.hosts.iter().filter_map(|h| {
                                    degradation(m, base[h], measured(b.get(h), kind, m))
                                })
                            })
                            .map(f64::abs)
                            .reduce(f64::max)
                    })
                    .flatten();
                // Per repetition, per guest.
                let per_rep: Vec<BTreeMap<&String, Option<f64>>> = sets
                    .iter()
                    .map(|set| {
                        let runs = &res.sets[*set];
                        res.hosts
                            .iter()
                            .map(|h| (h, degradation(m, base[h], measured(runs.get(h), kind, m))))
                            .collect()
                    })
                    .collect();
                let per_host: BTreeMap<String, Option<f64>> = res
                    .hosts
                    .iter()
                    .map(|h| {
                        let v: Vec<f64> = per_rep.iter().filter_map(|r| r[h]).collect();
                        (h.clone(), mean(&v))
                    })
                    .collect();
                // Why a guest with no number is DNR, where a failure made it so.
                let mut per_host_dnr_reason = BTreeMap::new();
                for h in per_host.iter().filter(|(_, v)| v.is_none()).map(|(h, _)| h) {
                    let why: Vec<String> = base_sets
                        .iter()
                        .chain(&sets)
                        .filter_map(|set| {
                            let w = match res.sets[*set].get(h) {
                                Some(run) => run.dnr_reason(kind)?,
                                None => res.missing_reason(set, h)?.to_string(),
                            };
                            Some(format!("{kind} on {h} in {set}: {w}"))
                        })
                        .collect();
                    if !why.is_empty() {
                        per_host_dnr_reason.insert(h.clone(), why.join("; "));
                    }
                }
                let good: Vec<f64> = per_host
                    .iter()
                    .filter(|(h, _)| **h != bad_host)
                    .filter_map(|(_, v)| *v)
                    .collect();
                let good_why: Vec<&str> = per_host_dnr_reason
                    .iter()
                    .filter(|(h, _)| **h != bad_host)
                    .map(|(_, w)| w.as_str())
                    .collect();
                let good_dnr_reason =
                    (good.is_empty() && !good_why.is_empty()).then(|| good_why.join("; "));
                let bad_dnr_reason = per_host_dnr_reason.get(&bad_host).cloned();
                let good_by_rep: Vec<f64> = per_rep
                    .iter()
                    .filter_map(|r| {
                        let v: Vec<f64> = r
                            .iter()
                            .filter(|(h, _)| ***h != bad_host)
                            .filter_map(|(_, v)| *v)
                            .collect();
                        mean(&v)
                    })
                    .collect();
                let bad_by_rep: Vec<f64> = per_rep
                    .iter()
                    .filter_map(|r| r.get(&bad_host).copied().flatten())
                    .collect();
                let several = sets.len() > 1;
                rows.push(Row {
                    set: test.to_string(),
                    label: label.clone(),
                    kind: kind.clone(),
                    measure: m,
                    bad_host: bad_host.clone(),
                    good_mean: mean(&good),
                    good_worst: good.iter().copied().reduce(f64::max),
                    good_reported: good.len(),
                    good_hosts: res.hosts.iter().filter(|h| **h != bad_host).count(),
                    bad: per_host.get(&bad_host).copied().flatten(),
                    per_host,
                    repeats: sets.len(),
                    good_span: span(&good_by_rep).filter(|_| several),
                    bad_span: span(&bad_by_rep).filter(|_| several),
                    noise,
                    per_host_dnr_reason,
                    good_dnr_reason,
                    bad_dnr_reason,
                });
            }
        }
        for set in &sets {
            let runs = &res.sets[*set];
            for h in &res.hosts {
                if !runs.contains_key(h) {
                    notes.push(match res.missing_reason(set, h) {
                        Some(why) => format!("{set}: no probe report from {h}: {why} (DNR)"),
                        None => format!("{set}: no probe report from {h} (DNR)"),
                    });
                } else if runs[h].failed {
                    notes.push(format!("{set}: the probe run of {h} failed (DNR)"));
                } else {
                    for (kind, why) in &runs[h].failed_kinds {
                        notes.push(format!(
                            "{set}: the {kind} work of {h} died ({why}): DNR for {kind}"
                        ));
                    }
                }
            }
        }
        if test == &tests[0].1 {
            for h in &res.hosts {
                if bases.iter().all(|b| !b.contains_key(h)) {
                    notes.push(format!(
                        "{baseline}: no baseline from {h}: nothing to compare it with (DNR)"
                    ));
                }
            }
            for set in &base_sets {
                for h in &res.hosts {
                    let Some(run) = res.sets[*set].get(h) else {
                        continue;
                    };
                    for (kind, why) in &run.failed_kinds {
                        notes.push(format!(
                            "{set}: the {kind} work of {h} died ({why}): no baseline for {kind}"
                        ));
                    }
                }
            }
        }
    }
    Ok(Table {
        baseline: baseline.to_string(),
        baselines: bases.len(),
        kinds,
        rows,
        notes,
    })
}

pub(crate) fn cell(v: Option<f64>) -> String {
    v.map_or("DNR".to_string(), |v| format!("{:.2}", r2(v)))
}

/// A Markdown cell: `shown` (the value, or DNR with its footnote's mark), its span over
/// the repetitions, and *n.s.* where it lies within the baseline's noise.
pub(crate) fn md_cell(r: &Row, v: Option<f64>, span: Option<(f64, f64)>, shown: String) -> String {
    let mut c = shown;
    if let (Some(_), Some((lo, hi))) = (v, span) {
        c += &format!(" [{:.2}, {:.2}]", r2(lo), r2(hi));
    }
    if r.significant(v) == Some(false) {
        c += " *n.s.*";
    }
    c
}

/// `true`/`false`, or empty where it is not known.
fn flag(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    }
}

/// `n` in superscript digits: a footnote's mark.
pub fn superscript(n: usize) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    n.to_string()
        .bytes()
        .map(|d| DIGITS[(d - b'0') as usize])
        .collect()
}

/// The Markdown's footnotes: the reasons DNR cells have, numbered in order of first use
/// (one number per distinct reason, so the cells a failure empties share it).
#[derive(Default)]
pub(crate) struct Footnotes {
    texts: Vec<String>,
    /// How many of `texts` are already printed.
    shown: usize,
}

impl Footnotes {
    /// A cell's text: the value, or DNR with the mark of its reason when it has one.
    pub(crate) fn cell(&mut self, v: Option<f64>, why: Option<&String>) -> String {
        match (v, why) {
            (None, Some(w)) => {
                let n = match self.texts.iter().position(|t| t == w) {
                    Some(i) => i + 1,
                    None => {
                        self.texts.push(w.clone());
                        self.texts.len()
                    }
                };
                format!("DNR{}", superscript(n))
            }
            _ => cell(v),
        }
    }

    /// The footnotes added since the last call, one paragraph each.
    pub(crate) fn flush(&mut self, s: &mut String) {
        for (i, t) in self.texts.iter().enumerate().skip(self.shown) {
            let _ = writeln!(s, "{} {t}\n", superscript(i + 1));
        }
        self.shown = self.texts.len();
    }
}

impl Table {
    fn row(&self, set: &str, kind: &str, m: Measure) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.set == set && r.kind == kind && r.measure == m)
    }

    /// The stress tests in table order: (set, label).
    pub fn tests(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = Vec::new();
        for r in &self.rows {
            if !v.iter().any(|(s, _)| *s == r.set) {
                v.push((r.set.clone(), r.label.clone()));
            }
        }
        v
    }

    /// Markdown: one table per kind of work, the paper's layout (a row per stress test,
    /// Good beside Bad), for the good share and for p99 latency.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Percent degradation against the baseline (`{}`)\n",
            self.baseline
        );
        let _ = writeln!(
            s,
            "Good = mean over the well-behaved guests (worst: the largest), Bad = the misbehaving \
             guest, DNR = did not report (no report, the run failed, or that kind of work \
             died: a footnote says how). Within-SLO share: (base - test) / base; p99 latency: \
             (test - base) / base; in percent.\n"
        );
        let repeats = self.rows.iter().map(|r| r.repeats).max().unwrap_or(1);
        if repeats > 1 || self.baselines > 1 {
            let _ = writeln!(
                s,
                "Each cell is the mean over the stress test's repetitions (up to {repeats}), \
                 [min, max] over them; the baseline ran {} times. *n.s.*: not significant, within \
                 the baseline's own noise (the largest degradation of one baseline run against \
                 the mean of all, given per kind below).\n",
                self.baselines
            );
        }
        let mut foot = Footnotes::default();
        for kind in &self.kinds {
            let _ = writeln!(s, "## {kind} work\n");
            let noise = |m| {
                self.rows
                    .iter()
                    .find(|r| r.kind == *kind && r.measure == m)
                    .and_then(|r| r.noise)
            };
            if let (Some(g), Some(p)) = (noise(Measure::Good), noise(Measure::P99)) {
                let _ = writeln!(
                    s,
                    "Noise band: good share ±{:.2}, p99 ±{:.2}.\n",
                    r2(g),
                    r2(p)
                );
            }
            let _ = writeln!(
                s,
                "| stress test | misbehaving | good share: Good | Good (worst) | Bad | p99: Good | Good (worst) | Bad |"
            );
            let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
            for (set, label) in self.tests() {
                let (Some(g), Some(p)) = (
                    self.row(&set, kind, Measure::Good),
                    self.row(&set, kind, Measure::P99),
                ) else {
                    continue;
                };
                let mut cells = Vec::new();
                for r in [g, p] {
                    let shown = foot.cell(r.good_mean, r.good_dnr_reason.as_ref());
                    let c = md_cell(r, r.good_mean, r.good_span, shown);
                    cells.push(if r.good_mean.is_some() && r.good_reported < r.good_hosts {
                        format!("{c} ({} of {})", r.good_reported, r.good_hosts)
                    } else {
                        c
                    });
                    cells.push(foot.cell(r.good_worst, r.good_dnr_reason.as_ref()));
                    let shown = foot.cell(r.bad, r.bad_dnr_reason.as_ref());
                    cells.push(md_cell(r, r.bad, r.bad_span, shown));
                }
                let _ = writeln!(s, "| {label} | {} | {} |", g.bad_host, cells.join(" | "));
            }
            s.push('\n');
            foot.flush(&mut s);
        }
        if !self.notes.is_empty() {
            s.push_str("Notes:\n\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }

    /// CSV: one line per stress test, kind and measure; DNR spelled out, and why where a
    /// failure made it (the last two columns, empty otherwise).
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "test,label,kind,measure,misbehaving,good_mean_pct,good_worst_pct,bad_pct,good_reported,good_hosts,\
             repeats,good_min_pct,good_max_pct,bad_min_pct,bad_max_pct,noise_pct,good_significant,bad_significant,\
             good_dnr_reason,bad_dnr_reason\n",
        );
        let q = csv_field;
        let ends = |sp: Option<(f64, f64)>| {
            sp.map_or((String::new(), String::new()), |(lo, hi)| {
                (format!("{:.2}", r2(lo)), format!("{:.2}", r2(hi)))
            })
        };
        for r in &self.rows {
            let (gl, gh) = ends(r.good_span);
            let (bl, bh) = ends(r.bad_span);
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{gl},{gh},{bl},{bh},{},{},{},{},{}",
                q(&r.set),
                q(&r.label),
                q(&r.kind),
                r.measure.name(),
                q(&r.bad_host),
                cell(r.good_mean),
                cell(r.good_worst),
                cell(r.bad),
                r.good_reported,
                r.good_hosts,
                r.repeats,
                r.noise.map_or(String::new(), |n| format!("{:.2}", r2(n))),
                flag(r.significant(r.good_mean)),
                flag(r.significant(r.bad)),
                q(r.good_dnr_reason.as_deref().unwrap_or("")),
                q(r.bad_dnr_reason.as_deref().unwrap_or("")),
            );
        }
        s
    }

    /// JSON (`misbehave.compare/1`): null where the paper says DNR; `*_dnr_reason` say why
    /// where a failure made it so (null otherwise).
    pub fn json(&self) -> Value {
        let n = |v: Option<f64>| v.map_or(Value::Null, |v| json!(r2(v)));
        let sp = |v: Option<(f64, f64)>| v.map_or(Value::Null, |(lo, hi)| json!([r2(lo), r2(hi)]));
        json!({
            "schema": SCHEMA,
            "baseline": self.baseline,
            "baselines": self.baselines,
            "kinds": self.kinds,
            "rows": self.rows.iter().map(|r| json!({
                "test": r.set,
                "label": r.label,
                "kind": r.kind,
                "measure": r.measure.name(),
                "misbehaving": r.bad_host,
                "good_mean_pct": n(r.good_mean),
                "good_worst_pct": n(r.good_worst),
                "bad_pct": n(r.bad),
                "good_reported": r.good_reported,
                "good_hosts": r.good_hosts,
                "per_host_pct": r.per_host.iter().map(|(h, v)| (h.clone(), n(*v))).collect::<serde_json::Map<_, _>>(),
                "repeats": r.repeats,
                "good_span_pct": sp(r.good_span),
                "bad_span_pct": sp(r.bad_span),
                "noise_pct": n(r.noise),
                "good_significant": r.significant(r.good_mean),
                "bad_significant": r.significant(r.bad),
                "good_dnr_reason": r.good_dnr_reason,
                "bad_dnr_reason": r.bad_dnr_reason,
                "per_host_dnr_reason": r.per_host_dnr_reason,
            })).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }

    /// An SVG chart: for each measure a panel, for each stress test a group, for each kind
    /// of work a pair of bars, Good (solid) beside Bad (light, outlined); DNR written where
    /// a bar would be. The good share is on a linear scale; p99 latency on a signed log
    /// scale (it grows by thousands of percent).
    pub fn svg(&self) -> String {
        const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
        let tests = self.tests();
        let (bar, pair_gap, group_gap, left, panel_h, top) = (16.0, 8.0, 36.0, 90.0, 240.0, 90.0);
        let group_w = self.kinds.len() as f64 * (2.0 * bar + pair_gap) + group_gap;
        let width = (left + 30.0 + tests.len() as f64 * group_w).max(640.0);
        let label_h = 60.0;
        let height = top + 2.0 * (panel_h + label_h + 40.0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"##
        );
        let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="24" font-size="16" font-weight="bold">Percent degradation against the baseline ({})</text>"##,
            esc(&self.baseline)
        );
        // Legend.
        let mut x = left;
        for (i, k) in self.kinds.iter().enumerate() {
            let c = COLOURS[i % COLOURS.len()];
            svg_legend_entry(&mut s, x, c, k);
            x += 90.0;
        }
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="72">solid: Good (mean of the well-behaved guests) · light: Bad (the misbehaving guest) · DNR: did not report · grey: within the baseline's noise · whiskers: min-max over repetitions</text>"##
        );
        for (p, m) in [Measure::Good, Measure::P99].into_iter().enumerate() {
            let y0 = top + p as f64 * (panel_h + label_h + 40.0) + 20.0;
            let vals: Vec<f64> = self
                .rows
                .iter()
                .filter(|r| r.measure == m)
                .flat_map(|r| {
                    let ends = |sp: Option<(f64, f64)>| {
                        sp.map_or([None, None], |(a, b)| [Some(a), Some(b)])
                    };
                    [[r.good_mean, r.bad], ends(r.good_span), ends(r.bad_span)]
                })
                .flatten()
                .flatten()
                .collect();
            // Value to a height fraction on the panel's scale.
            let f = |v: f64| match m {
                Measure::Good => v,
                Measure::P99 => v.signum() * (1.0 + v.abs()).log10(),
            };
            let hi = vals.iter().map(|v| f(*v)).fold(
                match m {
                    Measure::Good => 10.0,
                    Measure::P99 => 2.0,
                },
                f64::max,
            );
            let lo = vals.iter().map(|v| f(*v)).fold(0.0, f64::min);
            let (hi, lo) = match m {
                Measure::Good => ((hi / 10.0).ceil() * 10.0, (lo / 10.0).floor() * 10.0),
                Measure::P99 => (hi.ceil(), lo.floor()),
            };
            let ypos = |v: f64| y0 + panel_h * (hi - f(v)) / (hi - lo);
            let zero = ypos(0.0);
            let _ = writeln!(
                s,
                r##"<text x="{left}" y="{}" font-size="14" font-weight="bold">{} (percent degradation{})</text>"##,
                y0 - 8.0,
                m.title(),
                if m == Measure::P99 { ", log scale" } else { "" }
            );
            // Grid and ticks.
            let ticks: Vec<f64> = match m {
                Measure::Good => {
                    let step = ((hi - lo) / 5.0 / 10.0).ceil() * 10.0;
                    let mut t = Vec::new();
                    let mut v = lo;
                    while v <= hi + 1e-9 {
                        t.push(v);
                        v += step.max(10.0);
                    }
                    t
                }
                Measure::P99 => (lo as i32..=hi as i32)
                    .map(|e| {
                        if e == 0 {
                            0.0
                        } else {
                            (e.signum() as f64) * (10f64.powi(e.abs()) - 1.0)
                        }
                    })
                    .collect(),
            };
            for t in ticks {
                let y = ypos(t);
                let shown = match m {
                    Measure::P99 if t != 0.0 => format!("{}", (t.abs() + 1.0).round() * t.signum()),
                    _ => format!("{t}"),
                };
                let _ = writeln!(
                    s,
                    r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#dddddd"/><text x="{}" y="{:.1}" text-anchor="end">{shown}%</text>"##,
                    width - 20.0,
                    left - 6.0,
                    y + 4.0
                );
            }
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{}" y1="{zero:.1}" y2="{zero:.1}" stroke="#000000"/>"##,
                width - 20.0
            );
            for (g, (set, label)) in tests.iter().enumerate() {
                let gx = left + 10.0 + g as f64 * group_w;
                for (i, kind) in self.kinds.iter().enumerate() {
                    let Some(r) = self.row(set, kind, m) else {
                        continue;
                    };
                    let c = COLOURS[i % COLOURS.len()];
                    let at = Bars {
                        x: gx + i as f64 * (2.0 * bar + pair_gap),
                        bar,
                        zero,
                        ypos: &ypos,
                        dnr_font: 10,
                    };
                    let pair = [(r.good_mean, r.good_span), (r.bad, r.bad_span)];
                    let title = format!("{} · {}", esc(label), esc(kind));
                    svg_bar_pair(&mut s, &at, r, pair, c, &title);
                }
                let cx = gx + (group_w - group_gap) / 2.0;
                let ly = y0 + panel_h + 16.0;
                let _ = writeln!(
                    s,
                    r##"<text x="{cx:.1}" y="{ly:.1}" text-anchor="middle">{}</text>"##,
                    esc(label)
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

/// One CSV field, quoted where it must be (RFC 4180).
pub fn csv_field(t: &str) -> String {
    if t.contains([',', '"', '\n']) {
        format!("\"{}\"", t.replace('"', "\"\""))
    } else {
        t.to_string()
    }
}

/// Text for XML.
/// Where a pair of bars goes: the first at `x`, each `bar` wide, from the `zero` line, on
/// the panel's scale `ypos` (a value to its y); "DNR" in `dnr_font` points.
pub(crate) struct Bars<'a> {
    pub x: f64,
    pub bar: f64,
    pub zero: f64,
    pub ypos: &'a dyn Fn(f64) -> f64,
    pub dnr_font: u32,
}

/// A legend entry at `x`: the solid (Good) and light (Bad) swatches of `colour`, then `name`.
pub(crate) fn svg_legend_entry(s: &mut String, x: f64, colour: &str, name: &str) {
    let _ = writeln!(
        s,
        r##"<rect x="{x}" y="40" width="12" height="12" fill="{colour}"/><rect x="{}" y="40" width="12" height="12" fill="{colour}" fill-opacity="0.35" stroke="{colour}"/><text x="{}" y="51">{}</text>"##,
        x + 14.0,
        x + 30.0,
        esc(name)
    );
}

/// A bar's value (None: did not report) and the span of its repetitions.
pub(crate) type BarValue = (Option<f64>, Option<(f64, f64)>);

/// One kind's pair of bars: solid Good, light Bad, each with its span as a whisker; greyed
/// where within the baseline's noise (so the eye goes to what is real), "DNR" where no value.
/// `title` (escaped) leads each bar's tooltip.
pub(crate) fn svg_bar_pair(
    s: &mut String,
    at: &Bars,
    r: &Row,
    pair: [BarValue; 2],
    colour: &str,
    title: &str,
) {
    let (bar, zero) = (at.bar, at.zero);
    for (j, (v, span)) in pair.into_iter().enumerate() {
        let bx = at.x + j as f64 * bar;
        let shade = if r.significant(v) == Some(false) {
            "#bbbbbb"
        } else {
            colour
        };
        let style = if j == 0 {
            format!(r##"fill="{shade}""##)
        } else {
            format!(r##"fill="{shade}" fill-opacity="0.35" stroke="{shade}""##)
        };
        let Some(v) = v else {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="{}" fill="#555555" transform="rotate(-90 {:.1} {:.1})">DNR</text>"##,
                bx + bar / 2.0 + 3.0,
                zero - 4.0,
                at.dnr_font,
                bx + bar / 2.0 + 3.0,
                zero - 4.0
            );
            continue;
        };
        let y = (at.ypos)(v);
        let (yt, h) = if y < zero {
            (y, zero - y)
        } else {
            (zero, y - zero)
        };
        let _ = writeln!(
            s,
            r##"<rect x="{bx:.1}" y="{yt:.1}" width="{}" height="{:.1}" {style}><title>{title} · {}: {:.2}%{}</title></rect>"##,
            bar - 2.0,
            h.max(1.0),
            if j == 0 { "Good" } else { "Bad" },
            r2(v),
            if r.significant(Some(v)) == Some(false) {
                " (not significant)"
            } else {
                ""
            }
        );
        if let Some((lo, hi)) = span {
            let wx = bx + (bar - 2.0) / 2.0;
            let _ = writeln!(
                s,
                r##"<line x1="{wx:.1}" x2="{wx:.1}" y1="{:.1}" y2="{:.1}" stroke="#000000"/>"##,
                (at.ypos)(lo),
                (at.ypos)(hi)
            );
        }
    }
}

pub fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degradation_is_a_loss_in_percent() {
        assert_eq!(
            degradation(Measure::Good, Some(100.0), Some(90.0)),
            Some(10.0)
        );
        assert_eq!(
            degradation(Measure::Good, Some(80.0), Some(80.0)),
            Some(0.0)
        );
        assert_eq!(
            degradation(Measure::P99, Some(100.0), Some(350.0)),
            Some(250.0)
        );
        assert_eq!(degradation(Measure::P99, Some(100.0), None), None);
        assert_eq!(degradation(Measure::Good, Some(0.0), Some(1.0)), None);
    }

    #[test]
    fn sets_are_ordered_as_the_paper() {
        assert_eq!(test_label("membomb"), (0, "Memory".into()));
        assert_eq!(test_label("netflood-sink").1, "Network, server receives");
        assert_eq!(test_label("mine"), (6, "mine".into()));
    }

    #[test]
    fn repetitions_are_named_s_r2_and_on() {
        assert_eq!(repetition("cpu"), ("cpu", 1));
        assert_eq!(repetition("cpu.r2"), ("cpu", 2));
        assert_eq!(repetition("net-send.r12"), ("net-send", 12));
        // Not a repetition: the set keeps its whole name.
        for s in [
            "cpu.r1", "cpu.r0", "cpu.r02", "cpu.r", "cpu.rx", ".r3", "cpu.r+3",
        ] {
            assert_eq!(repetition(s), (s, 1), "{s}");
        }
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
