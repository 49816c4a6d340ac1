//! `/init` (PID 1) of the throwaway Linux guests that `scripts/guest-test` boots.
//!
//! It mounts the pseudo file systems, loads the virtio modules it finds under
//! /lib/modules, brings up eth0 (10.0.2.15/24, default route via 10.0.2.2),
//! runs ONE command with its stdout captured through a pipe, reaps every zombie
//! while the command runs, kills whatever is left when it ends, prints the
//! captured report between markers on the serial console and powers off.
//!
//! The parts, each a module:
//!
//! * [`cmdline`]: the words after `--` on the kernel command line (`scenario=`, `run=`,
//!   `timeout=`, ...), all documented there.
//! * [`console`]: the serial console and the `===MISBEHAVE-...===` markers the harness
//!   reads, all documented there.
//! * [`mounts`], [`modules`], [`net`]: the guest's set-up before the command.
//! * [`command`]: the command and the `also=` command beside it; [`reap`]: every orphan
//!   reaped, what is left counted and killed.
//! * [`floor`]: the teardown floor of `floor=`.
//! * [`selftest`]: the harness's self-tests, and child mode (any PID other than 1).
//! * [`soak`]: soak mode (`soak=`), many runs with signals, for `scripts/soak`.
//! * [`sys`]: small helpers over the C library.

mod cmdline;
mod command;
mod console;
mod floor;
mod modules;
mod mounts;
mod net;
mod reap;
mod selftest;
mod soak;
mod sys;

use cmdline::parse_args;
use command::{run_child, start_also, wait_also, ALSO_OUT};
use console::{one_line, out, out_bytes};
use floor::{live_procs_peak, measure_floors};
use modules::load_modules;
use mounts::{mount_all, mount_disk};
use net::setup_net;
use reap::clean_up;
use selftest::child_mode;
use sys::{cstring, os_err, write_file};

/// Capacity of the captured-stdout buffer, allocated once.
const REPORT_CAP: usize = 4 << 20;

/// `poweroff=reboot`: end with reboot(RB_AUTOBOOT) instead of RB_POWER_OFF, for
/// machines that cannot power off (x86 microvm without ACPI); with qemu's
/// -no-reboot a reboot ends the guest just the same.
pub(crate) static REBOOT_INSTEAD: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn poweroff() -> ! {
    let how = if REBOOT_INSTEAD.load(std::sync::atomic::Ordering::Relaxed) {
        libc::RB_AUTOBOOT
    } else {
        libc::RB_POWER_OFF
    };
    // SAFETY: plain syscalls without pointers.
    unsafe {
        libc::sync();
        libc::reboot(how);
    }
    // Still here: exiting PID 1 panics the kernel, and with panic=-1 and qemu's
    // -no-reboot that ends the guest as well.
    out(&format!(
        "\n===MISBEHAVE-INIT-ERROR {}===\n",
        one_line(&os_err("reboot"))
    ));
    std::process::exit(1);
}

fn run(args: &[String]) -> Result<(), String> {
    mount_all()?;
    write_file("/proc/self/oom_score_adj", "-1000")?;
    // SAFETY: plain syscall.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -20) };
    let cfg = parse_args(args)?;
    if let Some(name) = cfg.selftest.as_deref() {
        selftest::init_selftest(name)?;
    }
    load_modules();
    if cfg.net {
        setup_net(cfg.ip)?;
    }
    if let Some((dev, dir, fstype)) = &cfg.mount {
        mount_disk(dev, dir, fstype)?;
    }

    if let Some(plan) = cfg.soak.as_deref() {
        return soak::run_plan(plan);
    }
    let mut buf = vec![0u8; REPORT_CAP];
    if !cfg.also.is_empty() {
        let pid = start_also(&cfg.also)?;
        out(&format!(
            "===MISBEHAVE-ALSO-START {} pid={pid}===\n",
            cfg.scenario
        ));
    }
    let res = run_child(&cfg, 1, &mut buf)?;
    out(&format!("===MISBEHAVE-CHILD-END {}===\n", cfg.scenario));
    let also_exit = (!cfg.also.is_empty()).then(|| wait_also(cfg.also_wait));
    let (left, remaining) = clean_up();

    let report = &buf[..res.output_len];
    // One round: the floor three times (the harness takes the median). More rounds: once
    // after each, so that each measurement has a floor taken in the same moment.
    let floors = if cfg.rounds == 1 { 3 } else { 1 };
    measure_floors(cfg.floor, report, floors);
    let mut more = Vec::new();
    for round in 2..=cfg.rounds {
        more.resize(REPORT_CAP, 0);
        let r = run_child(&cfg, round, &mut more)?;
        let (procs_left, _) = clean_up();
        let rep = &more[..r.output_len];
        let parsed = floor::report(rep);
        let field = |v: Option<String>| v.unwrap_or_else(|| "?".into());
        out(&format!(
            "===MISBEHAVE-ROUND i={round} exit={} wall_s={:.3} teardown_s={} live_procs={} procs_left={procs_left}===\n",
            r.exit,
            r.wall.as_secs_f64(),
            field(parsed.as_ref().map(|r| r.teardown_s.to_string())),
            field(parsed.as_ref().and_then(live_procs_peak).map(|n| n.to_string())),
        ));
        measure_floors(cfg.floor, rep, floors);
    }

    if let Some((_, dir, _)) = &cfg.mount {
        let d = cstring(dir);
        // SAFETY: a valid path; the disk is thrown away after the run anyway.
        unsafe { libc::umount2(d.as_ptr(), 0) };
    }

    // Keep kernel messages off the console while the report is printed.
    // SAFETY: SYSLOG_ACTION_CONSOLE_LEVEL takes no buffer.
    unsafe { libc::klogctl(8, std::ptr::null_mut(), 1) };
    if res.dropped > 0 {
        out(&format!(
            "===MISBEHAVE-NOTE stdout truncated to {} bytes, {} dropped===\n",
            res.output_len, res.dropped
        ));
    }
    out(&format!(
        "\n===MISBEHAVE-REPORT-BEGIN {}===\n",
        cfg.scenario
    ));
    out_bytes(report);
    if !report.ends_with(b"\n") {
        out("\n");
    }
    out(&format!(
        "===MISBEHAVE-REPORT-END {} exit={} wall_s={:.3}===\n===MISBEHAVE-PROCS-LEFT {left}===\n",
        cfg.scenario,
        res.exit,
        res.wall.as_secs_f64()
    ));
    if remaining > 0 {
        out(&format!(
            "===MISBEHAVE-NOTE {remaining} processes survived SIGKILL for 5 s===\n"
        ));
    }
    if let Some(exit) = also_exit {
        let mut also = std::fs::read(ALSO_OUT.to_str().unwrap_or_default()).unwrap_or_default();
        also.truncate(REPORT_CAP);
        out(&format!("===MISBEHAVE-ALSO-BEGIN {}===\n", cfg.scenario));
        out_bytes(&also);
        if !also.ends_with(b"\n") {
            out("\n");
        }
        out(&format!(
            "===MISBEHAVE-ALSO-END {} exit={exit}===\n",
            cfg.scenario
        ));
    }
    out("===MISBEHAVE-POWEROFF===\n");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // SAFETY: plain syscall.
    if unsafe { libc::getpid() } != 1 {
        std::process::exit(child_mode(&args));
    }
    std::panic::set_hook(Box::new(|info| {
        out(&format!(
            "\n===MISBEHAVE-INIT-ERROR panic: {}===\n",
            one_line(&info.to_string())
        ));
        poweroff();
    }));
    if let Err(e) = run(&args) {
        out(&format!("\n===MISBEHAVE-INIT-ERROR {}===\n", one_line(&e)));
    }
    poweroff();
}
