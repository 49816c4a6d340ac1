//! A bomb that teardown cannot remove: the report counts what it left, process by process.
//!
//! The bomb's processes are frozen in a v1 freezer cgroup of the test's own (a frozen
//! process keeps a SIGKILL pending until it is thawed), so the supervisor's teardown runs
//! into its limit for real. Like every forkbomb test, the run is inside a pids cgroup of
//! the test's own. Where either cgroup cannot be made, the test says so and skips.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::testkit::{
    live_tagged, skip, take_turn, validate, wait_until_gone, Cgroup, ProcStat, Running,
};

common::test_binary!("forkbomb");

/// The cgroups forkbomb makes beside the test's own (under the test process's cgroup of
/// each controller): with frozen processes inside, the run cannot remove them itself.
/// Removed on drop, after the freezer cgroup's drop has thawed and killed the bomb.
struct RunLeftovers(Vec<PathBuf>);

impl RunLeftovers {
    fn of(run: &Running) -> Self {
        let name = format!("misbehave-forkbomb-{}", run.pid());
        Self(
            ["freezer", "cpuacct"]
                .iter()
                .filter_map(|c| common::sys::cgroup_dir(c))
                .map(|(own, _)| own.join(&name))
                .collect(),
        )
    }
}

impl Drop for RunLeftovers {
    fn drop(&mut self) {
        for dir in &self.0 {
            let t0 = Instant::now();
            while dir.exists() && std::fs::remove_dir(dir).is_err() {
                if t0.elapsed() > Duration::from_secs(5) {
                    eprintln!("warning: could not remove {}", dir.display());
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// `left_behind` is the number of the run's processes alive when teardown gives up,
/// grandchildren included, not the supervisor's own children: all but the supervisor and
/// the group's leader are frozen before the deadline, and the report must count exactly
/// those. The supervisor spends its whole teardown limit (10 s) on them first.
#[test]
fn a_frozen_bomb_is_counted_in_left_behind() {
    let _turn = take_turn();
    if bin().emulated() {
        skip("under emulation the pids controller counts qemu's threads too");
        return;
    }
    let Some(pids) = Cgroup::pids("left-behind", 200) else {
        return;
    };
    // Frozen before anything moves in, so none can fork between its move and the freeze.
    let Some(freezer) = Cgroup::frozen("left-behind") else {
        return;
    };
    // Dropped in reverse, also when the test fails: the freezer first (thaws, kills,
    // removes), then what the run left beside it, the run's handle, the pids cgroup.
    let run = bin().spawn_in(
        &["-m", "hold", "--max-procs", "40", "-t", "5", "--json"],
        Some(&pids),
    );
    let _leftovers = RunLeftovers::of(&run);
    let freezer = freezer;
    let supervisor = run.pid();

    // The bomb fills up (supervisor, group leader, workers and their tree: about 40).
    let t0 = Instant::now();
    while live_tagged(&run.tag).len() < 35 {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the bomb never filled up: {} processes",
            live_tagged(&run.tag).len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every process of the run but the supervisor and the group's leader (a process that
    // leads its own group) goes into the frozen cgroup, until a pass finds none left out.
    let mut quiet = 0;
    while quiet < 3 {
        let mut moved = 0;
        for p in live_tagged(&run.tag) {
            if p == supervisor
                || ProcStat::read(p).is_some_and(|st| st.pgrp() == p)
                || freezer.procs().contains(&p)
            {
                continue;
            }
            if std::fs::write(freezer.procs_file(), p.to_string()).is_ok() {
                moved += 1;
            }
        }
        quiet = if moved == 0 { quiet + 1 } else { 0 };
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "freezing took until the deadline"
    );

    let out = run.wait(Duration::from_secs(60));
    let frozen = freezer.procs().len();
    assert!(
        frozen >= 30,
        "only {frozen} processes frozen: the test tested nothing"
    );
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    let r = out.json();
    validate(&r).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(r["outcome"], "failed");
    assert_eq!(
        r["left_behind"].as_u64(),
        Some(frozen as u64),
        "stop_reason: {}",
        r["stop_reason"]
    );
    assert_eq!(
        r["stop_reason"],
        format!("deadline; teardown left {frozen} processes of the run alive")
    );
    assert!(
        r["teardown_s"].as_f64().unwrap() >= 10.0,
        "{}",
        r["teardown_s"]
    );
    assert!(
        out.stderr.contains(&format!(
            "{frozen} of the run's processes alive after teardown"
        )),
        "summary: {}",
        out.stderr
    );

    // Thawed, the frozen processes act on their pending SIGKILL.
    drop(freezer);
    if let Err(left) = wait_until_gone(&out.tag, Duration::from_secs(10)) {
        panic!("still alive after the thaw: {left:?}");
    }
}
