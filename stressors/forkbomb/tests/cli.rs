//! forkbomb driven as users drive it: the real binary, real signals, the JSON report.
//!
//! Every run here happens inside a pids cgroup the test makes (pids.max well above the
//! run's --max-procs), so a bug in the cap can never reach the machine's process table.
//! Where no pids cgroup can be made, the test says so and skips.

use std::time::Duration;

use common::testkit::{
    live_tagged, take_turn, wait_for_live, wait_until_gone, Cgroup, Output, ProcStat, Running,
};

common::test_binary!("forkbomb");

/// Under qemu-user every emulated process carries a thread of qemu's own, and the pids
/// controller counts threads: the run's cgroup then holds half as many processes,
/// `pids.current` reads double, and once the cgroup is full qemu fails to start its thread
/// in a new child and kills it ("qemu_thread_create: Resource temporarily unavailable"),
/// so a full bomb does not stay full. Tests that fill a pids cgroup skip there; they run on
/// the native binaries, and the aarch64 guest test runs the bomb on a real aarch64 kernel.
/// Debian 12's own qemu-user (7.2) aborts these fork-heavy runs itself ("cpu_exec:
/// assertion failed: (cpu == current_cpu)"); 8 and later run them. scripts/test says which
/// qemu-user it found and sets MISBEHAVE_QEMU_USER_OLD for an old one.
fn qemu_runs_it() -> bool {
    match std::env::var("MISBEHAVE_QEMU_USER_OLD") {
        Ok(v) if bin().emulated() && !v.is_empty() => {
            common::testkit::skip(&format!(
                "qemu-user {v} aborts in cpu_exec on this run (fixed in 8)"
            ));
            false
        }
        _ => true,
    }
}

fn pids_exact(part: &str) -> bool {
    if bin().emulated() {
        common::testkit::skip(&format!(
            "{part}: under emulation the pids controller counts qemu's threads too"
        ));
        return false;
    }
    true
}

/// Sleeping processes in a cgroup, someone else's as far as the bomb knows; killed and
/// reaped on drop, also when the test fails.
struct Sleepers(Vec<std::process::Child>);

impl Sleepers {
    fn start(cg: &Cgroup, n: usize) -> Self {
        let procs = cg.procs_file();
        let start = |_| {
            let procs = procs.clone();
            let mut c = std::process::Command::new("sleep");
            c.arg("60");
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only open/write/close.
            unsafe {
                c.pre_exec(move || std::fs::write(&procs, "0"));
            }
            c.spawn().unwrap()
        };
        Sleepers((0..n).map(start).collect())
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `max` line of pids.events (cgroup v1 and v2), if the kernel has the file.
fn max_events(cg: &Cgroup) -> Option<u64> {
    cg.run_cgroup().event("pids.events", "max")
}

/// What was seen from outside while a run lasted.
struct Watch {
    out: Output,
    /// Most tagged processes seen at once (/proc).
    peak_tagged: usize,
    /// Highest pids.current of the test cgroup.
    peak_current: u64,
    /// From the spawn to the last tagged process gone.
    gone_after: Duration,
}

/// Polls the run's process count from outside until the binary exits, then waits for the
/// last of its processes.
fn watch(run: Running, cg: &Cgroup, timeout: Duration) -> Watch {
    let tag = run.tag.clone();
    let started = run.started;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (tag, stop, dir) = (tag.clone(), stop.clone(), cg.dir.clone());
        std::thread::spawn(move || {
            let current = || {
                std::fs::read_to_string(dir.join("pids.current"))
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let (mut tagged, mut cur) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                cur = cur.max(current());
                tagged = tagged.max(live_tagged(&tag).len());
                cur = cur.max(current());
                std::thread::sleep(Duration::from_millis(2));
            }
            (tagged, cur)
        })
    };
    let out = run.wait(timeout);
    let gone = wait_until_gone(&tag, Duration::from_secs(5));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (peak_tagged, peak_current) = poller.join().unwrap();
    let left = gone.as_ref().err().cloned().unwrap_or_default();
    assert!(
        left.is_empty(),
        "processes left 5 s after the binary exited: {left:?}"
    );
    Watch {
        out,
        peak_tagged,
        peak_current,
        gone_after: started.elapsed(),
    }
}

fn capped_run(mode: &str) {
    let _turn = take_turn();
    if mode != "churn" && !pids_exact(mode) {
        return;
    }
    let Some(cg) = Cgroup::pids(&format!("cap-{mode}"), 200) else {
        return;
    };
    let run = bin().spawn_in(
        &["-m", mode, "-n", "100", "-t", "2", "--json", "-q"],
        Some(&cg),
    );
    let w = watch(run, &cg, Duration::from_secs(20));
    let out = &w.out;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();

    // The cap holds, seen from outside, and the cgroup's own limit was never reached.
    assert!(
        w.peak_tagged <= 100,
        "{mode}: {} live processes seen, cap 100",
        w.peak_tagged
    );
    assert!(
        w.peak_current <= 100,
        "{mode}: pids.current reached {}, cap 100",
        w.peak_current
    );
    assert_eq!(
        max_events(&cg).unwrap_or(0),
        0,
        "{mode}: the test cgroup's pids.max was hit"
    );
    assert_eq!(
        r["details"]["cgroup_limit_hits"].as_u64().unwrap_or(0),
        0,
        "{mode}: {}",
        r["details"]
    );

    // Everything is gone within 1 s of the deadline.
    let elapsed = r["elapsed_s"].as_f64().unwrap();
    let teardown = r["teardown_s"].as_f64().unwrap();
    assert!(
        teardown < 1.0 + bin().slack(),
        "{mode}: teardown_s {teardown}"
    );
    assert!(elapsed < 3.0 + bin().slack(), "{mode}: elapsed_s {elapsed}");
    // From outside, the process start (exec, probing the host) comes on top.
    assert!(
        w.gone_after < Duration::from_secs_f64(3.5 + bin().slack()),
        "{mode}: last process gone {:?} after the start",
        w.gone_after
    );

    // The report holds real values.
    assert_eq!(r["tool"], "forkbomb");
    assert_eq!(r["outcome"], "completed");
    assert_eq!(r["stop_reason"], "deadline");
    assert_eq!(r["params"]["effective"]["mode"], mode);
    assert_eq!(r["params"]["effective"]["max_procs"], 100);
    assert_eq!(r["params"]["requested"]["max-procs"], "100");
    let ops = r["totals"]["ops"].as_u64().unwrap();
    let attempted = r["totals"]["forks_attempted"].as_u64().unwrap();
    assert!(ops > 0 && attempted >= ops, "{mode}: {}", r["totals"]);
    assert_eq!(r["totals"]["forks_succeeded"], ops);
    assert!(r["rates"]["ops"].as_f64().unwrap() > 0.0);
    assert!(r["rates"]["forks_succeeded"].as_f64().unwrap() > 0.0);
    let peak = r["peaks"]["live_procs"].as_u64().unwrap();
    assert!(peak <= 100, "{mode}: reported peak {peak}");
    assert_eq!(r["details"]["peak_live_procs"], peak);
    assert!(
        r["details"]["cgroup"]
            .as_str()
            .unwrap()
            .contains("pids.max 98"),
        "{}",
        r["details"]
    );
    assert!(
        r["errors"].as_object().unwrap().is_empty(),
        "{mode}: {}",
        r["errors"]
    );
    let t_peak = r["details"]["time_to_peak_s"].as_f64().unwrap();
    assert!(
        (0.0..=2.0 + bin().slack()).contains(&t_peak),
        "{mode}: time_to_peak_s {t_peak}"
    );
    assert!(r["samples"].as_array().unwrap().len() >= 2);
    match mode {
        "churn" => {
            // Children exit at once: many forks, few alive at a time.
            assert!(ops > 200, "churn: {ops} forks in 2 s");
            assert_eq!(r["details"]["cap_reached"], false);
        }
        _ => {
            // The bomb fills the cap exactly, and fast.
            assert_eq!(peak, 100, "{mode}: {}", r["details"]);
            assert_eq!(r["details"]["cap_reached"], true);
            assert!(
                w.peak_tagged >= 90,
                "{mode}: only {} seen from outside",
                w.peak_tagged
            );
            assert!(r["totals"]["cap_waits"].as_u64().unwrap() > 0);
            let full = r["details"]["time_to_full_s"].as_f64().unwrap();
            assert!(
                full < 1.0 + bin().slack(),
                "{mode}: cap full after {full} s"
            );
        }
    }
    if mode == "hold" {
        // Holding costs no CPU worth the name once full.
        assert!(
            r["totals"]["cpu_s"].as_f64().unwrap() < 1.0,
            "{}",
            r["totals"]
        );
    }
}

#[test]
fn classic_holds_the_cap_and_ends_on_time() {
    capped_run("classic");
}

#[test]
fn churn_holds_the_cap_and_ends_on_time() {
    capped_run("churn");
}

#[test]
fn hold_holds_the_cap_and_ends_on_time() {
    capped_run("hold");
}

#[test]
fn a_thousand_processes_go_within_a_second() {
    let _turn = take_turn();
    if !pids_exact("all") {
        return;
    }
    let Some(cg) = Cgroup::pids("thousand", 1200) else {
        return;
    };
    let run = bin().spawn_in(
        &["-m", "hold", "-n", "1000", "-t", "2", "--json", "-q"],
        Some(&cg),
    );
    let w = watch(run, &cg, Duration::from_secs(20));
    assert_eq!(w.out.code, Some(0), "stderr: {}", w.out.stderr);
    let r = w.out.json();
    assert_eq!(r["peaks"]["live_procs"], 1000);
    assert!(w.peak_current <= 1000, "pids.current {}", w.peak_current);
    assert_eq!(max_events(&cg).unwrap_or(0), 0);
    let teardown = r["teardown_s"].as_f64().unwrap();
    assert!(teardown < 1.0 + bin().slack(), "teardown_s {teardown}");
    // Where a v1 freezer hierarchy exists, the bomb is frozen before it is killed, and the
    // run's freezer cgroup (named like its pids cgroup) is removed afterwards.
    if let Some((own, common::sys::CgroupVersion::V1)) = common::sys::cgroup_dir("freezer") {
        let method = r["teardown_method"].as_str().unwrap();
        assert!(method.starts_with("freezer"), "teardown_method {method}");
        let pids_cg = r["details"]["cgroup"].as_str().unwrap();
        let name = pids_cg
            .split(' ')
            .next()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        assert!(name.starts_with("misbehave-forkbomb-"), "{pids_cg}");
        assert!(
            !own.join(name).exists(),
            "freezer cgroup {name} left behind"
        );
    }
}

fn sigkill_ends_everything(mode: &str) {
    let _turn = take_turn();
    if !pids_exact(&format!("sigkill {mode}")) {
        return;
    }
    let Some(cg) = Cgroup::pids(&format!("kill-{mode}"), 200) else {
        return;
    };
    let run = bin().spawn_in(&["-m", mode, "-n", "100", "-t", "30", "-q"], Some(&cg));
    assert!(
        wait_for_live(&run.tag, 90, Duration::from_secs(10)),
        "{mode}: the bomb never filled up"
    );
    run.signal(libc::SIGKILL);
    let gone = wait_until_gone(&run.tag, Duration::from_secs(1));
    assert!(
        gone.is_ok(),
        "{mode}: alive 1 s after SIGKILL of the supervisor: {:?}",
        gone.unwrap_err()
    );
    assert_eq!(max_events(&cg).unwrap_or(0), 0);
    drop(run);
}

#[test]
fn sigkill_of_the_supervisor_ends_a_classic_bomb_within_1s() {
    sigkill_ends_everything("classic");
}

#[test]
fn sigkill_of_the_supervisor_ends_a_holding_bomb_within_1s() {
    sigkill_ends_everything("hold");
}

/// The bomb's processes ignore SIGCHLD, so a child that dies before its parent leaves no
/// zombie for the supervisor to take over at teardown (see the worker's `work`).
#[test]
fn bomb_processes_ignore_sigchld_so_their_children_leave_no_zombies() {
    let _turn = take_turn();
    if !pids_exact("sigchld") {
        return;
    }
    let Some(cg) = Cgroup::pids("sigchld", 200) else {
        return;
    };
    let run = bin().spawn_in(&["-m", "hold", "-n", "100", "-t", "30", "-q"], Some(&cg));
    assert!(
        wait_for_live(&run.tag, 100, Duration::from_secs(10)),
        "the bomb never filled up"
    );
    let bit = 1u64 << (libc::SIGCHLD - 1);
    let mut ignoring = 0;
    let mut forked = 0;
    for pid in live_tagged(&run.tag) {
        // The bomb's own: neither the supervisor nor its direct children (the group's
        // leader, the workers).
        let Some(st) = ProcStat::read(pid) else {
            continue;
        };
        if pid == run.pid() || st.ppid() == run.pid() {
            continue;
        }
        forked += 1;
        if st.ignored_signals() & bit != 0 {
            ignoring += 1;
        }
    }
    run.signal(libc::SIGTERM);
    let w = watch(run, &cg, Duration::from_secs(10));
    assert_eq!(w.out.code, Some(143), "stderr: {}", w.out.stderr);
    assert!(forked >= 50, "{forked} forked processes seen");
    assert_eq!(ignoring, forked, "{ignoring} of {forked} ignore SIGCHLD");
}

/// `totals.cpu_s` is the CPU time of every process of the bomb: classic's processes ignore
/// SIGCHLD, so their children are removed unwaited and never reach the supervisor's rusage
/// (which once made cpu_s 2.5 s of a 2 s run on 2 CPUs that burned 4). The test counts
/// from outside, with a CPU-accounting cgroup of its own around the whole run (v1 cpuacct;
/// on v2 the pids cgroup counts too).
#[test]
fn cpu_s_counts_every_process_of_the_bomb() {
    let _turn = take_turn();
    if !qemu_runs_it() {
        return;
    }
    let Some(cg) = Cgroup::pids("cpu", 200) else {
        return;
    };
    let acct = if cg.v2 {
        None
    } else {
        match Cgroup::new("cpuacct", "cpu") {
            Some(c) => Some(c),
            None => return common::testkit::skip("no writable cpuacct cgroup here"),
        }
    };
    let cgs: Vec<&Cgroup> = std::iter::once(&cg).chain(acct.as_ref()).collect();
    let run = bin().spawn_in_all(&["-n", "40", "-t", "2", "--json", "-q"], &cgs);
    let w = watch(run, &cg, Duration::from_secs(20));
    assert_eq!(w.out.code, Some(0), "stderr: {}", w.out.stderr);
    let r = w.out.json();
    let counted = acct.as_ref().unwrap_or(&cg).cpu_s().unwrap();
    let cpu_s = r["totals"]["cpu_s"].as_f64().unwrap();
    if acct
        .as_ref()
        .is_some_and(|a| a.dir.join("cpu.shares").exists())
    {
        // cpuacct mounted with cpu: the bomb makes no cgroup there (it would be a
        // scheduling group too), and says its figure is partial.
        let said = r["details"]["cpu_counted"].as_str().unwrap_or_default();
        assert!(said.starts_with("partly"), "{}", r["details"]);
        return;
    }
    // The test's count holds the supervisor's own CPU as well, which cpu_s leaves out.
    assert!(counted > 0.05, "the bomb used {counted} s of CPU");
    assert!(
        cpu_s >= 0.9 * counted - 0.05 && cpu_s <= counted + 0.01,
        "totals.cpu_s {cpu_s}, counted from outside {counted}: {}",
        r["totals"]
    );
    assert_eq!(
        r["details"]["cpu_counted"], "every process of the bomb (its cgroup)",
        "{}",
        r["details"]
    );
    // The run's own cpuacct cgroup (made inside the test's) is gone.
    if let Some(a) = &acct {
        let left: Vec<_> = std::fs::read_dir(&a.dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name())
            .collect();
        assert!(
            left.is_empty(),
            "cgroups left in {}: {left:?}",
            a.dir.display()
        );
    }
}

/// The tree grows three forks deep below each worker and no deeper (`TREE_DEPTH`: a deep
/// tree is slow to kill), and still fills the cap.
#[test]
fn the_tree_is_three_forks_deep_below_the_workers() {
    let _turn = take_turn();
    if !qemu_runs_it() {
        return;
    }
    let Some(cg) = Cgroup::pids("depth", 1000) else {
        return;
    };
    let run = bin().spawn_in(&["-m", "hold", "-n", "300", "-t", "30", "-q"], Some(&cg));
    // Under qemu-user each process counts twice against the pids.max of the run's own
    // cgroup (see qemu_runs_it): about 150 fit.
    let want = if bin().emulated() { 140 } else { 300 };
    let full = wait_for_live(&run.tag, want, Duration::from_secs(20));
    let parent: std::collections::HashMap<i32, i32> = live_tagged(&run.tag)
        .into_iter()
        .filter_map(|pid| Some((pid, ProcStat::read(pid)?.ppid())))
        .collect();
    // Forks between the supervisor and each process (a worker: 1).
    let depth = |mut pid: i32| {
        let mut d = 0;
        while pid != run.pid() {
            pid = *parent.get(&pid)?;
            d += 1;
        }
        Some(d)
    };
    let mut deepest = 0;
    let mut counted = 0;
    let mut by_depth = [0usize; 16];
    for &pid in parent.keys() {
        if let Some(d) = depth(pid) {
            deepest = deepest.max(d);
            by_depth[d.min(15)] += 1;
            counted += 1;
        }
    }
    run.signal(libc::SIGTERM);
    let w = watch(run, &cg, Duration::from_secs(10));
    assert_eq!(w.out.code, Some(143), "stderr: {}", w.out.stderr);
    assert!(full, "the bomb never reached {want} processes");
    assert!(
        counted >= want - 10,
        "only {counted} processes traced back to the supervisor"
    );
    assert_eq!(
        deepest, 4,
        "deepest process {deepest} forks below the supervisor, want 1 + 3; per depth {by_depth:?}"
    );
}

#[test]
fn sigterm_stops_with_a_report() {
    if !qemu_runs_it() {
        return;
    }
    let _turn = take_turn();
    let Some(cg) = Cgroup::pids("term", 200) else {
        return;
    };
    let run = bin().spawn_in(&["-n", "100", "-t", "30", "--json", "-q"], Some(&cg));
    std::thread::sleep(Duration::from_millis(800));
    run.signal(libc::SIGTERM);
    let w = watch(run, &cg, Duration::from_secs(10));
    assert_eq!(w.out.code, Some(143), "stderr: {}", w.out.stderr);
    let r = w.out.json();
    assert_eq!(r["outcome"], "interrupted");
    assert!(r["teardown_s"].as_f64().unwrap() < 1.0 + bin().slack());
    assert!(w.peak_tagged <= 100);
}

/// Processes that others hold are left to them: with 40 of a cgroup's 100 places taken,
/// the default cap is what is left less the margin, and no fork runs into the limit.
#[test]
fn what_others_hold_is_left_to_them() {
    if !qemu_runs_it() || !pids_exact("a cgroup shared with others") {
        return;
    }
    let _turn = take_turn();
    let Some(cg) = Cgroup::pids("others", 100) else {
        return;
    };
    let sleepers = Sleepers::start(&cg, 40);
    let run = bin().spawn_in(&["-m", "hold", "-t", "1", "--json", "-q"], Some(&cg));
    let w = watch(run, &cg, Duration::from_secs(20));
    drop(sleepers);
    assert_eq!(w.out.code, Some(0), "stderr: {}", w.out.stderr);
    let r = w.out.json();
    assert_eq!(
        r["params"]["effective"]["max_procs"],
        100 - 40 - 25,
        "{}",
        r["params"]
    );
    assert_eq!(
        r["peaks"]["live_procs"], 35,
        "{} {}",
        r["peaks"], r["details"]
    );
    assert!(r["errors"]["EAGAIN"].is_null(), "{}", r["errors"]);
    assert_eq!(r["totals"]["fork_failures"], 0, "{}", r["totals"]);
    assert!(w.peak_current <= 100 - 25, "{}", w.peak_current);
}

/// A full process table (here: pids.max lowered under a running bomb) shows as EAGAIN in
/// the report's errors, and the run still ends on time.
#[test]
fn a_full_table_is_counted_as_eagain() {
    if !qemu_runs_it() {
        return;
    }
    let _turn = take_turn();
    let Some(cg) = Cgroup::pids("full", 100) else {
        return;
    };
    let run = bin().spawn_in(&["-m", "churn", "-t", "2", "--json", "-q"], Some(&cg));
    std::thread::sleep(Duration::from_millis(700));
    // Supervisor, group leader and two workers: room for two children at most.
    cg.set("pids.max", "6");
    let w = watch(run, &cg, Duration::from_secs(20));
    assert_eq!(w.out.code, Some(0), "stderr: {}", w.out.stderr);
    let r = w.out.json();
    assert!(
        r["errors"]["EAGAIN"].as_u64().unwrap_or(0) > 0,
        "{}",
        r["errors"]
    );
    assert!(r["totals"]["fork_failures"].as_u64().unwrap() > 0);
    // The cap still holds when the table fills under it.
    assert!(
        r["peaks"]["live_procs"].as_u64().unwrap()
            <= r["params"]["effective"]["max_procs"].as_u64().unwrap(),
        "{} {} {}",
        r["peaks"],
        r["params"],
        r["details"]
    );
    assert!(
        r["stress_s"].as_f64().unwrap() < 2.5 + bin().slack(),
        "{}",
        r["stress_s"]
    );
    assert!(r["teardown_s"].as_f64().unwrap() < 1.0 + bin().slack());
}

#[test]
fn bad_values_are_refused_with_one_line_and_exit_2() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::pids("bad", 50) else {
        return;
    };
    let cases: &[&[&str]] = &[
        &["-m", "nuclear"],
        &["--mode"],
        &["-n", "0"],
        &["-n", "3"],
        &["-n", "-5"],
        &["-n", "many"],
        &["-n", "10", "-w", "9"],
        &["-t", "0"],
        &["-w", "0"],
        &["--bogus"],
    ];
    for args in cases {
        let out = bin()
            .spawn_in(args, Some(&cg))
            .wait(Duration::from_secs(10));
        assert_eq!(out.code, Some(2), "{args:?}: stderr {}", out.stderr);
        let lines: Vec<_> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: not one line: {:?}", out.stderr);
        assert!(lines[0].starts_with("forkbomb: "), "{args:?}: {}", lines[0]);
        assert!(out.stdout.is_empty(), "{args:?}: stdout {}", out.stdout);
        assert!(live_tagged(&out.tag).is_empty());
    }
}

#[test]
fn dry_run_shows_the_cap_and_where_it_comes_from() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::pids("plan", 200) else {
        return;
    };
    let out = bin()
        .spawn_in(&["--dry-run", "--json"], Some(&cg))
        .wait(Duration::from_secs(10));
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let p = out.json();
    let e = &p["params"]["effective"];
    assert_eq!(p["host"]["limits"]["pids_cgroup_max"], 200);
    assert_eq!(e["max_procs"], 200 - 32, "{e}");
    assert!(
        e["max_procs_source"]
            .as_str()
            .unwrap()
            .contains("pids cgroup"),
        "{e}"
    );
    assert_eq!(e["mode"], "classic");
    assert_eq!(
        e["fork_budget"],
        200 - 32 - 2 - e["workers"].as_u64().unwrap()
    );

    // Above what the host allows: cut, and said so.
    let cut = bin()
        .spawn_in(&["--dry-run", "--json", "-n", "50000"], Some(&cg))
        .wait(Duration::from_secs(10));
    assert_eq!(cut.code, Some(0), "stderr: {}", cut.stderr);
    let e = cut.json()["params"]["effective"].clone();
    assert_eq!(e["max_procs"], 168);
    assert!(
        e["max_procs_note"].as_str().unwrap().contains("cut to 168"),
        "{e}"
    );

    let text = bin()
        .spawn_in(&["--dry-run", "-m", "hold", "-n", "120"], Some(&cg))
        .wait(Duration::from_secs(10));
    assert_eq!(text.code, Some(0));
    assert!(
        text.stdout.contains("max_procs") && text.stdout.contains("120"),
        "{}",
        text.stdout
    );
    assert!(out.elapsed < Duration::from_secs(3));

    // Processes already in the cgroup are not the bomb's to take: 30 sleepers there leave
    // it 200 - 30, less the margin, so the bomb never runs into pids.max.
    let sleepers = Sleepers::start(&cg, 30);
    let busy = bin()
        .spawn_in(&["--dry-run", "--json"], Some(&cg))
        .wait(Duration::from_secs(10));
    assert_eq!(busy.code, Some(0), "stderr: {}", busy.stderr);
    let p = busy.json();
    // 30 sleepers and this binary (with qemu-user's thread, when emulated: the pids
    // controller counts threads, and the plan leaves its own out).
    let in_use = p["host"]["limits"]["pids_cgroup_in_use"].as_u64().unwrap();
    assert!((31..=32).contains(&in_use), "{}", p["host"]);
    assert_eq!(p["host"]["limits"]["processes_room"], 170, "{}", p["host"]);
    let e = &p["params"]["effective"];
    assert_eq!(e["max_procs"], 200 - 30 - 32, "{e}");
    assert!(
        e["max_procs_source"]
            .as_str()
            .unwrap()
            .contains("30 in use"),
        "{e}"
    );
    drop(sleepers);
}

#[test]
fn help_and_version() {
    let Some(cg) = Cgroup::pids("help", 20) else {
        return;
    };
    let h = bin()
        .spawn_in(&["--help"], Some(&cg))
        .wait(Duration::from_secs(10));
    assert_eq!(h.code, Some(0));
    for needle in [
        "Examples:",
        "--max-procs",
        "--mode",
        "churn",
        "hold",
        "Exit codes:",
    ] {
        assert!(h.stdout.contains(needle), "--help lacks {needle}");
    }
    let v = bin()
        .spawn_in(&["--version"], Some(&cg))
        .wait(Duration::from_secs(10));
    assert_eq!(
        v.stdout.trim(),
        format!("forkbomb {}", env!("CARGO_PKG_VERSION"))
    );
}
