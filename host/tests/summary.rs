//! `misbehave summary` on a results directory as the fleet roles fetch it: one row per
//! report with its real values, sorted; CSV quoting; a broken report gets a row; bad input
//! exits 2 with one line.

use std::time::Duration;

use common::testkit::TempDir;
use serde_json::json;

common::test_binary!("misbehave");

fn summary(args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin().run(&[&["summary"], args].concat(), Duration::from_secs(60));
    (out.code, out.stdout, out.stderr)
}

/// RESULTS/h1 holds a membomb and a cpubomb report, RESULTS/h2 a cpubomb report and a
/// truncated one.
fn results() -> TempDir {
    let dir = TempDir::new("summary");
    let h1 = dir.path.join("h1");
    let h2 = dir.path.join("h2");
    std::fs::create_dir_all(&h1).unwrap();
    std::fs::create_dir_all(&h2).unwrap();
    let cpu = |ops: f64, code: i64| {
        json!({
            "schema": "misbehave.report/1", "tool": "cpubomb", "outcome": "completed",
            "exit_code": code, "stress_s": 2.004, "rates": {"ops": ops},
            "peaks": {}, "errors": {},
        })
    };
    let mem = json!({
        "schema": "misbehave.report/1", "tool": "membomb", "outcome": "failed",
        "exit_code": 1, "stress_s": 1.96,
        "rates": {"ops": 10.0, "touched_bytes": 3.0 * 1024.0 * 1024.0 * 1024.0},
        "peaks": {"resident_bytes": 33554432.0, "workers": 2.0},
        "errors": {"ENOMEM": 3, "EAGAIN": 1},
    });
    let w = |p: std::path::PathBuf, v: &serde_json::Value| {
        std::fs::write(p, serde_json::to_string_pretty(v).unwrap()).unwrap()
    };
    w(h1.join("membomb-20261206T050000Z.json"), &mem);
    w(h1.join("cpubomb-20261206T050100Z.json"), &cpu(1.5e6, 0));
    w(h2.join("cpubomb-20261206T050101Z.json"), &cpu(12_345.0, 0));
    std::fs::write(
        h2.join("probe-20261206T050200Z.json"),
        "{\"schema\": \"misbehave.rep",
    )
    .unwrap();
    // Not a report file: ignored.
    std::fs::write(h2.join("notes.txt"), "x").unwrap();
    dir
}

#[test]
fn markdown_has_a_row_per_report_with_its_values() {
    let dir = results();
    let (code, out, err) = summary(&[dir.path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "| stressor | host | run | outcome | exit | stress_s | main_rate | peaks | errors |"
    );
    assert_eq!(lines.len(), 2 + 4, "{out}");
    assert_eq!(
        lines[2],
        "| cpubomb | h1 | 20261206T050100Z | completed | 0 | 2.0 | ops 1.5M/s | - | - |"
    );
    assert_eq!(
        lines[3],
        "| cpubomb | h2 | 20261206T050101Z | completed | 0 | 2.0 | ops 12.3k/s | - | - |"
    );
    assert_eq!(
        lines[4],
        "| membomb | h1 | 20261206T050000Z | failed | 1 | 2.0 | touched_bytes 3.00 GiB/s | resident_bytes 32.0 MiB, workers 2 | EAGAIN 1, ENOMEM 3 |"
    );
    // The truncated report still has its row, named after its file.
    assert!(
        lines[5].starts_with("| probe | h2 | 20261206T050200Z | not a misbehave report ("),
        "{}",
        lines[5]
    );
}

/// A report of another version may give its fields other meanings: its row says which
/// version it is and shows none of its values.
#[test]
fn a_report_of_another_version_says_so_in_its_row() {
    let dir = TempDir::new("summary-version");
    let h1 = dir.path.join("h1");
    std::fs::create_dir_all(&h1).unwrap();
    let v2 = json!({
        "schema": "misbehave.report/2", "tool": "cpubomb", "outcome": "completed",
        "exit_code": 0, "stress_s": 2.0, "rates": {"ops": 5.0}, "peaks": {}, "errors": {},
    });
    std::fs::write(h1.join("cpubomb-20261206T060000Z.json"), v2.to_string()).unwrap();
    let (code, out, err) = summary(&[dir.path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().nth(2),
        Some(
            "| cpubomb | h1 | 20261206T060000Z | schema misbehave.report/2, this misbehave reads \
             misbehave.report/1 |  |  |  |  |  |"
        ),
        "{out}"
    );
}

#[test]
fn csv_quotes_lists_and_writes_the_file() {
    let dir = results();
    let out_path = dir.path.join("table.csv");
    let (code, out, err) = summary(&[
        dir.path.to_str().unwrap(),
        "--format",
        "csv",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.is_empty(), "-o writes the file, not stdout: {out}");
    let csv = std::fs::read_to_string(&out_path).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "stressor,host,run,outcome,exit,stress_s,main_rate,peaks,errors"
    );
    assert_eq!(
        lines[3],
        "membomb,h1,20261206T050000Z,failed,1,2.0,touched_bytes 3.00 GiB/s,\"resident_bytes 32.0 MiB, workers 2\",\"EAGAIN 1, ENOMEM 3\""
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = TempDir::new("summary-empty");
    let (code, out, err) = summary(&[dir.path.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no reports under"), "{err}");

    let missing = dir.path.join("nothing-here");
    let (code, _, err) = summary(&[missing.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a directory"), "{err}");

    let (code, _, err) = summary(&[dir.path.to_str().unwrap(), "--format", "xml"]);
    assert_eq!(code, Some(2), "{err}");
}

/// A run that left no report but a `.dnr` file (the host lost mid-run) has a row saying
/// DNR and why, in its place among the others.
#[test]
fn a_dnr_file_is_a_row_with_its_reason() {
    let dir = results();
    std::fs::write(
        dir.path.join("h2").join("membomb-20261206T050300Z.dnr"),
        "h2 unreachable during membomb\n",
    )
    .unwrap();
    let (code, out, err) = summary(&[dir.path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| membomb")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(
        rows[1],
        "| membomb | h2 | 20261206T050300Z | DNR: h2 unreachable during membomb |  |  |  |  |  |"
    );
}
