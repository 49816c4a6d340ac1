//! Floors (`floor=`): what a bare program needs, in this guest and in this moment, to kill
//! and reap as many processes as the command had, against which the command's own
//! teardown is judged. Measured by `/init --floor N`, a fresh process, not a copy of PID
//! 1's memory.

use std::time::Instant;

use crate::cmdline::Floor;
use crate::console::out;
use crate::reap::reap_all;
use crate::sys::{cstring, errno, os_err, sleep_ms};

/// The command's report, if its stdout is one.
pub(crate) fn report(out: &[u8]) -> Option<misbehave_report::Report> {
    serde_json::from_slice(out).ok()
}

/// The peak of live processes in a report (forkbomb's `peaks.live_procs`).
pub(crate) fn live_procs_peak(report: &misbehave_report::Report) -> Option<u64> {
    match report.peaks.get("live_procs")?.value {
        misbehave_report::Value::Count(n) => Some(n),
        _ => None,
    }
}

/// `floor=`: `times` floor measurements for this round's report.
pub(crate) fn measure_floors(floor: Option<Floor>, stdout: &[u8], times: usize) {
    let n = match floor {
        Some(Floor::Count(n)) => n,
        Some(Floor::Peak) => match report(stdout).as_ref().and_then(live_procs_peak) {
            Some(n) if n > 0 => n as usize,
            _ => {
                out("===MISBEHAVE-NOTE floor=peak: no live_procs peak in the report===\n");
                return;
            }
        },
        None => return,
    };
    for _ in 0..times {
        measure_floor(n);
    }
}

/// Runs `/init --floor N` as a fresh process (not a copy of PID 1's memory) and waits for
/// it; it prints the FLOOR marker itself.
pub(crate) fn measure_floor(n: usize) {
    let argv = [
        cstring("/init"),
        cstring("--floor"),
        cstring(&n.to_string()),
    ];
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: PID 1 is single-threaded here; the child only execs or exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: valid NUL-terminated argv; environment left empty.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, 0);
            let env: [*const libc::c_char; 1] = [std::ptr::null()];
            libc::execve(ptrs[0], ptrs.as_ptr(), env.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        out(&format!("===MISBEHAVE-NOTE floor: {}===\n", os_err("fork")));
        return;
    }
    let mut st = 0;
    // SAFETY: valid out pointer.
    while unsafe { libc::waitpid(pid, &mut st, 0) } < 0 && errno() == libc::EINTR {}
    reap_all(0);
}

/// `--floor N` (as a child of init): N sleeping processes in one group, then one
/// killpg(SIGKILL) and the reaping of every one of them, timed.
pub(crate) fn floor_mode(n: usize) -> i32 {
    let lead = spawn_sleeper(0);
    if lead < 0 {
        println!("===MISBEHAVE-NOTE floor: {}===", os_err("fork"));
        return 1;
    }
    let mut made = 1;
    while made < n && spawn_sleeper(lead) > 0 {
        made += 1;
    }
    let s = kill_and_reap(lead, made);
    println!("===MISBEHAVE-FLOOR n={made} s={s:.3}===");
    0
}

/// fork(2); the child joins group `pgid` (0: leads one of its own) and sleeps until killed.
fn spawn_sleeper(pgid: libc::pid_t) -> libc::pid_t {
    // SAFETY: this process is single-threaded; the child only sets its group and sleeps.
    let c = unsafe { libc::fork() };
    if c == 0 {
        // SAFETY: plain syscalls in a freshly forked single-threaded child.
        unsafe {
            libc::setpgid(0, pgid);
            loop {
                libc::pause();
            }
        }
    }
    if c > 0 {
        // SAFETY: plain syscall (both sides set the group, so neither races the other).
        unsafe { libc::setpgid(c, if pgid == 0 { c } else { pgid }) };
    }
    c
}

/// Once the `n` processes of group `lead` have settled (they were runnable right after
/// fork): one killpg(SIGKILL) and the reaping of every child, adopted orphans included.
/// Returns the seconds that took.
fn kill_and_reap(lead: libc::pid_t, n: usize) -> f64 {
    sleep_ms(1000 + n as u64 / 4);
    let t0 = Instant::now();
    // SAFETY: plain syscall.
    unsafe { libc::killpg(lead, libc::SIGKILL) };
    let mut st = 0;
    // SAFETY: valid out pointer; blocks until a child ends, ECHILD once none is left.
    while unsafe { libc::waitpid(-1, &mut st, 0) } >= 0 || errno() == libc::EINTR {}
    t0.elapsed().as_secs_f64()
}
