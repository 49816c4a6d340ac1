//! The comparison across platforms: the same experiment on several isolation technologies
//! (a VM, a container, a sandbox), each against its own baseline, side by side. The paper's
//! finding was such a table (which technology let which stress test through); this is it
//! for the platforms a run measured.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::{
    esc, md_cell, r2, svg_bar_pair, svg_legend_entry, Bars, Footnotes, Measure, Row, Table,
};

/// The schema of `misbehave compare --platform ... --format json`.
pub const SCHEMA: &str = "misbehave.platforms/1";

/// Each platform's own table, in the order given.
#[derive(Debug, Clone)]
pub struct Platforms {
    pub tables: Vec<(String, Table)>,
}

impl Platforms {
    /// Stress tests (set, label) in the paper's order, over every platform.
    fn tests(&self) -> Vec<(String, String)> {
        let mut v: Vec<(usize, String, String)> = Vec::new();
        for (_, t) in &self.tables {
            for (set, label) in t.tests() {
                if !v.iter().any(|(_, s, _)| *s == set) {
                    v.push((crate::test_label(&set).0, set, label));
                }
            }
        }
        v.sort();
        v.into_iter().map(|(_, s, l)| (s, l)).collect()
    }

    /// Kinds of work in probe's order, over every platform.
    fn kinds(&self) -> Vec<String> {
        probe::WORKS
            .iter()
            .map(|w| w.name().to_string())
            .filter(|k| self.tables.iter().any(|(_, t)| t.kinds.contains(k)))
            .collect()
    }

    fn row<'a>(t: &'a Table, set: &str, kind: &str, m: Measure) -> Option<&'a Row> {
        t.rows
            .iter()
            .find(|r| r.set == set && r.kind == kind && r.measure == m)
    }

    /// Markdown: for each measure a table, a row per stress test and kind, a column group
    /// per platform (Good, its worst, Bad).
    pub fn markdown(&self) -> String {
        let mut s = String::from("# Percent degradation by platform\n\n");
        let _ = writeln!(
            s,
            "Each platform against its own baseline. Good = mean over the well-behaved guests \
             (worst: the largest), Bad = the misbehaving guest, DNR = did not report. \
             [min, max] over the repetitions; *n.s.*: within that platform's baseline noise.\n"
        );
        let mut foot = Footnotes::default();
        for m in [Measure::Good, Measure::P99] {
            let _ = writeln!(s, "## {}\n", m.title());
            let mut head = String::from("| stress test | kind |");
            let mut rule = String::from("|---|---|");
            for (p, _) in &self.tables {
                let _ = write!(head, " {p}: Good | worst | Bad |");
                rule.push_str("---:|---:|---:|");
            }
            let _ = writeln!(s, "{head}\n{rule}");
            for (set, label) in self.tests() {
                for kind in self.kinds() {
                    let mut line = format!("| {label} | {kind} |");
                    for (_, t) in &self.tables {
                        match Self::row(t, &set, &kind, m) {
                            Some(r) => {
                                let good = foot.cell(r.good_mean, r.good_dnr_reason.as_ref());
                                let worst = foot.cell(r.good_worst, r.good_dnr_reason.as_ref());
                                let bad = foot.cell(r.bad, r.bad_dnr_reason.as_ref());
                                let _ = write!(
                                    line,
                                    " {} | {worst} | {} |",
                                    md_cell(r, r.good_mean, r.good_span, good),
                                    md_cell(r, r.bad, r.bad_span, bad)
                                );
                            }
                            None => line.push_str(" not run | | |"),
                        }
                    }
                    let _ = writeln!(s, "{line}");
                }
            }
            s.push('\n');
            foot.flush(&mut s);
        }
        let notes: Vec<String> = self
            .tables
            .iter()
            .flat_map(|(p, t)| t.notes.iter().map(move |n| format!("{p}: {n}")))
            .collect();
        if !notes.is_empty() {
            s.push_str("Notes:\n\n");
            for n in notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }

    /// CSV: each platform's own CSV rows, a `platform` column first.
    pub fn csv(&self) -> String {
        let mut s = String::new();
        for (i, (p, t)) in self.tables.iter().enumerate() {
            for (j, line) in t.csv().lines().enumerate() {
                match (i, j) {
                    (0, 0) => {
                        let _ = writeln!(s, "platform,{line}");
                    }
                    (_, 0) => {}
                    _ => {
                        let _ = writeln!(s, "{},{line}", crate::csv_field(p));
                    }
                }
            }
        }
        s
    }

    /// JSON: every platform's `misbehave.compare/1` table under its name.
    pub fn json(&self) -> Value {
        json!({
            "schema": SCHEMA,
            "platforms": self.tables.iter().map(|(p, t)| json!({
                "platform": p,
                "table": t.json(),
            })).collect::<Vec<_>>(),
        })
    }

    /// An SVG chart of the within-SLO share (the paper's measure): a panel per kind of
    /// work, a group per stress test, for each platform Good (solid) beside Bad (light);
    /// greyed where within the platform's baseline noise.
    pub fn svg(&self) -> String {
        const COLOURS: [&str; 6] = [
            "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
        ];
        let tests = self.tests();
        let kinds = self.kinds();
        let n = self.tables.len() as f64;
        let (bar, pair_gap, group_gap, left, panel_h, top) = (12.0, 6.0, 30.0, 80.0, 160.0, 90.0);
        let group_w = n * (2.0 * bar + pair_gap) + group_gap;
        // Wide enough for the title and the legend line.
        let width = (left + 30.0 + tests.len() as f64 * group_w).max(960.0);
        let panel_step = panel_h + 84.0;
        let height = top + kinds.len() as f64 * panel_step + 20.0;
        let vals: Vec<f64> = self
            .tables
            .iter()
            .flat_map(|(_, t)| t.rows.iter())
            .filter(|r| r.measure == Measure::Good)
            .flat_map(|r| [r.good_mean, r.bad])
            .flatten()
            .collect();
        let hi = (vals.iter().copied().fold(10.0, f64::max) / 10.0).ceil() * 10.0;
        let lo = (vals.iter().copied().fold(0.0, f64::min) / 10.0).floor() * 10.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"##
        );
        let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="24" font-size="16" font-weight="bold">Within-SLO share lost, by platform (percent, each against its own baseline)</text>"##
        );
        let mut x = left;
        for (i, (p, _)) in self.tables.iter().enumerate() {
            let c = COLOURS[i % COLOURS.len()];
            svg_legend_entry(&mut s, x, c, p);
            x += 40.0 + 8.0 * p.len() as f64;
        }
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="72">solid: Good (mean of the well-behaved guests) · light: Bad (the misbehaving guest) · grey: within the baseline's noise · DNR: did not report</text>"##
        );
        for (k, kind) in kinds.iter().enumerate() {
            let y0 = top + k as f64 * panel_step + 20.0;
            let ypos = |v: f64| y0 + panel_h * (hi - v) / (hi - lo);
            let zero = ypos(0.0);
            let _ = writeln!(
                s,
                r##"<text x="{left}" y="{}" font-size="14" font-weight="bold">{} work</text>"##,
                y0 - 8.0,
                esc(kind)
            );
            for t in [lo, (lo + hi) / 2.0, hi] {
                let y = ypos(t);
                let _ = writeln!(
                    s,
                    r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#dddddd"/><text x="{}" y="{:.1}" text-anchor="end">{}%</text>"##,
                    width - 20.0,
                    left - 6.0,
                    y + 4.0,
                    r2(t)
                );
            }
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{}" y1="{zero:.1}" y2="{zero:.1}" stroke="#000000"/>"##,
                width - 20.0
            );
            for (g, (set, label)) in tests.iter().enumerate() {
                let gx = left + 10.0 + g as f64 * group_w;
                for (i, (p, t)) in self.tables.iter().enumerate() {
                    let c = COLOURS[i % COLOURS.len()];
                    let Some(r) = Self::row(t, set, kind, Measure::Good) else {
                        continue;
                    };
                    let at = Bars {
                        x: gx + i as f64 * (2.0 * bar + pair_gap),
                        bar,
                        zero,
                        ypos: &ypos,
                        dnr_font: 9,
                    };
                    let pair = [(r.good_mean, None), (r.bad, None)];
                    let title = format!("{} · {} · {}", esc(p), esc(label), esc(kind));
                    svg_bar_pair(&mut s, &at, r, pair, c, &title);
                }
                // "Network, server transmits" on two lines: a group is narrower than it.
                let cx = gx + (group_w - group_gap) / 2.0;
                for (l, part) in label.split(", ").enumerate() {
                    let _ = writeln!(
                        s,
                        r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                        y0 + panel_h + 16.0 + 14.0 * l as f64,
                        esc(part)
                    );
                }
            }
        }
        s.push_str("</svg>\n");
        s
    }
}
