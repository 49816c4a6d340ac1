//! The framework on its own, through `testbomb` (a test-only stressor, never shipped): the
//! deadline, stop signals, SIGKILL of the supervisor, respawn, every worker failing, the
//! interlock, `-o`, `--dry-run`, bad input, the summary and the terminal's status line,
//! latency histograms, rate caps, the thread rule, and the published schema. Each run is short and cheap (testbomb's workers sleep unless
//! told to spin).

use std::path::Path;
use std::time::Duration;

use common::testkit::{
    live_tagged, take_turn, validate, wait_for_live, wait_until_gone, Bin, Cgroup, ProcStat,
    TempDir,
};

fn bin() -> Bin {
    Bin::test_only("testbomb", env!("CARGO_BIN_EXE_testbomb"))
}

const T: Duration = Duration::from_secs(20);

/// The names in a folder of a test directory, sorted.
fn names(d: &TempDir, sub: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.path.join(sub))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_deadline_ends_the_run_with_a_full_report() {
    let out = bin().run(&["-t", "1500ms", "-w", "3", "--json", "-q"], T);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    assert_eq!(r["stop_reason"], "deadline");
    assert_eq!(r["left_behind"], 0);
    let stress = r["stress_s"].as_f64().unwrap();
    assert!((1.5..1.7).contains(&stress), "stress_s {stress}");
    assert!(r["teardown_s"].as_f64().unwrap() < 0.5);
    assert_eq!(r["workers"]["started"], 3);
    assert_eq!(r["workers"]["exited"], 3);
    // Sleep work: an op every 10 ms per worker.
    let ops = r["totals"]["ops"].as_u64().unwrap();
    assert!((200..=460).contains(&ops), "ops {ops}");
    assert_eq!(r["samples"].as_array().unwrap().len(), 1);
    assert_eq!(r["samples"][0]["level"], 3, "{}", r["samples"][0]);
    assert_eq!(r["peaks"]["level"], 3);
    assert_eq!(r["per_worker"].as_array().unwrap().len(), 3);
    assert!(r["details"]["ops_per_s"].as_f64().unwrap() > 100.0);
    // No latency histograms declared: no latency section.
    assert!(r.get("latency").is_none());
    assert!(live_tagged(&out.tag).is_empty());
}

/// Stopped by `sig` with its exit code; the report goes to stdout and to `-o`'s file, with
/// no temporary file left beside it.
fn stopped_by(sig: i32, name: &str, code: i32) {
    let dir = TempDir::new(name);
    let file = dir.path.join("r.json");
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
    assert!(wait_for_live(&run.tag, 4, T), "workers never started");
    std::thread::sleep(Duration::from_millis(200));
    run.signal(sig);
    let out = run.wait(T);
    assert_eq!(out.code, Some(code), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(r["stop_reason"], format!("received {name}"));
    assert_eq!(r["exit_code"], code);
    assert!(r["totals"]["ops"].as_u64().unwrap() > 0);
    assert!(r["elapsed_s"].as_f64().unwrap() < 3.0);
    let from_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(from_file["outcome"], "interrupted");
    assert_eq!(names(&dir, ""), ["r.json"]);
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn sigint_sigterm_sighup_stop_it_with_their_exit_codes() {
    stopped_by(libc::SIGINT, "SIGINT", 130);
    stopped_by(libc::SIGTERM, "SIGTERM", 143);
    stopped_by(libc::SIGHUP, "SIGHUP", 129);
}

/// A stop signal that comes while the host is probed and the plan made (a slow start in an
/// emulated guest) still ends the run as interrupted, with its report; a second one before
/// the run starts takes the default action, so Ctrl-C twice ends a stuck start.
#[test]
fn a_signal_before_the_run_starts_still_gives_a_report() {
    let run = bin().spawn(&["-t", "30", "--plan-delay", "800ms", "--json", "-q"]);
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGTERM);
    let out = run.wait(T);
    assert_eq!(out.code, Some(143), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(r["stop_reason"], "received SIGTERM");
    assert!(r["elapsed_s"].as_f64().unwrap() < 2.0, "{}", r["elapsed_s"]);
    assert!(live_tagged(&out.tag).is_empty());

    let run = bin().spawn(&["-t", "30", "--plan-delay", "2s", "--json", "-q"]);
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    run.signal(libc::SIGINT);
    let out = run.wait(T);
    assert_eq!(
        out.signal,
        Some(libc::SIGINT),
        "code {:?}: {}",
        out.code,
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn sigkill_of_the_supervisor_takes_every_worker_with_it() {
    let run = bin().spawn(&["-t", "30", "-w", "4", "-q"]);
    assert!(wait_for_live(&run.tag, 6, T), "workers never started");
    run.signal(libc::SIGKILL);
    let gone = wait_until_gone(&run.tag, Duration::from_secs(1));
    assert!(
        gone.is_ok(),
        "alive 1 s after SIGKILL: {:?}",
        gone.unwrap_err()
    );
}

#[test]
fn a_dead_worker_is_respawned_in_its_slot() {
    let out = bin().run(
        &[
            "-t",
            "1500ms",
            "-w",
            "2",
            "--die-after",
            "300ms",
            "--on-death",
            "respawn",
            "--json",
            "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    let w = &r["workers"];
    assert_eq!(
        (w["killed"].as_u64(), w["respawned"].as_u64()),
        (Some(2), Some(2)),
        "{w}"
    );
    assert_eq!(w["started"], 4, "{w}");
    assert_eq!(
        w["oom_killed"], 0,
        "a self-inflicted SIGKILL is no OOM kill: {w}"
    );
    for pw in r["per_worker"].as_array().unwrap() {
        assert_eq!(pw["respawns"], 1, "{pw}");
        // The slot's counters go on adding up across the respawn: more than 300 ms' worth.
        assert!(pw["ops"].as_u64().unwrap() > 60, "{pw}");
    }
    // Kept, not respawned: the run goes on with fewer workers.
    let out = bin().run(
        &[
            "-t",
            "1s",
            "-w",
            "2",
            "--die-after",
            "200ms",
            "--json",
            "-q",
        ],
        T,
    );
    let r = out.json();
    assert_eq!(r["outcome"], "failed", "every worker ended early");
    assert_eq!(r["workers"]["respawned"], 0);
    // One death ends the run when the stressor says so.
    let out = bin().run(
        &[
            "-t",
            "10s",
            "-w",
            "2",
            "--die-after",
            "200ms",
            "--on-death",
            "end",
            "--json",
            "-q",
        ],
        T,
    );
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    assert!(r["stop_reason"]
        .as_str()
        .unwrap()
        .contains("died (--on-death end)"));
    assert!(r["stress_s"].as_f64().unwrap() < 2.0);
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn every_worker_failing_fails_the_run_with_exit_1() {
    let out = bin().run(&["-t", "30", "-w", "3", "--fail", "--json"], T);
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["exit_code"], 1);
    assert_eq!(r["workers"]["failed"], 3);
    assert!(r["stop_reason"]
        .as_str()
        .unwrap()
        .starts_with("every worker ended early"));
    assert!(out.elapsed < Duration::from_secs(5));
    // Each worker says why, once, on stderr.
    let said = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("testbomb: worker "))
        .count();
    assert_eq!(said, 3, "{}", out.stderr);
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn a_worker_killed_from_outside_is_counted_and_the_rest_go_on() {
    let run = bin().spawn(&["-t", "2", "-w", "2", "--json", "-q"]);
    // supervisor + group leader + 2 workers
    assert!(wait_for_live(&run.tag, 4, T), "workers never started");
    let children = run.children();
    assert!(children.len() >= 3, "{children:?}");
    // SAFETY: a signal to one of the run's own worker processes (the first child leads
    // the process group).
    unsafe { libc::kill(children[1], libc::SIGKILL) };
    let out = run.wait(T);
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
fn bare_metal_is_refused_unless_allowed() {
    let bare = bin().with_env("MISBEHAVE_TEST_BARE_METAL", "1");
    let out = bare.run(&["-t", "1"], T);
    assert_eq!(out.code, Some(2));
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("bare metal") && out.stderr.contains("--allow-host"));
    assert!(live_tagged(&out.tag).is_empty());
    let ok = bare.run(&["-t", "200ms", "--allow-host", "--json", "-q"], T);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert_eq!(ok.json()["host"]["virtualization"]["kind"], "none");
    let plan = bare.run(&["--dry-run", "--json"], T).json();
    assert_eq!(plan["allowed"], false);
}

#[test]
fn dry_run_prints_a_plan_that_follows_its_schema_and_starts_nothing() {
    let out = bin().run(&["-t", "1h", "-w", "5", "--dry-run", "--json"], T);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(3));
    let p = out.json();
    assert_eq!(p["schema"], "misbehave.plan/1");
    assert_eq!(p["params"]["effective"]["workers"], 5);
    assert_eq!(p["params"]["effective"]["duration_s"], 3600.0);
    assert_eq!(p["params"]["requested"]["workers"], "5");
    // The flags given, by name, and nothing else (clap's group of the shared flags was
    // listed too, as "CommonArgs").
    let given: Vec<&str> = p["params"]["requested"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(given, ["dry-run", "duration", "json", "workers"]);
    let text = bin().run(&["--dry-run", "-t", "forever"], T);
    assert!(
        text.stdout.contains("testbomb plan (dry run"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("forever"), "{}", text.stdout);
    assert!(live_tagged(&out.tag).is_empty() && live_tagged(&text.tag).is_empty());
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    for args in [
        &["-t", "0"][..],
        &["-t", "5x"],
        &["-t", ""],
        &["-t", "30m1h"],
        &["-t"],
        &["-w", "0"],
        &["-w", "two"],
        &["-w", "99999"],
        &["--seed", "-1"],
        &["--rate", "10"],
        &["--on-death", "maybe"],
        &["-o", "/nonexistent-dir/r.json"],
        &["-o", "/"],
        &["--nope"],
        &["extra-positional"],
    ] {
        let out = bin().run(args, T);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("testbomb: "), "{}", out.stderr);
        assert!(out.stdout.is_empty());
        assert!(live_tagged(&out.tag).is_empty());
    }
}

#[test]
fn summary_goes_to_stderr_without_a_status_line_when_not_a_terminal() {
    let out = bin().run(&["-t", "1", "-w", "1"], T);
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.is_empty(),
        "stdout without --json: {}",
        out.stdout
    );
    assert!(
        out.stderr.starts_with("testbomb: completed after"),
        "{}",
        out.stderr
    );
    let rows: Vec<&str> = out.stderr.lines().skip(1).collect();
    for key in ["workers", "ops", "ops_per_s", "where"] {
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
    let (code, tty) = bin().run_on_terminal(&["-t", "2", "-w", "1"], T);
    assert_eq!(code, Some(0), "{tty}");
    // Redrawn in place once a second, then cleared before the summary.
    assert!(tty.matches("\r\x1b[2K").count() >= 2, "{tty:?}");
    assert!(tty.contains("workers 1") && tty.contains("ops "), "{tty:?}");
    assert!(
        tty.contains("\x1b[1mtestbomb\x1b[0m"),
        "no bold name: {tty:?}"
    );
    assert!(tty.contains("completed"), "{tty:?}");

    let plain = bin().with_env("NO_COLOR", "1");
    let (code, tty) = plain.run_on_terminal(&["-t", "2", "-w", "1"], T);
    assert_eq!(code, Some(0));
    assert!(
        tty.contains("\r\x1b[2K") && tty.contains("workers 1"),
        "{tty:?}"
    );
    assert!(
        !tty.contains("\x1b[1m") && !tty.contains("\x1b[32m"),
        "colour with NO_COLOR: {tty:?}"
    );

    let (code, tty) = bin().run_on_terminal(&["-t", "1", "-w", "1", "-q"], T);
    assert_eq!(code, Some(0));
    assert!(tty.is_empty(), "--quiet wrote to the terminal: {tty:?}");
}

#[test]
fn a_thread_before_the_fork_is_refused() {
    let out = bin().run(&["-t", "5", "--thread", "--json"], T);
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("threads exist before the workers are forked"),
        "{}",
        out.stderr
    );
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn latency_percentiles_for_the_run_and_every_second() {
    let _turn = take_turn();
    // Ops of 1..100 us, evenly: p50 is 50 us, p99 99 us, max 100 us.
    let out = bin().run(
        &[
            "-t",
            "2",
            "-w",
            "2",
            "--rate",
            "20k/s",
            "--latency-ramp",
            "--json",
            "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    let l = &r["latency"]["op"];
    let within = |v: &serde_json::Value, want: f64, tol: f64| {
        let v = v.as_f64().unwrap();
        assert!((v - want).abs() / want <= tol, "{v} vs {want}: {l}");
    };
    let near = |v: &serde_json::Value, want: f64| within(v, want, 0.01);
    near(&l["p50_us"], 50.0);
    near(&l["p90_us"], 90.0);
    near(&l["p99_us"], 99.0);
    assert_eq!(l["max_us"], 100.0);
    near(&l["mean_us"], 50.5);
    assert_eq!(l["count"], r["totals"]["ops"], "one latency per op");
    let samples = r["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    let mut in_samples = 0;
    for s in samples {
        let sl = &s["latency"]["op"];
        // A second cuts each worker's ramp of 100 values at an arbitrary point: a few
        // percent off the even mix.
        within(&sl["p50_us"], 50.0, 0.05);
        in_samples += sl["count"].as_u64().unwrap();
    }
    // The seconds' counts add up to what was recorded by the last sample. A worker records
    // a batch's latencies (20 ops here) before it counts them, and the supervisor reads a
    // slot's counters just before its histograms: so the histograms may hold the batches
    // in flight, never less than the ops. 1% (what the workers do in 20 ms) leaves room
    // for the supervisor being preempted between the two reads; a second lost or counted
    // twice is 20,000 off.
    let ops = samples[1]["ops"].as_u64().unwrap();
    assert!(
        in_samples >= ops && in_samples - ops <= ops / 100,
        "latencies in the seconds: {in_samples}, ops by the last sample: {ops}"
    );
    // The summary shows it.
    let text = bin().run(
        &["-t", "1", "-w", "1", "--rate", "1k/s", "--latency-ramp"],
        T,
    );
    assert!(text.stderr.contains("op_latency"), "{}", text.stderr);
    assert!(text.stderr.contains("p99 99."), "{}", text.stderr);
}

#[test]
fn the_rate_cap_holds_within_two_percent() {
    let _turn = take_turn();
    for (rate, per_s, workers) in [("200/s", 200.0, 1), ("50k/s", 5e4, 2), ("2M/s", 2e6, 2)] {
        let out = bin().run(
            &[
                "-t",
                "3",
                "-w",
                &workers.to_string(),
                "--work",
                "spin",
                "--rate",
                rate,
                "--json",
                "-q",
            ],
            T,
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let r = out.json();
        let got = r["rates"]["ops"].as_f64().unwrap();
        assert!(
            (got - per_s).abs() / per_s <= 0.02,
            "--rate {rate} x {workers} workers: {got}/s"
        );
    }
}

fn short_run_to(path: &Path) -> common::testkit::Output {
    bin().run(
        &["-t", "200ms", "-w", "1", "-q", "-o", path.to_str().unwrap()],
        T,
    )
}

#[test]
fn output_to_a_regular_file_is_atomic_and_leaves_nothing_else() {
    let dir = TempDir::new("file");
    let file = dir.path.join("r.json");
    std::fs::write(&file, "old").unwrap();
    let out = short_run_to(&file);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(validate(&r).is_ok());
    assert_eq!(r["tool"], "testbomb");
    assert_eq!(names(&dir, ""), ["r.json"]);
}

#[test]
fn output_to_a_device_writes_through_and_never_replaces_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = TempDir::new("dev");
    // Our own /dev/null (1:3) and /dev/full (1:7), so a regression cannot harm the machine's.
    let (null, full) = (dir.path.join("null"), dir.path.join("full"));
    for (p, minor) in [(&null, 3), (&full, 7)] {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mknod with a valid path; a character device node in our own directory.
        let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, minor)) };
        if rc != 0 {
            common::testkit::skip("mknod needs root");
            return;
        }
    }
    let out = short_run_to(&null);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(std::fs::metadata(&null)
        .unwrap()
        .file_type()
        .is_char_device());
    // A device that refuses the write: exit 1, one line, nothing replaced or left.
    let out = short_run_to(&full);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with("testbomb: error: writing the report to ")
            && lines[0].contains("ENOSPC"),
        "{}",
        lines[0]
    );
    assert!(std::fs::metadata(&full)
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(names(&dir, ""), ["full", "null"]);
}

#[test]
fn output_to_a_fifo_reaches_its_reader() {
    use std::os::unix::fs::FileTypeExt;
    let dir = TempDir::new("fifo");
    let fifo = dir.path.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path in our own directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = short_run_to(&fifo);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let got: serde_json::Value = serde_json::from_str(&reader.join().unwrap()).unwrap();
    assert_eq!(got["tool"], "testbomb");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(names(&dir, ""), ["pipe"]);
}

#[test]
fn output_through_a_symlink_writes_its_target_and_keeps_the_link() {
    let dir = TempDir::new("link");
    std::fs::create_dir(dir.path.join("real")).unwrap();
    let target = dir.path.join("real/r.json");
    std::fs::write(&target, "old").unwrap();
    let link = dir.path.join("link.json");
    std::os::unix::fs::symlink("real/r.json", &link).unwrap();
    let out = short_run_to(&link);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(r["outcome"], "completed");
    // A dangling link: its target is made.
    let dangling = dir.path.join("new.json");
    std::os::unix::fs::symlink("real/made.json", &dangling).unwrap();
    let out = short_run_to(&dangling);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(dir.path.join("real/made.json"))
        .unwrap()
        .contains("testbomb"));
    assert_eq!(names(&dir, ""), ["link.json", "new.json", "real"]);
    assert_eq!(names(&dir, "real"), ["made.json", "r.json"]);
}

#[test]
fn the_schema_rejects_what_breaks_it() {
    let out = bin().run(&["-t", "200ms", "-w", "1", "--json", "-q"], T);
    let good = out.json();
    for (path, bad) in [
        ("/outcome", serde_json::json!("exploded")),
        ("/host/virtualization/kind", serde_json::json!("maybe")),
        ("/totals/ops", serde_json::json!(-1)),
        ("/exit_code", serde_json::json!("0")),
    ] {
        let mut r = good.clone();
        *r.pointer_mut(path).unwrap() = bad;
        assert!(validate(&r).is_err(), "{path} accepted");
    }
    let mut r = good.clone();
    r.as_object_mut().unwrap().remove("samples");
    assert!(validate(&r).is_err(), "a report without samples accepted");
}

/// Reads `pipe` to its end in a thread of its own, then sends its name and text.
fn read_to_end_in_thread(
    name: &'static str,
    mut pipe: impl std::io::Read + Send + 'static,
    tx: std::sync::mpsc::Sender<(&'static str, String)>,
) {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        let _ = tx.send((name, text));
    });
}

/// Only the supervisor holds its stdout and stderr: a worker that outlives it (here frozen
/// in a v1 freezer cgroup, where even SIGKILL waits for the thaw, so teardown gives up on
/// it) keeps no pipe to the report's reader open, and `testbomb --json | jq` ends with the
/// supervisor.
#[test]
fn the_report_pipe_ends_with_the_supervisor_even_if_a_worker_lives_on() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::frozen("stuck-worker") else {
        return;
    };
    let mut run = bin().spawn(&["-t", "1", "-w", "2", "--json", "-q"]);
    let (out, err) = run.take_pipes();
    let (tx, rx) = std::sync::mpsc::channel();
    read_to_end_in_thread("stdout", out, tx.clone());
    read_to_end_in_thread("stderr", err, tx);
    assert!(wait_for_live(&run.tag, 4, T), "workers never started");
    // The group's leader, then worker 0.
    let children = run.children();
    assert!(children.len() >= 3, "{children:?}");
    let worker = children[1];
    cg.set("cgroup.procs", &worker.to_string());
    let status = run.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(1),
        "teardown cannot remove a frozen worker"
    );
    assert!(
        ProcStat::read(worker).is_some(),
        "the frozen worker is gone: the test tested nothing"
    );
    // Both pipes end at once (or never, while the worker is frozen and holds them).
    let mut ended = std::collections::HashMap::new();
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok((name, text)) => {
                ended.insert(name, text);
            }
            Err(_) => panic!("a pipe did not end with the supervisor: ended {ended:?}"),
        }
    }
    let r: serde_json::Value = serde_json::from_str(&ended["stdout"]).unwrap();
    assert!(validate(&r).is_ok());
    assert_eq!(r["outcome"], "failed");
    // The frozen worker alone: the group's leader dies at the first kill.
    assert_eq!(r["left_behind"], 1, "{}", r["stop_reason"]);
    assert_eq!(
        r["stop_reason"],
        "deadline; teardown left 1 process of the run alive"
    );
    // The cgroup's drop thaws the worker; its SIGKILL lands then.
    drop(cg);
    assert!(wait_until_gone(&run.tag, T).is_ok());
}
