//! membomb driven as users drive it: the real binary, the JSON report, and the kernel's
//! own account of the memory it took.
//!
//! Every run happens inside a memory cgroup of the test's own (64-256 MiB), never against
//! the machine's memory: the cgroup's limit is what the OOM killer enforces, and its
//! `max_usage_in_bytes` is the referee for the cap. Where no writable memory cgroup exists
//! the tests say so and skip.

use std::time::Duration;

use common::testkit::{take_turn, wait_until_gone, Bin, Cgroup, Output};
use serde_json::Value;

const MIB: u64 = 1 << 20;

common::test_binary!("membomb");

fn run_in(cg: &Cgroup, args: &[&str]) -> Output {
    let out = bin().spawn_in(args, Some(cg)).wait(Duration::from_secs(30));
    let gone = wait_until_gone(&out.tag, Duration::from_secs(1));
    assert!(
        gone.is_ok(),
        "{args:?}: still alive 1 s after the end: {:?}",
        gone.unwrap_err()
    );
    out
}

/// Runs to the deadline with exit 0 and a completed report.
fn completed(cg: &Cgroup, args: &[&str]) -> Value {
    let out = run_in(cg, args);
    assert_eq!(out.code, Some(0), "{args:?}: stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["tool"], "membomb");
    assert_eq!(r["outcome"], "completed", "{args:?}: {}", r["stop_reason"]);
    assert_eq!(r["exit_code"], 0);
    r
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_cap_holds_and_is_reached() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::memory("cap", 256 * MIB) else {
        return;
    };
    let cap = 96 * MIB;
    let r = completed(
        &cg,
        &["-t", "2", "-w", "2", "--max-mem", "96M", "--json", "-q"],
    );
    assert_eq!(r["stop_reason"], "deadline");
    assert_eq!(u(&r["params"]["effective"]["max_mem_bytes"]), cap);
    assert_eq!(u(&r["params"]["effective"]["per_worker_bytes"]), cap / 2);
    // The kernel's account: the cap plus a small allowance for the processes themselves.
    let used = cg.memory_peak();
    assert!(
        used <= cap + 16 * MIB,
        "cgroup peak {used} for a cap of {cap}"
    );
    assert!(
        used >= cap,
        "cgroup peak {used}: the cap of {cap} was not reached"
    );
    let peak = u(&r["peaks"]["resident_bytes"]);
    assert!((cap * 9 / 10..=cap).contains(&peak), "peak resident {peak}");
    assert_eq!(u(&r["details"]["peak_resident_bytes"]), peak);
    let reached = r["details"]["cap_reached_s"].as_f64().expect("cap reached");
    assert!(reached > 0.0 && reached < 2.0, "cap_reached_s {reached}");
    assert_eq!(u(&r["totals"]["touched_bytes"]), cap);
    assert!(r["details"]["fill_gib_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["workers"]["oom_killed"], 0);
    assert_eq!(r["workers"]["started"], 2);
    // Per-second samples of resident bytes.
    let samples = r["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "{samples:?}");
    assert!(samples.iter().all(|s| u(&s["resident_bytes"]) <= cap));
    let pw = r["per_worker"].as_array().unwrap();
    assert!(
        pw.iter().all(|w| w["fill_gib_s"].as_f64().unwrap() > 0.0),
        "{pw:?}"
    );
}

/// Both ways of making pages resident back the whole cap (the cgroup's own account says
/// so, not only membomb's), and the report says which ran: populate where the kernel backs
/// pages on madvise(MADV_POPULATE_WRITE), else touch with the reason.
#[test]
fn each_fill_backs_the_whole_cap_and_the_report_says_which_ran() {
    let _turn = take_turn();
    let cap = 64 * MIB;
    for fill in ["auto", "touch"] {
        let Some(cg) = Cgroup::memory(&format!("fill-{fill}"), 192 * MIB) else {
            return;
        };
        let r = completed(
            &cg,
            &[
                "-t",
                "1",
                "-w",
                "2",
                "--max-mem",
                "64M",
                "--fill",
                fill,
                "--json",
                "-q",
            ],
        );
        let (eff, d) = (&r["params"]["effective"], &r["details"]);
        let ran = d["fill"].as_str().unwrap();
        assert_eq!(eff["fill"], ran);
        if fill == "touch" {
            assert_eq!(ran, "touch");
            assert!(d.get("fill_note").is_none(), "{d}");
        } else if ran == "touch" {
            assert!(
                d["fill_note"].as_str().is_some_and(|n| !n.is_empty()),
                "{d}"
            );
        } else {
            assert_eq!(ran, "populate", "{d}");
        }
        assert_eq!(u(&r["totals"]["touched_bytes"]), cap, "{fill}");
        let used = cg.memory_peak();
        assert!(
            used >= cap,
            "{fill}: cgroup peak {used} under the cap {cap}"
        );
    }
}

#[test]
fn percent_resolves_against_the_cgroup_limit_not_the_host() {
    let _turn = take_turn();
    let limit = 128 * MIB;
    let Some(cg) = Cgroup::memory("pct", limit) else {
        return;
    };
    let out = run_in(&cg, &["--max-mem", "80%", "-w", "2", "--dry-run", "--json"]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let p = out.json();
    assert_eq!(p["schema"], "misbehave.plan/1");
    assert_eq!(u(&p["host"]["memory"]["cgroup_limit_bytes"]), limit);
    let base = u(&p["host"]["memory"]["base_bytes"]);
    assert!(base <= limit, "base {base}");
    let want = (base as f64 * 0.8) as u64;
    let e = &p["params"]["effective"];
    assert_eq!(u(&e["max_mem_bytes"]), want, "{e}");
    assert_eq!(u(&e["memory_base_bytes"]), base);
    assert!(u(&e["per_worker_bytes"]) <= want / 2);
    // And a real run: the same number in the report, and the cgroup never ran out.
    let r = completed(
        &cg,
        &["-t", "2", "-w", "2", "--max-mem", "80%", "--json", "-q"],
    );
    assert_eq!(u(&r["params"]["effective"]["max_mem_bytes"]), want);
    assert_eq!(r["params"]["requested"]["max-mem"], "80%");
    assert_eq!(r["workers"]["oom_killed"], 0, "{}", r["workers"]);
    assert!(cg.memory_peak() < limit);
    assert!(
        r["details"]["cap_reached_s"].as_f64().is_some(),
        "{}",
        r["details"]
    );
}

#[test]
fn an_oom_kill_is_counted_the_worker_respawned_and_the_report_written() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::memory("oom", 64 * MIB) else {
        return;
    };
    // No cap: the workers outgrow the cgroup and the kernel kills them, again and again.
    let r = completed(
        &cg,
        &["-t", "3", "-w", "2", "--chunk", "1M", "--json", "-q"],
    );
    assert_eq!(r["stop_reason"], "deadline");
    let elapsed = r["elapsed_s"].as_f64().unwrap();
    assert!((3.0..5.0).contains(&elapsed), "elapsed_s {elapsed}");
    let w = &r["workers"];
    assert!(u(&w["oom_killed"]) >= 1, "{w}");
    assert!(u(&w["respawned"]) >= 1, "{w}");
    assert!(w["first_oom_s"].as_f64().is_some(), "{w}");
    assert_eq!(r["details"]["oom_killed"], w["oom_killed"]);
    assert_eq!(r["details"]["max_mem_bytes"], Value::Null);
    assert!(r["details"]["first_oom_s"].as_f64().unwrap() < 3.0);
    assert!(u(&r["totals"]["touched_bytes"]) > 64 * MIB);
    // The kernel agrees that it killed inside our cgroup (v1 kernels that count it).
    if let Some(n) = cg
        .get("memory.oom_control")
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
    {
        assert!(n.trim().parse::<u64>().unwrap() >= 1);
    }
}

#[test]
fn on_oom_stop_ends_the_run_at_the_first_kill() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::memory("oomstop", 64 * MIB) else {
        return;
    };
    // A cap above the cgroup's limit: the cgroup runs out first.
    let r = completed(
        &cg,
        &[
            "-t",
            "4",
            "-w",
            "2",
            "--max-mem",
            "256M",
            "--on-oom",
            "stop",
            "--json",
            "-q",
        ],
    );
    let reason = r["stop_reason"].as_str().unwrap();
    assert!(
        reason.contains("OOM-killed") && reason.contains("--on-oom stop"),
        "{reason}"
    );
    assert!(r["elapsed_s"].as_f64().unwrap() < 3.5, "{}", r["elapsed_s"]);
    assert!(u(&r["workers"]["oom_killed"]) >= 1);
    assert_eq!(r["workers"]["respawned"], 0);
    assert_eq!(r["details"]["cap_reached_s"], Value::Null);
}

#[test]
fn each_mode_runs() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::memory("modes", 128 * MIB) else {
        return;
    };
    let cap = 32 * MIB;
    for mode in ["grow", "hold", "churn"] {
        let r = completed(
            &cg,
            &[
                "-t",
                "2",
                "-w",
                "2",
                "--mode",
                mode,
                "--max-mem",
                "32M",
                "--json",
                "-q",
            ],
        );
        assert_eq!(r["details"]["mode"], mode);
        assert_eq!(r["workers"]["oom_killed"], 0);
        let touched = u(&r["totals"]["touched_bytes"]);
        let peak = u(&r["peaks"]["resident_bytes"]);
        assert!(peak <= cap, "{mode}: peak {peak}");
        assert!(u(&r["totals"]["ops"]) > 0, "{mode}");
        match mode {
            "grow" => {
                assert_eq!(touched, cap);
                assert_eq!(u(&r["totals"]["rewritten_bytes"]), 0);
            }
            // The working set is rewritten over and over once it is there.
            "hold" => {
                assert_eq!(touched, cap);
                assert!(
                    u(&r["totals"]["rewritten_bytes"]) > 10 * cap,
                    "{}",
                    r["totals"]
                );
            }
            // Mapped, touched and unmapped: far more touched than ever held.
            _ => assert!(touched > 4 * cap, "churn touched {touched}"),
        }
    }
    // The cgroup counts every byte of the run, under emulation qemu-user's own too (its
    // code caches: tens of MiB per emulated process, more in older versions): measured here
    // with the same run at a 1 MiB cap, in a cgroup of its own.
    let emulator = match bin().emulated() {
        false => 0,
        true => {
            let base = Cgroup::memory("modes-base", 128 * MIB).expect("a memory cgroup, as above");
            completed(
                &base,
                &[
                    "-t",
                    "2",
                    "-w",
                    "2",
                    "--mode",
                    "churn",
                    "--max-mem",
                    "1M",
                    "--json",
                    "-q",
                ],
            );
            base.memory_peak().saturating_sub(MIB)
        }
    };
    assert!(
        cg.memory_peak() <= cap + emulator + 16 * MIB,
        "peak {} over the cap {cap} + 16 MiB + the emulator's own {emulator}",
        cg.memory_peak()
    );
}

#[test]
fn rate_paces_growth_over_all_workers() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::memory("rate", 128 * MIB) else {
        return;
    };
    let r = completed(
        &cg,
        &["-t", "2", "-w", "2", "--rate", "16M/s", "--json", "-q"],
    );
    let touched = u(&r["totals"]["touched_bytes"]);
    assert!(
        (24 * MIB..=36 * MIB).contains(&touched),
        "16M/s for 2 s touched {touched}"
    );
    assert_eq!(u(&r["params"]["effective"]["rate_bytes_s"]), 16 * MIB);
}

#[test]
fn lock_and_hugepages_say_what_they_got() {
    let _turn = take_turn();
    let Some(cg) = Cgroup::memory("lock", 128 * MIB) else {
        return;
    };
    let r = completed(
        &cg,
        &[
            "-t",
            "2",
            "-w",
            "1",
            "--lock",
            "--hugepages",
            "--max-mem",
            "16M",
            "--json",
            "-q",
        ],
    );
    let lock = r["details"]["lock"].as_str().unwrap();
    if lock == "locked" {
        assert_eq!(u(&r["details"]["peak_locked_bytes"]), 16 * MIB);
    } else {
        assert!(lock.starts_with("refused ("), "{lock}");
        assert!(!r["errors"].as_object().unwrap().is_empty());
    }
    assert!(
        r["details"]["hugepages"].as_str().is_some(),
        "{}",
        r["details"]
    );
    assert_eq!(u(&r["totals"]["touched_bytes"]), 16 * MIB);
}

#[test]
fn no_cap_by_default_in_a_guest_and_sizes_resolved_in_the_plan() {
    let Some(cg) = Cgroup::memory("plan", 128 * MIB) else {
        return;
    };
    let out = run_in(&cg, &["--dry-run", "--json", "-w", "2"]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let e = out.json()["params"]["effective"].clone();
    assert_eq!(e["max_mem_bytes"], Value::Null);
    assert_eq!(e["max_mem"], "none");
    assert_eq!(e["mode"], "grow");
    assert_eq!(e["on_oom"], "respawn");
    assert_eq!(u(&e["chunk_bytes"]), 4 * MIB);
    let out = run_in(
        &cg,
        &[
            "--dry-run",
            "--json",
            "-w",
            "4",
            "--max-mem",
            "1G",
            "--chunk",
            "100k",
        ],
    );
    let e = out.json()["params"]["effective"].clone();
    assert_eq!(u(&e["max_mem_bytes"]), 1 << 30);
    assert_eq!(u(&e["per_worker_bytes"]), 1 << 28);
    assert_eq!(
        u(&e["chunk_bytes"]) % u(&e["page_bytes"]),
        0,
        "chunk rounded to pages"
    );
    let text = run_in(&cg, &["--dry-run", "--max-mem", "50%"]);
    assert_eq!(text.code, Some(0));
    assert!(
        text.stdout.contains("max_mem") && text.stdout.contains("MiB"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("cgroup limit 128 MiB"),
        "{}",
        text.stdout
    );
}

#[test]
fn bad_values_are_refused_with_one_line_and_exit_2() {
    let Some(cg) = Cgroup::memory("bad", 64 * MIB) else {
        return;
    };
    let cases: &[&[&str]] = &[
        &["--mode", "explode"],
        &["--chunk", "0"],
        &["--chunk", "5x"],
        &["--chunk", "1P"],
        &["--max-mem", "0"],
        &["--max-mem", "0%"],
        &["--max-mem", "101%"],
        &["--max-mem", "lots"],
        &["--max-mem", "4096", "-w", "2"],
        &["--rate", "10M"],
        &["--rate", "0/s"],
        &["--rate", "fast"],
        &["--on-oom", "maybe"],
        &["--fill", "sometimes"],
        &["--lock=yes"],
        &["-t", "0"],
    ];
    for args in cases {
        let out = run_in(&cg, args);
        assert_eq!(out.code, Some(2), "{args:?}: stderr {}", out.stderr);
        let lines: Vec<_> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: not one line: {:?}", out.stderr);
        assert!(lines[0].starts_with("membomb: "), "{args:?}: {}", lines[0]);
        assert!(out.stdout.is_empty(), "{args:?}: stdout {}", out.stdout);
    }
}

#[test]
fn help_names_every_flag() {
    let Some(cg) = Cgroup::memory("help", 64 * MIB) else {
        return;
    };
    let h = run_in(&cg, &["--help"]);
    assert_eq!(h.code, Some(0));
    for needle in [
        "Examples:",
        "--mode",
        "--chunk",
        "--max-mem",
        "--rate",
        "--lock",
        "--hugepages",
        "--on-oom",
        "--fill",
        "80%",
    ] {
        assert!(h.stdout.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn enomem_from_mmap_is_counted_and_retried_holding_what_was_got() {
    // illumos's signal (swap reserved at allocation), made on Linux with an address-space
    // limit: mmap fails with ENOMEM long before the cgroup runs out.
    if bin().emulated() {
        // qemu-user reserves a large address space for itself: under RLIMIT_AS it cannot
        // even start.
        common::testkit::skip("under emulation: an address-space limit stops the emulator");
        return;
    }
    let _turn = take_turn();
    let Some(cg) = Cgroup::memory("enomem", 256 * MIB) else {
        return;
    };
    let sh = Bin::program("/bin/sh");
    let script = format!(
        "ulimit -v {}; exec {} -t 2 -w 1 --json -q",
        160 * 1024,
        bin().exe.display()
    );
    let out = sh
        .spawn_in(&["-c", &script], Some(&cg))
        .wait(Duration::from_secs(30));
    assert!(wait_until_gone(&out.tag, Duration::from_secs(1)).is_ok());
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    assert_eq!(r["workers"]["oom_killed"], 0);
    assert_eq!(r["workers"]["started"], 1, "the worker held on");
    let enomem = u(&r["details"]["enomem"]);
    assert!(
        enomem >= 10,
        "ENOMEM counted {enomem} times: {}",
        r["errors"]
    );
    assert_eq!(u(&r["errors"]["ENOMEM"]), enomem);
    let peak = u(&r["peaks"]["resident_bytes"]);
    assert!((64 * MIB..160 * MIB).contains(&peak), "held {peak}");
}
