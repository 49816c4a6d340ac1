//! diskthrash driven as users drive it: the real binary, real files, real signals. Every run
//! writes only under a temporary directory of the test's own or a small tmpfs the test
//! mounts (and unmounts, also on failure).

use std::time::{Duration, Instant};

use common::testkit::{
    live_tagged, take_turn, wait_for_live, wait_until_gone, Bin, Output, TempDir, Tmpfs,
};

common::test_binary!("diskthrash");

const T: Duration = Duration::from_secs(60);

/// Something else takes up to `mib` MiB of the filesystem at `dir` (as much as fits).
fn fill(dir: &std::path::Path, mib: usize) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..mib {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
}

fn tmpfs(name: &str, size: &str) -> Option<Tmpfs> {
    let t = Tmpfs::new(name, size, false);
    if t.is_none() {
        common::testkit::skip("cannot mount a tmpfs here (needs root)");
    }
    t
}

#[test]
fn a_run_reports_real_values_and_leaves_the_directory_empty() {
    let _turn = take_turn();
    let dir = TempDir::new("disk-report");
    let d = dir.path.to_str().unwrap();
    let out = bin().run(
        &[
            "--dir", d, "-t", "2", "-w", "2", "--size", "64M", "--json", "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    let t = &r["totals"];
    for k in ["read_bytes", "write_bytes", "read_ops", "write_ops", "ops"] {
        assert!(t[k].as_u64().unwrap() > 0, "{k}: {t}");
    }
    assert_eq!(
        t["ops"].as_u64().unwrap(),
        t["read_ops"].as_u64().unwrap() + t["write_ops"].as_u64().unwrap()
    );
    for dir in ["read", "write"] {
        let l = &r["latency"][dir];
        assert!(l["count"].as_u64().unwrap() > 0, "{dir}: {l}");
        assert!(
            l["p50_us"].as_f64().unwrap() > 0.0 && l["p99_us"].as_f64() >= l["p50_us"].as_f64()
        );
    }
    let samples = r["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    assert!(samples[1]["write_bytes"].as_u64() > samples[0]["write_bytes"].as_u64());
    assert!(samples[0]["latency"]["write"]["count"].as_u64().unwrap() > 0);
    let details = &r["details"];
    assert_eq!(details["rw"], "paper");
    assert!(["io_uring", "psync"].contains(&details["engine"].as_str().unwrap()));
    assert!(details["read_mib_s"].as_f64().unwrap() > 0.0);
    assert_eq!(details["data_bytes"], 64 << 20);
    assert_eq!(r["params"]["effective"]["dirs"][0]["file_bytes"], 32 << 20);
    // The file never had a name, and is gone with the run.
    assert!(dir.names().is_empty(), "{:?}", dir.names());
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn sigkill_mid_run_leaves_no_file_and_gives_the_space_back() {
    let _turn = take_turn();
    let Some(fs) = tmpfs("disk-kill", "64M") else {
        return;
    };
    let free0 = fs.free();
    let run = bin().spawn(&[
        "--dir",
        fs.path().to_str().unwrap(),
        "-t",
        "30",
        "-w",
        "2",
        "--size",
        "32M",
        "--rw",
        "write",
        "-q",
    ]);
    assert!(wait_for_live(&run.tag, 4, T));
    let t0 = Instant::now();
    while free0 - fs.free() < 8 << 20 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(free0 - fs.free() >= 8 << 20, "the run wrote nothing");
    // Nothing has a name even while it runs.
    assert!(fs.dir.names().is_empty(), "{:?}", fs.dir.names());
    run.signal(libc::SIGKILL);
    assert!(wait_until_gone(&run.tag, Duration::from_secs(2)).is_ok());
    let t0 = Instant::now();
    while fs.free() < free0 && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs.free(), free0, "space not given back");
    assert!(fs.dir.names().is_empty());
}

#[test]
fn the_space_cap_holds_and_gives_way_when_something_else_fills_the_disk() {
    let _turn = take_turn();
    let Some(fs) = tmpfs("disk-cap", "64M") else {
        return;
    };
    let path = fs.path().to_path_buf();
    let run = bin().spawn(&[
        "--dir",
        path.to_str().unwrap(),
        "-t",
        "4",
        "-w",
        "2",
        "--max-disk",
        "50%",
        "--size",
        "100%",
        "--rw",
        "write",
        "--json",
        "-q",
    ]);
    let free0 = 64u64 << 20;
    let floor = free0 / 2;
    // Watch from outside every 50 ms; at 1.5 s something else takes 24 MiB.
    let t0 = Instant::now();
    let mut min_before = u64::MAX;
    let mut filled = false;
    let mut after = Vec::new();
    while t0.elapsed() < Duration::from_millis(3800) {
        let free = fs.free();
        if !filled {
            min_before = min_before.min(free);
        } else {
            after.push((t0.elapsed(), free));
        }
        if !filled && t0.elapsed() > Duration::from_millis(1500) {
            fill(&path, 24);
            filled = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run.wait(T);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    let planned_floor = r["params"]["effective"]["dirs"][0]["keeps_free_bytes"]
        .as_u64()
        .unwrap();
    assert!(planned_floor >= floor - (1 << 20), "{planned_floor}");
    assert!(
        min_before >= planned_floor,
        "free space fell to {min_before}, below the plan's {planned_floor}"
    );
    // Once the workers have looked (within about a second), they gave the space back.
    let late: Vec<u64> = after
        .iter()
        .filter(|(t, _)| *t > Duration::from_millis(3000))
        .map(|(_, f)| *f)
        .collect();
    assert!(!late.is_empty());
    assert!(
        late.iter().all(|&f| f >= planned_floor),
        "after the disk filled: {after:?}"
    );
    assert!(
        r["details"]["shrinks"].as_u64().unwrap() >= 1,
        "{}",
        r["details"]
    );
    assert_eq!(r["outcome"], "completed");
    assert_eq!(fs.dir.names(), ["filler"]);
}

#[test]
fn a_full_filesystem_gives_enospc_handling_not_a_crash() {
    let _turn = take_turn();
    let Some(fs) = tmpfs("disk-full", "32M") else {
        return;
    };
    let path = fs.path().to_path_buf();
    // The whole disk is allowed: only ENOSPC stops the writes.
    let run = bin().spawn(&[
        "--dir",
        path.to_str().unwrap(),
        "-t",
        "3",
        "-w",
        "2",
        "--max-disk",
        "100%",
        "--size",
        "100%",
        "--rw",
        "randwrite",
        "--bs",
        "4k",
        // Slow enough that the files are still sparse when the filler takes the rest.
        "--rate",
        "4M/s",
        "--json",
        "-q",
    ]);
    std::thread::sleep(Duration::from_millis(800));
    {
        fill(&path, 32);
    }
    let out = run.wait(T);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    assert!(
        r["errors"]["ENOSPC"].as_u64().unwrap_or(0) >= 1,
        "{}",
        r["errors"]
    );
    assert!(r["details"]["enospc"].as_u64().unwrap() >= 1);
    assert!(r["details"]["shrinks"].as_u64().unwrap() >= 1);
    assert!(r["totals"]["write_ops"].as_u64().unwrap() > 0);
    assert_eq!(fs.dir.names(), ["filler"]);
    assert!(live_tagged(&out.tag).is_empty());
}

/// The report of a run asked for `engine`, which it must have used; None (the test skipped)
/// where io_uring cannot be set up here.
fn ran_on(engine: &str, out: &Output) -> Option<serde_json::Value> {
    if engine == "io_uring" && out.code == Some(2) && out.stderr.contains("io_uring_setup") {
        common::testkit::skip(&format!("io_uring: {}", out.stderr.trim()));
        return None;
    }
    assert_eq!(out.code, Some(0), "{engine}: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["details"]["engine"], engine);
    Some(r)
}

#[test]
fn rate_and_iops_caps_hold_within_a_few_percent() {
    let _turn = take_turn();
    let Some(fs) = tmpfs("disk-rate", "64M") else {
        return;
    };
    let d = fs.path().to_str().unwrap();
    let out = bin().run(
        &[
            "--dir", d, "-t", "3", "-w", "2", "--size", "16M", "--rate", "20M/s", "--json", "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    let bytes =
        r["rates"]["read_bytes"].as_f64().unwrap() + r["rates"]["write_bytes"].as_f64().unwrap();
    let want = 20.0 * (1 << 20) as f64;
    assert!((bytes - want).abs() / want <= 0.03, "{bytes} B/s for 20M/s");
    // Both engines: io_uring's completions can wait in the ring while the cap waits.
    for engine in ["psync", "io_uring"] {
        let out = bin().run(
            &[
                "--dir", d, "-t", "3", "-w", "2", "--size", "16M", "--iops", "500", "--engine",
                engine, "--json", "-q",
            ],
            T,
        );
        let Some(r) = ran_on(engine, &out) else {
            continue;
        };
        let iops = r["rates"]["ops"].as_f64().unwrap();
        assert!(
            (iops - 500.0).abs() / 500.0 <= 0.03,
            "{engine}: {iops} IOPS for --iops 500"
        );
    }
}

/// The arguments of a one-second run of 2 workers on 16 MiB in `d`, 4 KiB blocks, through
/// `engine` at depth `depth`.
fn short_run<'a>(d: &'a str, engine: &'a str, rw: &'a str, depth: &'a str) -> [&'a str; 18] {
    [
        "--dir",
        d,
        "-t",
        "1",
        "-w",
        "2",
        "--size",
        "16M",
        "--rw",
        rw,
        "--bs",
        "4k",
        "--engine",
        engine,
        "--iodepth",
        depth,
        "--json",
        "-q",
    ]
}

#[test]
fn both_engines_work() {
    let _turn = take_turn();
    let dir = TempDir::new("disk-engines");
    let d = dir.path.to_str().unwrap();
    for engine in ["psync", "io_uring"] {
        let out = bin().run(&short_run(d, engine, "randrw", "8"), T);
        let Some(r) = ran_on(engine, &out) else {
            continue;
        };
        assert!(r["totals"]["read_ops"].as_u64().unwrap() > 0, "{engine}");
        assert!(r["totals"]["write_ops"].as_u64().unwrap() > 0, "{engine}");
        assert!(dir.names().is_empty());
        // Root (CAP_IPC_LOCK) may lock any amount: each ring registers its file and buffers.
        // SAFETY: geteuid has no preconditions.
        if engine == "io_uring" && !bin().emulated() && unsafe { libc::geteuid() } == 0 {
            assert_eq!(r["details"]["registered_rings"], 2, "{}", r["details"]);
        }
    }
}

/// Without CAP_IPC_LOCK and with a locked-memory limit below a worker's buffers (a user's
/// shell has 8 MiB, older systems 64 KiB), the rings cannot register them: io_uring goes on
/// unregistered, every I/O done and counted.
#[test]
fn io_uring_goes_on_where_its_buffers_cannot_be_registered() {
    let have = |p: &str| std::process::Command::new(p).arg("--help").output().is_ok();
    if bin().emulated() || !have("setpriv") || !have("prlimit") {
        common::testkit::skip("the memlock refusal is tested natively with prlimit and setpriv");
        return;
    }
    let _turn = take_turn();
    let dir = TempDir::new("disk-unregistered");
    let d = dir.path.to_str().unwrap();
    let exe = bin().exe.to_str().unwrap().to_string();
    // 64 KiB: the plan's probe (one 4 KiB buffer) registers, a worker's 32 x 4 KiB cannot.
    let limited = Bin::program("prlimit").with_prefix(&[
        "--memlock=65536:65536",
        "setpriv",
        "--bounding-set=-ipc_lock",
        "--",
        &exe,
    ]);
    let out = limited.run(&short_run(d, "io_uring", "randread", "32"), T);
    let Some(r) = ran_on("io_uring", &out) else {
        return;
    };
    assert_eq!(r["details"]["registered_rings"], 0, "{}", r["details"]);
    assert!(r["totals"]["read_ops"].as_u64().unwrap() > 0);
    assert_eq!(r["errors"], serde_json::json!({}), "{}", r["errors"]);
    assert!(dir.names().is_empty());
    assert!(live_tagged(&out.tag).is_empty());
}

#[test]
fn direct_on_a_filesystem_that_refuses_it_says_so_and_goes_on_buffered() {
    let _turn = take_turn();
    // ramfs has no O_DIRECT (tmpfs has it since Linux 6.6).
    let Some(fs) = Tmpfs::new_fs("disk-direct", "ramfs", "", false) else {
        common::testkit::skip("cannot mount a ramfs here (needs root)");
        return;
    };
    let out = bin().run(
        &[
            "--dir",
            fs.path().to_str().unwrap(),
            "-t",
            "1",
            "-w",
            "1",
            "--max-disk",
            "16M",
            "--size",
            "8M",
            "--direct",
            "--json",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("diskthrash: note: O_DIRECT refused"),
        "{}",
        out.stderr
    );
    let r = out.json();
    let direct = r["details"]["direct"].as_str().unwrap();
    assert!(direct.contains("buffered I/O instead"), "{direct}");
    assert_eq!(r["params"]["effective"]["direct"], false);
}

/// Direct I/O of 1 MiB and more runs from buffers on transparent huge pages, where the
/// kernel hands them out on request only (`madvise` mode: under `always` any process may
/// have some, and this could not fail).
#[test]
fn direct_io_of_a_mebibyte_runs_from_huge_pages() {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
    if bin().emulated() || !thp.is_ok_and(|m| m.contains("[madvise]")) {
        common::testkit::skip("needs native transparent huge pages in madvise mode");
        return;
    }
    let _turn = take_turn();
    let dir = TempDir::new("disk-huge");
    let run = bin().spawn(&[
        "--dir",
        dir.path.to_str().unwrap(),
        "-t",
        "3",
        "-w",
        "2",
        "--size",
        "32M",
        "--rw",
        "write",
        "--bs",
        "1M",
        "--direct",
        "--json",
        "-q",
    ]);
    let huge_kib = |pid: i32| -> u64 {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"));
        let line = smaps.unwrap_or_default();
        let kib = line.lines().find_map(|l| l.strip_prefix("AnonHugePages:"));
        kib.and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(wait_for_live(&run.tag, 3, T));
    let t0 = Instant::now();
    let mut most = 0;
    while most < 2 * 2048 && t0.elapsed() < Duration::from_secs(2) {
        most = most.max(live_tagged(&run.tag).into_iter().map(huge_kib).sum());
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run.wait(T);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    if r["params"]["effective"]["direct"] != true {
        common::testkit::skip("this filesystem refuses O_DIRECT");
        return;
    }
    assert!(r["totals"]["write_bytes"].as_u64().unwrap() > 0);
    // One huge page per worker's buffer.
    assert!(most >= 2 * 2048, "AnonHugePages of the run: {most} kB");
    assert!(dir.names().is_empty());
}

/// Buffered writes for the whole run: dirty pages stay bounded, so the run ends within a
/// second of its deadline. (Freeing the files' blocks is the filesystem's own work at the
/// end, about 0.7 s per GiB with online discard on these machines: kept small here.)
#[test]
fn the_deadline_holds_within_a_second_with_buffered_writes() {
    let _turn = take_turn();
    let dir = TempDir::new("disk-deadline");
    let out = bin().run(
        &[
            "--dir",
            dir.path.to_str().unwrap(),
            "-t",
            "3",
            "-w",
            "4",
            "--size",
            "256M",
            "--rw",
            "write",
            "--json",
            "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = out.json();
    assert!(r["totals"]["write_bytes"].as_u64().unwrap() > 0);
    let elapsed = r["elapsed_s"].as_f64().unwrap();
    assert!(elapsed < 4.0 + bin().slack(), "elapsed_s {elapsed}");
    assert!(
        out.elapsed < Duration::from_secs_f64(4.5 + bin().slack()),
        "{:?}",
        out.elapsed
    );
    assert!(dir.names().is_empty());
}

#[test]
fn bad_directories_are_refused_with_one_line_and_exit_2() {
    let dir = TempDir::new("disk-bad");
    let file = dir.path.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let ro = Tmpfs::new("disk-ro", "1M", true);
    let mut cases: Vec<(String, &str)> = vec![
        (
            dir.path.join("missing").display().to_string(),
            "does not exist",
        ),
        (file.display().to_string(), "is not a directory"),
    ];
    if let Some(ro) = &ro {
        cases.push((ro.path().display().to_string(), "cannot make files there"));
    }
    for (d, why) in &cases {
        let out = bin().run(&["--dir", d, "-t", "1"], T);
        assert_eq!(out.code, Some(2), "{d}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{d}: {}", out.stderr);
        assert!(
            lines[0].starts_with("diskthrash: --dir ") && lines[0].contains(why),
            "{}",
            lines[0]
        );
        assert!(live_tagged(&out.tag).is_empty());
    }
    for args in [
        &["--bs", "1000"][..],
        &["--mix", "101"],
        &["--rw", "sideways"],
        &["--iops", "x"],
    ] {
        let out = bin().run(args, T);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
    }
}

#[test]
fn dry_run_shows_the_plan_and_writes_nothing() {
    let dir = TempDir::new("disk-plan");
    let out = bin().run(
        &[
            "--dir",
            dir.path.to_str().unwrap(),
            "--size",
            "1G",
            "--dry-run",
            "--json",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let p = out.json();
    let e = &p["params"]["effective"];
    assert_eq!(e["workers"], 10, "the paper's ten");
    assert_eq!(e["data_bytes"], 1u64 << 30);
    assert_eq!(e["rw"], "paper");
    assert!(e["dirs"][0]["free_bytes"].as_u64().unwrap() > 0);
    assert!(dir.names().is_empty());
    let h = bin().run(&["--help"], T);
    for needle in [
        "Examples:",
        "--max-disk",
        "O_TMPFILE",
        "io_uring",
        "Exit codes:",
    ] {
        assert!(h.stdout.contains(needle), "--help lacks {needle}");
    }
}

/// gVisor sets an io_uring ring up and then refuses its reads and writes: `auto` must see
/// that while planning and take psync, saying why, and `--engine io_uring` must be refused
/// with one line, instead of a run whose every I/O fails.
#[test]
fn under_gvisor_auto_takes_psync_and_io_uring_is_refused() {
    let _turn = take_turn();
    let exe = bin().exe.to_str().unwrap().to_string();
    let Some(sandboxed) = common::testkit::gvisor(&[&exe]) else {
        return;
    };
    // The sandbox writes into an overlay of its own: nothing lands in this directory.
    let dir = TempDir::new("disk-gvisor");
    let d = dir.path.to_str().unwrap();
    let out = sandboxed.run(
        &[
            "--dir", d, "-t", "2", "-w", "2", "--size", "32M", "--json", "-q",
        ],
        T,
    );
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.json();
    assert_eq!(r["outcome"], "completed");
    let eff = &r["params"]["effective"];
    assert_eq!(eff["engine"], "psync", "{eff}");
    let note = eff["engine_note"].as_str().unwrap_or_default();
    assert!(
        note.contains("io_uring") && note.contains("refused"),
        "{note}"
    );
    assert!(r["totals"]["ops"].as_u64().unwrap() > 0, "{}", r["totals"]);
    assert_eq!(r["errors"], serde_json::json!({}), "{}", r["errors"]);

    let out = sandboxed.run(&["--dir", d, "-t", "1", "--engine", "io_uring", "-q"], T);
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("--engine io_uring"), "{}", out.stderr);
}
