//! compare on crafted probe reports: exact, known percentages; DNR where a report is
//! missing or its run failed, and only for the kinds that died where a report says which
//! (with the reason in a footnote); every output format; an SVG that headless Chromium
//! renders.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::testkit::TempDir;
use serde_json::{json, Value};

common::test_binary!("misbehave");

fn compare(args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin().run(&[&["compare"], args].concat(), Duration::from_secs(60));
    (out.code, out.stdout, out.stderr)
}

/// A probe report as probe writes it, cut to what compare reads: per kind (name, good,
/// p99 in microseconds), out of 1000 offered operations.
fn report(outcome: &str, started: &str, kinds: &[(&str, u64, f64)]) -> Value {
    json!({
        "schema": "misbehave.report/1",
        "tool": "probe",
        "outcome": outcome,
        "started_at": started,
        "details": {
            "kinds": kinds.iter().map(|(k, good, p99)| json!({
                "kind": k, "offered": 1000, "completed": 1000, "good": good,
                "good_pct": *good as f64 / 10.0, "p99_us": p99,
            })).collect::<Vec<_>>(),
        },
    })
}

fn put(root: &Path, set: &str, host: &str, name: &str, v: &Value) {
    let d = root.join(set).join(host);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), serde_json::to_string_pretty(v).unwrap()).unwrap();
}

const T0: &str = "2026-11-30T04:00:00.000Z";
const T1: &str = "2026-11-30T05:00:00.000Z";

/// Three well-behaved guests (g1, g2, g3) and a misbehaving one (b1).
/// Baseline: cpu 100% good at p99 100 us; disk 80% good at p99 1000 us, for every guest.
fn results() -> TempDir {
    let dir = TempDir::new("compare");
    let r = &dir.path;
    for h in ["g1", "g2", "g3", "b1"] {
        put(
            r,
            "baseline",
            h,
            "probe-1.json",
            &report(
                "completed",
                T0,
                &[("cpu", 1000, 100.0), ("disk", 800, 1000.0)],
            ),
        );
    }
    // cpu test: g1 loses 10% of its good share and its p99 doubles; g2 nothing; g3 5% and
    // +50%; b1 50% and +900%. Disk: g2 10% and +50%; b1 50% and +200%.
    put(
        r,
        "cpu",
        "g1",
        "probe-2.json",
        &report(
            "completed",
            T1,
            &[("cpu", 900, 200.0), ("disk", 800, 1000.0)],
        ),
    );
    put(
        r,
        "cpu",
        "g2",
        "probe-2.json",
        &report(
            "completed",
            T1,
            &[("cpu", 1000, 100.0), ("disk", 720, 1500.0)],
        ),
    );
    put(
        r,
        "cpu",
        "g3",
        "probe-2.json",
        &report(
            "completed",
            T1,
            &[("cpu", 950, 150.0), ("disk", 800, 1000.0)],
        ),
    );
    put(
        r,
        "cpu",
        "b1",
        "probe-2.json",
        &report(
            "completed",
            T1,
            &[("cpu", 500, 1000.0), ("disk", 400, 3000.0)],
        ),
    );
    // An older run of g1 in the same set: the newest counts.
    put(
        r,
        "cpu",
        "g1",
        "probe-0.json",
        &report("completed", T0, &[("cpu", 0, 9e9), ("disk", 0, 9e9)]),
    );
    // The bomb's own report beside b1's probe report: not a probe report, ignored.
    let mut bomb = report("completed", T1, &[]);
    bomb["tool"] = "cpubomb".into();
    put(r, "cpu", "b1", "cpubomb-1.json", &bomb);
    // Memory test: g2 and b1 reported nothing, g3's run failed.
    put(
        r,
        "membomb",
        "g1",
        "probe-3.json",
        &report(
            "completed",
            T1,
            &[("cpu", 1000, 100.0), ("disk", 800, 1000.0)],
        ),
    );
    put(
        r,
        "membomb",
        "g3",
        "probe-3.json",
        &report("failed", T1, &[("cpu", 1000, 100.0), ("disk", 800, 1000.0)]),
    );
    // Fork test: nobody reported; the set names its misbehaving guest in BAD.
    std::fs::create_dir_all(r.join("forkbomb")).unwrap();
    std::fs::write(r.join("forkbomb").join("BAD"), "b1\n").unwrap();
    dir
}

#[test]
fn markdown_gives_the_papers_table_with_known_percentages_and_dnr() {
    let dir = results();
    let (code, out, err) = compare(&[dir.path.to_str().unwrap(), "--bad", "b1"]);
    assert_eq!(code, Some(0), "{err}");
    let line = |label: &str, kind: &str| -> String {
        let section = out.split(&format!("## {kind} work")).nth(1).unwrap();
        section
            .lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("no {label} row for {kind}:\n{out}"))
            .to_string()
    };
    assert_eq!(
        line("CPU", "cpu"),
        "| CPU | b1 | 5.00 | 10.00 | 50.00 | 50.00 | 100.00 | 900.00 |"
    );
    assert_eq!(
        line("CPU", "disk"),
        "| CPU | b1 | 3.33 | 10.00 | 50.00 | 16.67 | 50.00 | 200.00 |"
    );
    // Only g1 reported among the well-behaved; the misbehaving guest did not.
    assert_eq!(
        line("Memory", "cpu"),
        "| Memory | b1 | 0.00 (1 of 3) | 0.00 | DNR | 0.00 (1 of 3) | 0.00 | DNR |"
    );
    assert_eq!(
        line("Fork", "cpu"),
        "| Fork | b1 | DNR | DNR | DNR | DNR | DNR | DNR |"
    );
    // The paper's row order: Memory, Fork, CPU.
    let cpu = out.split("## cpu work").nth(1).unwrap();
    let (m, f, c) = (
        cpu.find("| Memory").unwrap(),
        cpu.find("| Fork").unwrap(),
        cpu.find("| CPU").unwrap(),
    );
    assert!(m < f && f < c, "{out}");
    assert!(
        err.contains("membomb: no probe report from g2 (DNR)"),
        "{err}"
    );
    assert!(
        err.contains("membomb: the probe run of g3 failed (DNR)"),
        "{err}"
    );
    assert!(err.contains("several probe reports"), "{err}");

    // A misbehaving guest named wrong: every Bad cell is DNR, and stderr says why.
    let (code, _, err) = compare(&[dir.path.to_str().unwrap(), "--bad", "b9"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("b9 (named as misbehaving) has no probe report in any set"),
        "{err}"
    );
}

/// Two well-behaved guests and a misbehaving one, every set run three times: the baseline
/// (cpu good 1000, 990, 1010 of 1000 offered: a noise band of 1%), the cpu test (g1 and g2
/// lose 0.5% each time: within the noise; b1 loses 20%, 30% and 40%).
fn repeated() -> TempDir {
    let dir = TempDir::new("compare-repeat");
    let r = &dir.path;
    for (k, base_good) in [("", 1000), (".r2", 990), (".r3", 1010)] {
        for h in ["g1", "g2", "b1"] {
            put(
                r,
                &format!("baseline{k}"),
                h,
                "probe.json",
                &report("completed", T0, &[("cpu", base_good, 100.0)]),
            );
        }
        std::fs::write(r.join(format!("baseline{k}")).join("BAD"), "b1\n").unwrap();
    }
    for (k, bad_good) in [("", 800), (".r2", 700), (".r3", 600)] {
        for h in ["g1", "g2"] {
            put(
                r,
                &format!("cpu{k}"),
                h,
                "probe.json",
                &report("completed", T1, &[("cpu", 995, 100.0)]),
            );
        }
        put(
            r,
            &format!("cpu{k}"),
            "b1",
            "probe.json",
            &report("completed", T1, &[("cpu", bad_good, 400.0)]),
        );
        std::fs::write(r.join(format!("cpu{k}")).join("BAD"), "b1\n").unwrap();
    }
    dir
}

#[test]
fn repetitions_give_a_mean_a_span_and_a_noise_band() {
    let dir = repeated();
    let (code, csv, err) = compare(&[dir.path.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    // One stress test (its three sets taken together) x one kind x two measures.
    assert_eq!(lines.len(), 3, "{csv}");
    // Each guest's baseline is 1000 (the mean); the noise band is the largest baseline run's
    // own degradation, 1%. g1, g2: 0.5% lost, not significant; b1: 30% (20-40), significant.
    assert!(
        lines.contains(&"cpu,CPU,cpu,good_share,b1,0.50,0.50,30.00,2,2,3,0.50,0.50,20.00,40.00,1.00,false,true,,"),
        "{csv}"
    );
    // p99: every baseline at 100 us (no noise: 0), b1 at 400 us (+300%).
    assert!(
        lines.contains(&"cpu,CPU,cpu,p99_latency,b1,0.00,0.00,300.00,2,2,3,0.00,0.00,300.00,300.00,0.00,false,true,,"),
        "{csv}"
    );
    let (code, md, err) = compare(&[dir.path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(md.contains("the baseline ran 3 times"), "{md}");
    assert!(
        md.contains("Noise band: good share ±1.00, p99 ±0.00."),
        "{md}"
    );
    assert!(
        md.contains("| CPU | b1 | 0.50 [0.50, 0.50] *n.s.* | 0.50 | 30.00 [20.00, 40.00] |"),
        "{md}"
    );
    let (code, js, _) = compare(&[dir.path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&js).unwrap();
    assert_eq!(v["baselines"], 3);
    let row = &v["rows"][0];
    assert_eq!(row["repeats"], 3);
    assert_eq!(row["bad_span_pct"], json!([20.0, 40.0]));
    assert_eq!(row["noise_pct"], 1.0);
    assert_eq!(row["good_significant"], false);
    assert_eq!(row["bad_significant"], true);
    let (code, svg, _) = compare(&[dir.path.to_str().unwrap(), "--format", "svg"]);
    assert_eq!(code, Some(0));
    assert!(svg.contains("(not significant)</title>"), "a greyed bar");
    assert!(svg.contains(r##"fill="#bbbbbb""##));
}

#[test]
fn platforms_side_by_side_each_against_its_own_baseline() {
    let vm = results();
    let ct = repeated();
    let vm_arg = format!("vm={}", vm.path.display());
    let ct_arg = format!("docker={}", ct.path.display());
    let out = TempDir::new("compare-platforms");
    let (code, _, err) = compare(&[
        "--platform",
        &vm_arg,
        "--platform",
        &ct_arg,
        "--bad",
        "b1",
        "--out-dir",
        out.path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let md = std::fs::read_to_string(out.path.join("platforms.md")).unwrap();
    assert!(
        md.contains("| stress test | kind | vm: Good | worst | Bad | docker: Good | worst | Bad |"),
        "{md}"
    );
    // The CPU test on both: vm's numbers (one run) beside docker's (three, with spans).
    assert!(
        md.contains("| CPU | cpu | 5.00 | 10.00 | 50.00 | 0.50 [0.50, 0.50] *n.s.* | 0.50 | 30.00 [20.00, 40.00] |"),
        "{md}"
    );
    // A test one platform did not run.
    assert!(
        md.contains("| Fork | cpu | DNR | DNR | DNR | not run | | |"),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.path.join("platforms.csv")).unwrap();
    assert!(csv.starts_with("platform,test,label,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l == "docker,cpu,CPU,cpu,good_share,b1,0.50,0.50,30.00,2,2,3,0.50,0.50,20.00,40.00,1.00,false,true,,"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("vm,cpu,CPU,cpu,good_share,b1,5.00,")),
        "{csv}"
    );
    let js: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path.join("platforms.json")).unwrap())
            .unwrap();
    assert_eq!(js["schema"], "misbehave.platforms/1");
    assert_eq!(js["platforms"][1]["platform"], "docker");
    assert_eq!(js["platforms"][1]["table"]["baselines"], 3);
    let svg = std::fs::read_to_string(out.path.join("platforms.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("docker · CPU · cpu · Bad: 30.00%"));

    // Bad input: one line, exit 2.
    for args in [
        vec!["--platform", "vm"],
        vec!["--platform", &vm_arg, "--platform", &vm_arg],
        vec!["--platform", "vm=/nonexistent-misbehave-dir"],
    ] {
        let (code, _, err) = compare(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn csv_and_json_carry_the_same_numbers() {
    let dir = results();
    let (code, csv, err) = compare(&[dir.path.to_str().unwrap(), "--bad", "b1", "--format", "csv"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "test,label,kind,measure,misbehaving,good_mean_pct,good_worst_pct,bad_pct,good_reported,good_hosts,\
         repeats,good_min_pct,good_max_pct,bad_min_pct,bad_max_pct,noise_pct,good_significant,bad_significant,\
         good_dnr_reason,bad_dnr_reason"
    );
    // One run of each set: no span, no noise band, significance unknown.
    assert!(
        lines.contains(&"cpu,CPU,cpu,good_share,b1,5.00,10.00,50.00,3,3,1,,,,,,,,,"),
        "{csv}"
    );
    assert!(
        lines.contains(&"cpu,CPU,disk,p99_latency,b1,16.67,50.00,200.00,3,3,1,,,,,,,,,"),
        "{csv}"
    );
    assert!(
        lines.contains(&"forkbomb,Fork,cpu,good_share,b1,DNR,DNR,DNR,0,3,1,,,,,,,,,"),
        "{csv}"
    );
    // 3 tests x 2 kinds x 2 measures, and the header.
    assert_eq!(lines.len(), 13);

    let (code, js, _) = compare(&[
        dir.path.to_str().unwrap(),
        "--bad",
        "b1",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&js).unwrap();
    assert_eq!(v["schema"], "misbehave.compare/1");
    assert_eq!(v["kinds"], json!(["cpu", "disk"]));
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test"] == "cpu" && r["kind"] == "cpu" && r["measure"] == "p99_latency")
        .unwrap();
    assert_eq!(row["good_mean_pct"], 50.0);
    assert_eq!(row["good_worst_pct"], 100.0);
    assert_eq!(row["bad_pct"], 900.0);
    assert_eq!(row["per_host_pct"]["g2"], 0.0);
    let mem = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test"] == "membomb" && r["kind"] == "cpu" && r["measure"] == "good_share")
        .unwrap();
    assert_eq!(mem["bad_pct"], Value::Null);
    assert_eq!(mem["per_host_pct"]["g3"], Value::Null);
    assert_eq!(mem["good_reported"], 1);
}

#[test]
fn reports_named_on_the_command_line_and_bad_input() {
    let dir = results();
    let f = |set: &str, host: &str, name: &str| {
        format!(
            "{set}/{host}={}",
            dir.path.join(set).join(host).join(name).display()
        )
    };
    let (code, out, err) = compare(&[
        "--report",
        &f("baseline", "g1", "probe-1.json"),
        "--report",
        &f("baseline", "b1", "probe-1.json"),
        "--report",
        &f("cpu", "g1", "probe-2.json"),
        "--report",
        &f("cpu", "b1", "probe-2.json"),
        "--bad",
        "b1",
        "--format",
        "csv",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("cpu,CPU,cpu,good_share,b1,10.00,10.00,50.00,1,1,1,,,,,,,,,"),
        "{out}"
    );

    let p = dir.path.to_str().unwrap();
    for args in [
        &[][..],
        &[p], // no misbehaving guest named
        &[p, "--bad", "b1", "--baseline", "none"],
        &["/nonexistent/results", "--bad", "b1"],
        &["--report", "cpu=x.json", "--bad", "b1"],
        &["--report", "cpu/g1=/nonexistent.json", "--bad", "b1"],
        &[p, "--bad", "b1", "--format", "pdf"],
    ] {
        let (code, out, err) = compare(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(!err.trim().is_empty());
    }
}

/// A probe report that says per kind whether the kind failed (probe writes `failed` and
/// `failed_reason` in every `kinds[]` record): `kinds` as in [`report`], and the kinds that
/// died with their reason; the run is `failed` when any did, as probe makes it.
fn report_per_kind(kinds: &[(&str, u64, f64)], died: &[(&str, &str)]) -> Value {
    let outcome = if died.is_empty() {
        "completed"
    } else {
        "failed"
    };
    let mut r = report(outcome, T1, kinds);
    for k in r["details"]["kinds"].as_array_mut().unwrap() {
        let why = died.iter().find(|(d, _)| k["kind"] == *d).map(|(_, w)| *w);
        k["failed"] = why.is_some().into();
        k["failed_reason"] = why.into();
        if why.is_some() {
            // What probe reports for a kind that never ran: nothing done, no latency.
            k["good"] = 0.into();
            k["good_pct"] = 0.0.into();
            k["p99_us"] = Value::Null;
        }
    }
    for (d, _) in died {
        assert!(
            kinds.iter().any(|(k, _, _)| k == d),
            "{d} not among the kinds"
        );
    }
    r
}

/// A memory test in which the mem work of g1 (killed), g2 and b1 (both OOM-killed) died
/// while their cpu work ran; g3's report says nothing of kinds (an older probe) and failed.
#[test]
fn only_the_kinds_that_died_are_dnr_with_their_reason_in_a_footnote() {
    let dir = TempDir::new("compare-kinds");
    let r = &dir.path;
    for h in ["g1", "g2", "g3", "b1"] {
        let base = report_per_kind(&[("cpu", 1000, 100.0), ("mem", 900, 200.0)], &[]);
        put(r, "baseline", h, "probe-1.json", &base);
    }
    let test = |cpu: u64, p99: f64, died: &[(&str, &str)]| {
        report_per_kind(&[("cpu", cpu, p99), ("mem", 0, 0.0)], died)
    };
    put(
        r,
        "membomb",
        "g1",
        "p.json",
        &test(900, 200.0, &[("mem", "killed")]),
    );
    put(
        r,
        "membomb",
        "g2",
        "p.json",
        &test(800, 300.0, &[("mem", "oom_killed")]),
    );
    put(
        r,
        "membomb",
        "b1",
        "p.json",
        &test(500, 1000.0, &[("mem", "oom_killed")]),
    );
    put(
        r,
        "membomb",
        "g3",
        "p.json",
        &report("failed", T1, &[("cpu", 1000, 100.0), ("mem", 900, 200.0)]),
    );
    let p = r.to_str().unwrap();

    let (code, out, err) = compare(&[p, "--bad", "b1"]);
    assert_eq!(code, Some(0), "{err}");
    let line = |kind: &str| -> String {
        let section = out.split(&format!("## {kind} work")).nth(1).unwrap();
        section
            .lines()
            .find(|l| l.starts_with("| Memory |"))
            .unwrap_or_else(|| panic!("no Memory row for {kind}:\n{out}"))
            .to_string()
    };
    // The cpu work ran everywhere but on g3 (whose report failed as a whole): numbers.
    // g1 lost 10% of its good share and its p99 doubled; g2 20% and +200%; b1 50%, +900%.
    assert_eq!(
        line("cpu"),
        "| Memory | b1 | 15.00 (2 of 3) | 20.00 | 50.00 | 150.00 (2 of 3) | 200.00 | 900.00 |"
    );
    // The mem work died everywhere: DNR, each cell marked with its reason's footnote.
    assert_eq!(
        line("mem"),
        "| Memory | b1 | DNR¹ | DNR¹ | DNR² | DNR¹ | DNR¹ | DNR² |"
    );
    let mem = out.split("## mem work").nth(1).unwrap();
    assert!(
        mem.contains(
            "\n¹ mem on g1 in membomb: killed; mem on g2 in membomb: oom_killed; \
             mem on g3 in membomb: the run failed\n"
        ),
        "{out}"
    );
    assert!(
        mem.contains("\n² mem on b1 in membomb: oom_killed\n"),
        "{out}"
    );
    // The cpu table has no DNR, so no footnote.
    let cpu = out
        .split("## cpu work")
        .nth(1)
        .unwrap()
        .split("## mem work")
        .next()
        .unwrap();
    assert!(!cpu.contains('¹'), "{out}");
    assert!(
        err.contains("membomb: the mem work of b1 died (oom_killed): DNR for mem"),
        "{err}"
    );
    assert!(
        err.contains("membomb: the probe run of g3 failed (DNR)"),
        "{err}"
    );

    let (code, csv, err) = compare(&[p, "--bad", "b1", "--format", "csv"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines.contains(&"membomb,Memory,cpu,good_share,b1,15.00,20.00,50.00,2,3,1,,,,,,,,,"),
        "{csv}"
    );
    assert!(
        lines.contains(
            &"membomb,Memory,mem,p99_latency,b1,DNR,DNR,DNR,0,3,1,,,,,,,,\
              mem on g1 in membomb: killed; mem on g2 in membomb: oom_killed; \
              mem on g3 in membomb: the run failed,mem on b1 in membomb: oom_killed"
        ),
        "{csv}"
    );

    let (code, js, err) = compare(&[p, "--bad", "b1", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&js).unwrap();
    let row = |kind: &str| {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["test"] == "membomb" && r["kind"] == kind && r["measure"] == "good_share")
            .unwrap()
            .clone()
    };
    let (cpu, mem) = (row("cpu"), row("mem"));
    assert_eq!(cpu["bad_pct"], 50.0);
    assert_eq!(cpu["per_host_pct"]["g2"], 20.0);
    assert_eq!(
        (&cpu["bad_dnr_reason"], &cpu["good_dnr_reason"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(
        cpu["per_host_dnr_reason"]["g3"],
        "cpu on g3 in membomb: the run failed"
    );
    assert_eq!(mem["bad_pct"], Value::Null);
    assert_eq!(mem["bad_dnr_reason"], "mem on b1 in membomb: oom_killed");
    assert_eq!(
        mem["per_host_dnr_reason"]["g1"],
        "mem on g1 in membomb: killed"
    );
    assert_eq!(mem["good_reported"], 0);
}

/// A host with no report whose folder holds a `DNR` file (written by what ran the phase: a
/// host lost mid-phase, a guest that died) is DNR with that line as its footnote; one with
/// neither keeps the plain DNR.
#[test]
fn a_dnr_file_gives_the_reason_of_a_missing_report() {
    let dir = TempDir::new("compare-dnr-file");
    let r = &dir.path;
    for h in ["g1", "g2", "b1"] {
        put(
            r,
            "baseline",
            h,
            "probe-1.json",
            &report("completed", T0, &[("cpu", 1000, 100.0)]),
        );
    }
    put(
        r,
        "cpu",
        "g2",
        "probe-2.json",
        &report("completed", T1, &[("cpu", 900, 200.0)]),
    );
    std::fs::create_dir_all(r.join("cpu").join("b1")).unwrap();
    std::fs::write(
        r.join("cpu").join("b1").join("DNR"),
        "the probe was killed\nmore\n",
    )
    .unwrap();
    std::fs::create_dir_all(r.join("net-send").join("g1")).unwrap();
    std::fs::write(
        r.join("net-send").join("g1").join("DNR"),
        "g1 unreachable\n",
    )
    .unwrap();
    put(
        r,
        "net-send",
        "b1",
        "probe-3.json",
        &report("completed", T1, &[("cpu", 500, 1000.0)]),
    );
    let p = r.to_str().unwrap();
    let (code, out, err) = compare(&[p, "--bad", "b1"]);
    assert_eq!(code, Some(0), "{err}");
    let line = |label: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("no {label} row:\n{out}"))
            .to_string()
    };
    // cpu: g1 has neither report nor DNR file (plain DNR, g2's number is the mean), b1 the
    // killed probe. net-send: g1 lost, g2 no folder at all: the Good cells take g1's reason.
    assert_eq!(
        line("CPU"),
        "| CPU | b1 | 10.00 (1 of 2) | 10.00 | DNR¹ | 100.00 (1 of 2) | 100.00 | DNR¹ |"
    );
    assert_eq!(
        line("Network, server transmits"),
        "| Network, server transmits | b1 | DNR² | DNR² | 50.00 | DNR² | DNR² | 900.00 |"
    );
    assert!(
        out.contains("\n¹ cpu on b1 in cpu: the probe was killed\n"),
        "{out}"
    );
    assert!(
        out.contains("\n² cpu on g1 in net-send: g1 unreachable\n"),
        "{out}"
    );
    assert!(
        err.contains("cpu: no probe report from b1: the probe was killed (DNR)"),
        "{err}"
    );
    assert!(err.contains("cpu: no probe report from g1 (DNR)"), "{err}");
    assert!(
        err.contains("net-send: no probe report from g1: g1 unreachable (DNR)"),
        "{err}"
    );
}

/// Where Debian's chromium is (scripts/test installs it).
fn chromium() -> PathBuf {
    for c in ["chromium", "chromium-browser"] {
        for d in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(d).join(c);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium not found: install Debian's chromium (scripts/test does)");
}

/// Width, height, pixels that are not white, distinct colours of a PNG (decoded with
/// Python's zlib: 8-bit RGB or RGBA, the five filters).
const PNG_STATS: &str = r#"
import struct, sys, zlib
d = open(sys.argv[1], 'rb').read()
assert d[:8] == b'\x89PNG\r\n\x1a\n'
i, idat = 8, b''
while i < len(d):
    n, t = struct.unpack('>I4s', d[i:i + 8]); body = d[i + 8:i + 8 + n]; i += 12 + n
    if t == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    if t == b'IDAT': idat += body
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, rows, p = bytearray(stride), [], 0
for y in range(h):
    f, line = raw[p], bytearray(raw[p + 1:p + 1 + stride]); p += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            q = a + b - c; pa, pb, pc = abs(q - a), abs(q - b), abs(q - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(line); prev = line
px = [bytes(r[x:x + 3]) for r in rows for x in range(0, stride, bpp)]
print(w, h, sum(1 for q in px if q != b'\xff\xff\xff'), len(set(px)))
"#;

#[test]
fn the_svg_renders_in_headless_chromium() {
    let dir = results();
    let out = dir.path.join("out");
    let (code, _, err) = compare(&[
        dir.path.to_str().unwrap(),
        "--bad",
        "b1",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    for ext in ["md", "csv", "json", "svg"] {
        assert!(out.join(format!("degradation.{ext}")).is_file(), "{ext}");
    }
    let svg = std::fs::read_to_string(out.join("degradation.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("DNR") && svg.contains("Memory") && svg.contains("CPU"));
    let profile = TempDir::new("compare-chromium");
    let shot = dir.path.join("shot.png");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.path.display()),
            &format!("--screenshot={}", shot.display()),
            "--window-size=900,800",
            &format!("file://{}", out.join("degradation.svg").display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.is_some_and(|s| s.success()), "chromium: {status:?}");
    let stats = Command::new("python3")
        .args(["-c", PNG_STATS, shot.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let v: Vec<u64> = String::from_utf8_lossy(&stats.stdout)
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (w, h, ink, colours) = (v[0], v[1], v[2], v[3]);
    assert_eq!((w, h), (900, 800));
    // Not blank: bars, text and grid lines cover a share of the page, in many colours
    // (two kinds' colours, solid and light, anti-aliased text).
    assert!(ink > w * h / 100, "{ink} non-white pixels of {}", w * h);
    assert!(colours >= 8, "{colours} colours");
}
