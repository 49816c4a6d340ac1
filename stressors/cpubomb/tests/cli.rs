//! cpubomb driven as users drive it: the real binary, the JSON report. What every binary
//! shares (signals, SIGKILL of the supervisor, failing workers, the interlock, the shared
//! flags, the summary's layout, the terminal's status line) is tested once, through
//! testbomb, in common/tests/framework.rs.

use std::time::Duration;

use common::testkit::{live_tagged, take_turn};

common::test_binary!("cpubomb");

#[test]
fn a_two_second_run_reports_real_values() {
    let _turn = take_turn();
    let out = bin().run(
        &["-t", "2", "-w", "2", "--json", "-q"],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stderr.is_empty(), "--quiet printed: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["schema"], "misbehave.report/1");
    assert_eq!(r["tool"], "cpubomb");
    assert_eq!(r["outcome"], "completed");
    assert_eq!(r["stop_reason"], "deadline");
    assert_eq!(r["exit_code"], 0);
    let elapsed = r["elapsed_s"].as_f64().unwrap();
    assert!(
        (2.0..=3.0 + bin().slack()).contains(&elapsed),
        "elapsed_s {elapsed}"
    );
    assert!(r["teardown_s"].as_f64().unwrap() < 1.0);
    assert_eq!(r["teardown_method"], "process group");
    assert_eq!(r["workers"]["started"], 2);
    assert_eq!(r["workers"]["exited"], 2, "{}", r["workers"]);
    assert_eq!(r["workers"]["killed"], 0);
    let ops = r["totals"]["ops"].as_u64().unwrap();
    assert!(ops > 0);
    assert!(r["rates"]["ops"].as_f64().unwrap() > 0.0);
    assert!(
        r["totals"]["cpu_s"].as_f64().unwrap() > 0.5,
        "{}",
        r["totals"]
    );
    // One sample per second, counters growing.
    let samples = r["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "{samples:?}");
    assert_eq!(samples[0]["t"], 1.0);
    assert_eq!(samples[1]["t"], 2.0);
    let (s0, s1) = (
        samples[0]["ops"].as_u64().unwrap(),
        samples[1]["ops"].as_u64().unwrap(),
    );
    assert!(0 < s0 && s0 < s1 && s1 <= ops, "{s0} {s1} {ops}");
    let pw = r["per_worker"].as_array().unwrap();
    assert_eq!(pw.len(), 2);
    let sum: u64 = pw.iter().map(|w| w["ops"].as_u64().unwrap()).sum();
    assert_eq!(sum, ops);
    assert!(pw.iter().all(|w| w["ops_per_s"].as_f64().unwrap() > 0.0));
    assert!(r["details"]["load_pct"].as_f64().unwrap() > 10.0);
    assert!(r["workers"]["ready_s"].as_f64().unwrap() < 1.0);
    assert_ne!(r["host"]["virtualization"]["kind"], "none");
    assert!(r["host"]["cpus"]["usable"].as_u64().unwrap() >= 1);
    assert!(r["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn load_50_lands_near_half_the_cpu_time() {
    let _turn = take_turn();
    let out = bin().run(
        &["-t", "3", "-w", "1", "--load", "50", "--json", "-q"],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    let load = r["details"]["load_pct"].as_f64().unwrap();
    let tol = 4.0 + 4.0 * bin().slack();
    assert!((load - 50.0).abs() <= tol, "load {load}% for --load 50");
    assert_eq!(r["details"]["target_load_pct"], 50);
    assert_eq!(r["params"]["effective"]["load_pct"], 50);
    assert_eq!(r["params"]["requested"]["load"], "50");
}

/// cpubomb's own flags; the shared ones (`-t`, `-w`, `-o`, `--seed`) are tested once, in
/// common/tests/framework.rs.
#[test]
fn bad_values_are_refused_with_one_line_and_exit_2() {
    let cases: &[&[&str]] = &[
        &["--load", "0"],
        &["--load", "101"],
        &["--load", "half"],
        &["--method", "quantum"],
    ];
    for args in cases {
        let out = bin().run(args, Duration::from_secs(10));
        assert_eq!(out.code, Some(2), "{args:?}: stderr {}", out.stderr);
        let lines: Vec<_> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: not one line: {:?}", out.stderr);
        assert!(lines[0].starts_with("cpubomb: "), "{args:?}: {}", lines[0]);
        assert!(out.stdout.is_empty(), "{args:?}: stdout {}", out.stdout);
        assert!(live_tagged(&out.tag).is_empty());
    }
}

#[test]
fn dry_run_gives_a_worker_per_usable_cpu_and_starts_nothing() {
    // An hour-long plan that returns at once: no worker ran.
    let out = bin().run(
        &["-t", "1h", "--dry-run", "--json"],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
    let p = out.json();
    let usable = p["host"]["cpus"]["usable"].as_u64().unwrap();
    assert_eq!(
        p["params"]["effective"]["workers"], usable,
        "workers default to usable CPUs"
    );
    assert!(live_tagged(&out.tag).is_empty());
}

/// The summary shows cpubomb's findings (the load, the CPU time), not its nanosecond
/// clocks; its layout is tested once, in common/tests/framework.rs.
#[test]
fn the_summary_shows_the_load_not_the_clocks() {
    let _turn = take_turn();
    let out = bin().run(&["-t", "1", "-w", "1"], Duration::from_secs(10));
    assert_eq!(out.code, Some(0));
    assert!(
        out.stderr.starts_with("cpubomb: completed after"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("cpu_ns"), "{}", out.stderr);
    let rows: Vec<&str> = out.stderr.lines().skip(1).collect();
    for key in ["cpu", "load_pct"] {
        assert!(
            rows.iter()
                .any(|l| l.split_whitespace().next() == Some(key)),
            "summary lacks {key}: {}",
            out.stderr
        );
    }
}

#[test]
fn help_and_version() {
    let h = bin().run(&["--help"], Duration::from_secs(10));
    assert_eq!(h.code, Some(0));
    for needle in [
        "Examples:",
        "--load",
        "--allow-host",
        "Exit codes:",
        "forever",
        "80%",
    ] {
        assert!(h.stdout.contains(needle), "--help lacks {needle}");
    }
    let v = bin().run(&["--version"], Duration::from_secs(10));
    assert_eq!(v.code, Some(0));
    assert_eq!(
        v.stdout.trim(),
        format!("cpubomb {}", env!("CARGO_PKG_VERSION"))
    );
}
