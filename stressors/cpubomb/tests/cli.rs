//! cpubomb driven as users drive it: the real binary, real signals, the JSON report.

use std::time::Duration;

use common::testkit::{live_tagged, take_turn, wait_for_live, wait_until_gone, Bin};

fn bin() -> Bin {
    Bin::new("cpubomb", env!("CARGO_BIN_EXE_cpubomb"))
}

fn slack() -> f64 {
    bin().slack()
}

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
        (2.0..=3.0 + slack()).contains(&elapsed),
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
    let tol = 4.0 + 4.0 * slack();
    assert!((load - 50.0).abs() <= tol, "load {load}% for --load 50");
    assert_eq!(r["details"]["target_load_pct"], 50);
    assert_eq!(r["params"]["effective"]["load_pct"], 50);
    assert_eq!(r["params"]["requested"]["load"], "50");
}

fn interrupted_by(sig: i32, name: &str, code: i32) {
    let _turn = take_turn();
    let dir = std::env::temp_dir().join(format!("cpubomb-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("r.json");
    let run = bin().spawn(&[
        "-t",
        "30",
        "-w",
        "2",
        "--json",
        "-q",
        "-o",
        file.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(1200 + (1000.0 * slack()) as u64));
    run.signal(sig);
    let out = run.wait(Duration::from_secs(10));
    assert_eq!(out.code, Some(code), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(r["stop_reason"], format!("received {name}"));
    assert_eq!(r["exit_code"], code);
    assert!(r["totals"]["ops"].as_u64().unwrap() > 0);
    assert!(r["elapsed_s"].as_f64().unwrap() < 5.0 + slack() * 3.0);
    // The file holds the same report, and no temporary file is left beside it.
    let from_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(from_file["outcome"], "interrupted");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn sigint_interrupts_with_exit_130_and_a_report() {
    interrupted_by(libc::SIGINT, "SIGINT", 130);
}

#[test]
fn sigterm_interrupts_with_exit_143_and_a_report() {
    interrupted_by(libc::SIGTERM, "SIGTERM", 143);
}

#[test]
fn sighup_interrupts_with_exit_129_and_a_report() {
    interrupted_by(libc::SIGHUP, "SIGHUP", 129);
}

#[test]
fn sigkill_of_the_supervisor_leaves_no_worker_alive() {
    let _turn = take_turn();
    let run = bin().spawn(&["-t", "30", "-w", "3", "-q"]);
    // supervisor + group leader + 3 workers
    assert!(
        wait_for_live(&run.tag, 5, Duration::from_secs(10)),
        "workers never started"
    );
    run.signal(libc::SIGKILL);
    let gone = wait_until_gone(&run.tag, Duration::from_secs(1));
    assert!(
        gone.is_ok(),
        "still alive 1 s after SIGKILL: {:?}",
        gone.unwrap_err()
    );
}

#[test]
fn when_every_worker_fails_the_run_fails_with_exit_1_and_a_report() {
    let failing = bin().with_env("MISBEHAVE_TEST_WORKERS_FAIL", "1");
    let out = failing.run(&["-t", "30", "-w", "2", "--json"], Duration::from_secs(20));
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.elapsed < Duration::from_secs(10),
        "did not end at once: {:?}",
        out.elapsed
    );
    let r = out.json();
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["exit_code"], 1);
    assert_eq!(r["workers"]["failed"], 2, "{}", r["workers"]);
    assert!(r["stop_reason"]
        .as_str()
        .unwrap()
        .starts_with("every worker ended early"));
    // Each worker says why, once, on stderr.
    let said = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("cpubomb: worker "))
        .count();
    assert_eq!(said, 2, "{}", out.stderr);
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn a_worker_killed_from_outside_is_counted_and_the_rest_go_on() {
    let _turn = take_turn();
    let run = bin().spawn(&["-t", "3", "-w", "2", "--json", "-q"]);
    // Workers: children of the supervisor that do not lead the run's process group.
    let workers = |sup: i32| -> Vec<i32> {
        live_tagged(&run.tag)
            .into_iter()
            .filter(|&p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                let f: Vec<&str> = stat
                    .rsplit_once(") ")
                    .map_or(vec![], |(_, r)| r.split(' ').collect());
                f.len() > 2 && f[1] == sup.to_string() && f[2] != p.to_string()
            })
            .collect()
    };
    let t0 = std::time::Instant::now();
    let mut w = workers(run.pid());
    while w.len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "workers never started"
        );
        std::thread::sleep(Duration::from_millis(20));
        w = workers(run.pid());
    }
    // SAFETY: a signal to one of the run's own worker processes.
    unsafe { libc::kill(w[0], libc::SIGKILL) };
    let out = run.wait(Duration::from_secs(20));
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    assert_eq!(r["stop_reason"], "deadline");
    assert_eq!(r["workers"]["killed"], 1, "{}", r["workers"]);
    assert_eq!(r["workers"]["exited"], 1, "{}", r["workers"]);
    assert_eq!(r["workers"]["respawned"], 0);
    // A SIGKILL from outside is not the OOM killer's (the kernel's count did not move).
    assert_eq!(r["workers"]["oom_killed"], 0, "{}", r["workers"]);
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn bad_values_are_refused_with_one_line_and_exit_2() {
    let cases: &[&[&str]] = &[
        &["-t", "0"],
        &["-t", "5x"],
        &["-t", ""],
        &["-t", "30m1h"],
        &["-t"],
        &["-w", "0"],
        &["-w", "two"],
        &["-w", "99999"],
        &["--load", "0"],
        &["--load", "101"],
        &["--load", "half"],
        &["--method", "quantum"],
        &["--seed", "-1"],
        &["-o", "/nonexistent-dir/r.json"],
        &["-o", "/"],
        &["--bogus"],
        &["extra-positional"],
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
fn dry_run_resolves_the_plan_and_starts_nothing() {
    // An hour-long plan that returns at once: no worker ran.
    let out = bin().run(
        &["-t", "1h", "--dry-run", "--json"],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
    let p = out.json();
    assert_eq!(p["schema"], "misbehave.plan/1");
    let usable = p["host"]["cpus"]["usable"].as_u64().unwrap();
    assert_eq!(
        p["params"]["effective"]["workers"], usable,
        "workers default to usable CPUs"
    );
    assert_eq!(p["params"]["effective"]["duration_s"], 3600.0);
    assert_eq!(p["allowed"], true);
    let text = bin().run(
        &["--dry-run", "-t", "forever", "-w", "3"],
        Duration::from_secs(10),
    );
    assert_eq!(text.code, Some(0));
    assert!(text.stdout.contains("dry run"), "{}", text.stdout);
    assert!(text.stdout.contains("forever"), "{}", text.stdout);
    assert!(live_tagged(&out.tag).is_empty() && live_tagged(&text.tag).is_empty());
}

#[test]
fn bare_metal_is_refused_unless_allowed() {
    let _turn = take_turn();
    let bare = bin().with_env("MISBEHAVE_TEST_BARE_METAL", "1");
    let out = bare.run(&["-t", "1"], Duration::from_secs(10));
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("bare metal") && out.stderr.contains("--allow-host"));
    let ok = bare.run(
        &["-t", "1", "-w", "1", "--allow-host", "--json", "-q"],
        Duration::from_secs(10),
    );
    assert_eq!(ok.code, Some(0), "stderr: {}", ok.stderr);
    assert_eq!(ok.json()["host"]["virtualization"]["kind"], "none");
}

#[test]
fn summary_goes_to_stderr_without_a_status_line_when_not_a_terminal() {
    let _turn = take_turn();
    let out = bin().run(&["-t", "1", "-w", "1"], Duration::from_secs(10));
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.is_empty(),
        "stdout without --json: {}",
        out.stdout
    );
    assert!(
        out.stderr.starts_with("cpubomb: completed after"),
        "{}",
        out.stderr
    );
    // People get the findings, not the internals: no nanosecond clocks, one aligned column.
    assert!(!out.stderr.contains("cpu_ns"), "{}", out.stderr);
    let rows: Vec<&str> = out.stderr.lines().skip(1).collect();
    for key in ["workers", "ops", "cpu", "load_pct", "where"] {
        assert!(
            rows.iter()
                .any(|l| l.split_whitespace().next() == Some(key)),
            "summary lacks {key}: {}",
            out.stderr
        );
    }
    // The value column starts at the same place on every row.
    let value_col = |l: &str| {
        let key_end = 2 + l[2..].find(' ').unwrap_or(0);
        key_end + l[key_end..].len() - l[key_end..].trim_start().len()
    };
    let cols: Vec<usize> = rows.iter().map(|l| value_col(l)).collect();
    assert!(
        cols.windows(2).all(|w| w[0] == w[1]),
        "columns not aligned: {cols:?}\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains('\r') && !out.stderr.contains('\x1b'),
        "{:?}",
        out.stderr
    );
}

#[test]
fn a_terminal_gets_a_live_status_line_with_colour_unless_no_color() {
    let _turn = take_turn();
    let (code, tty) = bin().run_on_terminal(&["-t", "2", "-w", "1"], Duration::from_secs(20));
    assert_eq!(code, Some(0), "{tty}");
    // Redrawn in place once a second, then cleared before the summary.
    assert!(tty.matches("\r\x1b[2K").count() >= 2, "{tty:?}");
    assert!(tty.contains("workers 1") && tty.contains("ops "), "{tty:?}");
    assert!(
        tty.contains("\x1b[1mcpubomb\x1b[0m"),
        "no bold name: {tty:?}"
    );
    assert!(tty.contains("completed"), "{tty:?}");

    let plain = bin().with_env("NO_COLOR", "1");
    let (code, tty) = plain.run_on_terminal(&["-t", "2", "-w", "1"], Duration::from_secs(20));
    assert_eq!(code, Some(0));
    assert!(
        tty.contains("\r\x1b[2K") && tty.contains("workers 1"),
        "{tty:?}"
    );
    assert!(
        !tty.contains("\x1b[1m") && !tty.contains("\x1b[32m"),
        "colour with NO_COLOR: {tty:?}"
    );

    let (code, tty) = bin().run_on_terminal(&["-t", "1", "-w", "1", "-q"], Duration::from_secs(20));
    assert_eq!(code, Some(0));
    assert!(tty.is_empty(), "--quiet wrote to the terminal: {tty:?}");
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
