//! probe driven as users drive it: the real binary, the JSON report, a stall injected from
//! outside, round trips to a real `netflood echo` on loopback. Runs are short; the disk
//! work runs in a temporary directory (and leaves nothing there); traffic stays on 127.0.0.1.

use std::time::{Duration, Instant};

use common::testkit::{
    live_tagged, port, take_turn, wait_for_live, wait_until_gone, Bin, Cgroup, Output, Running,
    TempDir,
};
use serde_json::Value;

common::test_binary!("probe");

/// netflood from the same place as probe (dist/ under scripts/test, else cargo's build
/// beside probe's: `cargo test --workspace` builds both).
fn netflood() -> Bin {
    let beside = std::path::Path::new(env!("CARGO_BIN_EXE_probe")).with_file_name("netflood");
    Bin::new("netflood", beside.to_str().unwrap())
}

const T: Duration = Duration::from_secs(60);

/// The run-level record of one kind (`details.kinds[]`).
fn kind<'a>(r: &'a Value, k: &str) -> &'a Value {
    r["details"]["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == k)
        .unwrap_or_else(|| panic!("no kind {k} in {}", r["details"]))
}

/// The per-second rows of one kind (`details.per_second[]`).
fn seconds<'a>(r: &'a Value, k: &str) -> Vec<&'a Value> {
    r["details"]["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == k)
        .collect()
}

#[test]
fn holds_its_offered_rate_for_every_kind_and_leaves_nothing() {
    let _turn = take_turn();
    let dir = TempDir::new("probe-rate");
    let d = dir.path.to_str().unwrap().to_string();
    let out = bin().run(
        &[
            "-t",
            "3",
            "--work",
            "cpu,mem,disk",
            "--rate",
            "200/s",
            "--rate",
            "disk=50/s",
            "--mem-size",
            "16M",
            "--file-size",
            "4M",
            "--dir",
            &d,
            "--json",
            "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["tool"], "probe");
    assert_eq!(r["outcome"], "completed");
    assert_eq!(r["workers"]["started"], 4, "3 kinds and the monitor");
    let stress = r["stress_s"].as_f64().unwrap();
    for (k, rate) in [("cpu", 200.0), ("mem", 200.0), ("disk", 50.0)] {
        let x = kind(&r, k);
        assert_eq!(x["rate_per_s"], rate);
        let offered = x["offered"].as_f64().unwrap();
        let done = x["completed"].as_f64().unwrap();
        // Open loop: what was offered is the schedule (rate x time, less the setup before a
        // worker's first operation), and what was done is within a few percent of it.
        assert!(
            offered <= rate * stress + 1.0 && offered >= rate * (stress - 1.0),
            "{k}: offered {offered} in {stress} s"
        );
        assert!(done >= 0.95 * offered && done <= offered, "{k}: {x}");
        assert!(x["good"].as_u64().unwrap() <= done as u64);
        assert!(x["p50_us"].as_f64().unwrap() > 0.0, "{x}");
        assert!(x["p99_us"].as_f64().unwrap() >= x["p50_us"].as_f64().unwrap());
        assert_eq!(r["latency"][k]["count"].as_f64().unwrap(), done);
        assert_eq!(r["totals"][format!("{k}_ops")].as_f64().unwrap(), done);
        // Per second: the offered rate, the achieved one near it once the worker runs.
        let rows = seconds(&r, k);
        assert_eq!(rows.len(), r["samples"].as_array().unwrap().len());
        let last = rows.last().unwrap();
        assert_eq!(last["offered_per_s"], rate);
        let got = last["achieved_per_s"].as_f64().unwrap();
        assert!((got - rate).abs() <= 0.05 * rate + 1.0, "{k}: {last}");
        assert!(last["good_pct"].as_f64().unwrap() <= 100.0);
        assert!(last["p99_us"].as_f64().is_some() && last["max_us"].as_f64().is_some());
    }
    assert!(r["details"]["kinds"].as_array().unwrap().len() == 3);
    // Net was not asked for: no note about it.
    assert!(r["details"].get("notes").is_none(), "{}", r["details"]);
    // Contention signals, one row a second.
    let sig = r["details"]["signals"].as_array().unwrap();
    assert_eq!(sig.len(), r["samples"].as_array().unwrap().len());
    if std::path::Path::new("/proc/self/schedstat").exists() {
        assert!(sig.iter().all(|s| s["runq_wait_ms"].as_f64().is_some()));
    }
    if std::path::Path::new("/proc/pressure/cpu").exists() {
        assert!(sig.iter().all(|s| s["psi_cpu_some_pct"].as_f64().is_some()));
    }
    assert!(sig.iter().all(|s| s["steal_pct"].as_f64().is_some()));
    assert!(dir.names().is_empty(), "left behind: {:?}", dir.names());
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn a_stall_shows_as_latency_from_the_intended_start_and_a_drop_in_the_good_share() {
    let _turn = take_turn();
    // 1000/s natively; under emulation (each operation ~10x dearer) 200/s, so the probe
    // keeps its schedule outside the stall.
    let rate = if bin().emulated() { "200/s" } else { "1000/s" };
    let run = bin().spawn(&["-t", "4", "--work", "cpu", "--rate", rate, "--json", "-q"]);
    assert!(wait_for_live(&run.tag, 3, T), "probe never started");
    std::thread::sleep(Duration::from_millis(1300));
    // Stop every process of the run but the supervisor (it keeps the clock and samples).
    // 330 ms: the 300 ms the test is about, plus the gap to the next intended start (1 ms
    // at 1000/s, 5 ms at 200/s), so that an operation due just after the stop began waits
    // at least 300 ms.
    let victims: Vec<i32> = live_tagged(&run.tag)
        .into_iter()
        .filter(|p| *p != run.pid())
        .collect();
    assert!(!victims.is_empty());
    let t = Instant::now();
    for p in &victims {
        // SAFETY: signals to processes of the run this test started.
        unsafe { libc::kill(*p, libc::SIGSTOP) };
    }
    std::thread::sleep(Duration::from_millis(330));
    for p in &victims {
        // SAFETY: as above.
        unsafe { libc::kill(*p, libc::SIGCONT) };
    }
    let stopped = t.elapsed();
    let out = run.wait(T);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    let rows = seconds(&r, "cpu");
    let stalled: Vec<&&Value> = rows
        .iter()
        .filter(|s| s["max_us"].as_f64().unwrap_or(0.0) >= 300_000.0)
        .collect();
    assert!(
        !stalled.is_empty(),
        "no second shows the {stopped:?} stop: {rows:#?}"
    );
    // The operations that were due while the probe was stopped ran late: that second's good
    // share drops by about the stop's share of it (SLO 2 ms).
    for s in &stalled {
        let good = s["good_pct"].as_f64().unwrap();
        assert!(good < 90.0, "good share {good} in {s}");
    }
    let x = kind(&r, "cpu");
    assert!(x["max_us"].as_f64().unwrap() >= 300_000.0, "{x}");
    assert!(x["good_pct"].as_f64().unwrap() < 95.0, "{x}");
    // Nothing was lost: the late operations ran (open loop), so completed stays near offered.
    let (o, c) = (
        x["offered"].as_f64().unwrap(),
        x["completed"].as_f64().unwrap(),
    );
    assert!(c >= 0.95 * o, "{x}");
}

/// SIGKILLs the first worker of a run (the supervisor's second child by start, after the
/// process group's leader) `after` its start, and waits for the end.
fn kill_first_worker(run: Running, workers: usize, after: Duration) -> Output {
    assert!(
        wait_for_live(&run.tag, workers + 2, T),
        "probe never started"
    );
    std::thread::sleep(after);
    // The group's leader, then the workers.
    let children = run.children();
    assert!(children.len() > workers, "{children:?}");
    // SAFETY: a signal to a process of the run this test started.
    unsafe { libc::kill(children[1], libc::SIGKILL) };
    run.wait(T)
}

/// A worker killed mid-run (as the OOM killer would) served nothing for the rest of the
/// run, and that is counted: every operation due until the deadline was offered, so the
/// good share falls and the report says a worker ended early. Its kind's other worker ran
/// on, so the kind did not fail, nor did the run.
#[test]
fn a_killed_worker_counts_its_outage_against_the_good_share() {
    let _turn = take_turn();
    let run = bin().spawn(&[
        "-t", "3", "--work", "cpu", "-w", "2", "--rate", "200/s", "--json", "-q",
    ]);
    let out = kill_first_worker(run, 3, Duration::from_millis(1000));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    let x = kind(&r, "cpu");
    assert_eq!(x["workers_ended_early"], 1, "{x}");
    assert_eq!(
        (&x["failed"], &x["failed_reason"]),
        (&Value::Bool(false), &Value::Null)
    );
    let stress = r["stress_s"].as_f64().unwrap();
    let offered = x["offered"].as_f64().unwrap();
    assert!(offered >= 0.9 * 200.0 * stress, "{x}");
    assert!(x["good_pct"].as_f64().unwrap() < 90.0, "{x}");
    assert_eq!(r["workers"]["killed"], 1, "{}", r["workers"]);
}

/// A kind whose every worker was killed before the stop failed, and so did the run: its
/// numbers are an outage, not a measurement of the guest.
#[test]
fn a_kind_whose_only_worker_is_killed_fails_the_run() {
    let _turn = take_turn();
    let run = bin().spawn(&[
        "-t", "3", "--work", "cpu", "--rate", "200/s", "--json", "-q",
    ]);
    let out = kill_first_worker(run, 2, Duration::from_millis(1000));
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["exit_code"], 1);
    let x = kind(&r, "cpu");
    assert_eq!(x["failed"], true, "{x}");
    // The supervisor takes a SIGKILL for the OOM killer's when the kernel's count of OOM
    // kills went up meanwhile, which another run on a shared machine can make happen: the
    // reason follows the supervisor's count.
    let why = if r["workers"]["oom_killed"] == 0 {
        "killed"
    } else {
        "oom_killed"
    };
    assert_eq!(x["failed_reason"], why, "{x} {}", r["workers"]);
    assert_eq!(
        r["stop_reason"],
        format!("deadline; probe work died: cpu ({why})")
    );
}

/// The mem worker OOM-killed while it fills its working set (256 MiB in a 48 MiB memory
/// cgroup), before every worker is set up: the cpu worker does not wait for it, but runs
/// its whole schedule; the mem kind says it died and why, and the run is `failed`.
#[test]
fn a_kind_that_dies_while_setting_up_fails_and_the_others_run_on() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::memory("probe-oom", 48 << 20) else {
        return;
    };
    let rate = 200.0;
    let out = bin()
        .spawn_in(
            &[
                "-t",
                "3",
                "--work",
                "cpu,mem",
                "--mem-size",
                "256M",
                "--rate",
                "200/s",
                "--json",
                "-q",
            ],
            Some(&cg),
        )
        .wait(T);
    let gone = wait_until_gone(&out.tag, Duration::from_secs(1));
    assert!(gone.is_ok(), "still alive after the end: {gone:?}");
    assert!(
        cg.procs().is_empty(),
        "left in the cgroup: {:?}",
        cg.procs()
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["exit_code"], 1);
    assert_eq!(
        r["stop_reason"], "deadline; probe work died: mem (oom_killed)",
        "{}",
        r["workers"]
    );
    assert!(
        r["workers"]["oom_killed"].as_u64().unwrap() >= 1,
        "{}",
        r["workers"]
    );
    let mem = kind(&r, "mem");
    assert_eq!(mem["failed"], true, "{mem}");
    assert_eq!(mem["failed_reason"], "oom_killed", "{mem}");
    assert_eq!(mem["completed"], 0, "{mem}");
    // The cpu worker kept its schedule from the start to the stop: not a speed threshold
    // (200 operations a second of ~0.1 ms each), but whether its schedule ran at all.
    let cpu = kind(&r, "cpu");
    assert_eq!(cpu["failed"], false, "{cpu}");
    assert_eq!(cpu["failed_reason"], Value::Null, "{cpu}");
    let stress = r["stress_s"].as_f64().unwrap();
    let done = cpu["completed"].as_f64().unwrap();
    assert!(done >= 0.8 * rate * stress, "{cpu} in {stress} s");
    assert!(cpu["good_pct"].as_f64().is_some(), "{cpu}");
    assert_eq!(cpu["workers_ended_early"], 0, "{cpu}");
    // The schema knows the new fields: a reason it does not name is refused.
    let mut bad = r.clone();
    for k in bad["details"]["kinds"].as_array_mut().unwrap() {
        if k["kind"] == "mem" {
            k["failed_reason"] = "exploded".into();
        }
    }
    assert!(
        common::testkit::validate(&bad).is_err(),
        "failed_reason exploded accepted"
    );
}

#[test]
fn echo_round_trips_on_loopback() {
    let _turn = take_turn();
    let addr = format!("127.0.0.1:{}", port());
    let echo = netflood().spawn(&["echo", "--listen", &addr, "-w", "1", "-t", "30", "-q"]);
    assert!(wait_for_live(&echo.tag, 3, T), "echo never started");
    std::thread::sleep(Duration::from_millis(300 + (1000.0 * bin().slack()) as u64));
    let out = bin().run(
        &[
            "-t", "2", "--work", "net", "--echo", &addr, "--rate", "500/s", "--json", "-q",
        ],
        T,
    );
    echo.signal(libc::SIGTERM);
    let e = echo.wait(T);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    let x = kind(&r, "net");
    assert_eq!(x["lost"], 0, "{x}");
    let (o, c) = (
        x["offered"].as_f64().unwrap(),
        x["completed"].as_f64().unwrap(),
    );
    assert!(c >= 0.95 * o && c > 500.0, "{x}");
    assert!(x["p50_us"].as_f64().unwrap() > 0.0);
    assert_eq!(r["latency"]["net"]["count"].as_f64().unwrap(), c);
    assert_eq!(r["params"]["effective"]["echo"], addr.as_str());
    // The echo reflected every request.
    assert_eq!(e.code, Some(143), "{}", e.stderr);
    assert!(live_tagged(&out.tag).is_empty() && live_tagged(&e.tag).is_empty());
}

#[test]
fn bad_input_is_refused_with_one_line_and_exit_2() {
    for args in [
        &["--work", "gpu"][..],
        &["--work", ""],
        &["--work", "net"],
        &["--rate", "0/s"],
        &["--rate", "fast"],
        &["--rate", "gpu=5/s"],
        &["--rate", "1M/s"],
        &["--slo", "0"],
        &["--slo", "soon"],
        &["--echo", "0.0.0.0:9000"],
        &["--echo", "127.0.0.1:0"],
        &["--echo", "nowhere"],
        &["--work", "disk", "--dir", "/nonexistent/probe"],
        &["--mem-size", "1"],
        &["-t", "0"],
    ] {
        let mut all = args.to_vec();
        all.extend(["-q", "--dry-run"]);
        let out = bin().run(&all, T);
        assert_eq!(out.code, Some(2), "{args:?}: stderr {}", out.stderr);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn the_plan_names_what_runs_and_why_net_does_not() {
    let out = bin().run(&["--dry-run", "--json", "--slo", "disk=50ms"], T);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let p = out.json();
    let e = &p["params"]["effective"];
    let work: Vec<&str> = e["work"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(!work.contains(&"net"), "{e}");
    assert!(work.contains(&"cpu") && work.contains(&"mem"), "{e}");
    assert_eq!(e["slo_ms"]["cpu"], 2.0);
    assert_eq!(e["rate_per_s"]["cpu"], 200.0);
    assert!(e["notes"][0].as_str().unwrap().contains("--echo"), "{e}");
    if work.contains(&"disk") {
        assert_eq!(e["slo_ms"]["disk"], 50.0);
    }
}
