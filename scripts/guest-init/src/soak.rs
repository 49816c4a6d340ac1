//! Soak mode (`soak=PATH`): instead of the one `run=` command, init runs every step of the
//! plan file PATH (made by `scripts/soak` on the host and put into the initramfs) one after
//! another. Each step's command starts in a cgroup of its own, gets the step's signal at
//! the step's moment, and is watched from outside: when the command and the last process of
//! its run ended, how many processes of the run it left, the most processes, memory and disk
//! the run held at once, and the files left in its directory. The host judges; init only
//! measures and prints a `SOAK-RUN` marker and the command's stdout for every step (see
//! [`crate::console`]).
//!
//! A plan line, space separated (the argv encoded as `run=`'s), is a step or a floor to
//! measure (`/init --floor N`, as `floor=N`: the host judges a bomb's teardown against it):
//!
//! ```text
//! <i> <binary> <duration_s> <signal: 0 none, else its number> <at_s> <dir|-> <argv>
//! floor <n>
//! ```

use std::ffi::CString;
use std::time::{Duration, Instant};

use crate::cmdline::parse_argv;
use crate::command::{drain, exit_word, spawn};
use crate::console::{one_line, out, out_bytes};
use crate::floor::measure_floor;
use crate::mounts::mount_fs;
use crate::reap::reap_all;
use crate::sys::{cstring, errno, os_err, write_file};

const CG_ROOT: &str = "/sys/fs/cgroup";
/// Past its duration plus this, a step's run is killed and its exit is `timeout`.
const HARD_EXTRA_S: f64 = 10.0;
/// When, after the command (the supervisor) ended, the run's processes still there are
/// counted (`left=`): the host judges by the run's end (`end_s`) against its own bound and
/// prints this count beside it.
const SETTLE: Duration = Duration::from_secs(1);
/// How long after the command's end the run's end is still waited for (and timed), before
/// what is left is killed: well past any bound the host holds the run to (under
/// emulation, forkbomb's includes its floor).
const LINGER: Duration = Duration::from_secs(10);
/// The most of a step's stdout kept.
const OUT_CAP: usize = 4 << 20;
/// How often the run is sampled while it runs.
const TICK_MS: libc::c_int = 10;

struct Step {
    i: usize,
    binary: String,
    duration_s: f64,
    signal: i32,
    at_s: f64,
    dir: Option<String>,
    argv: Vec<CString>,
}

enum Item {
    Step(Step),
    Floor(usize),
}

fn parse_plan(text: &str) -> Result<Vec<Item>, String> {
    let mut steps = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        let bad = || format!("bad soak plan line {line:?}");
        if let ["floor", n] = w[..] {
            steps.push(Item::Floor(n.parse().map_err(|_| bad())?));
            continue;
        }
        if w.len() != 7 {
            return Err(bad());
        }
        steps.push(Item::Step(Step {
            i: w[0].parse().map_err(|_| bad())?,
            binary: w[1].into(),
            duration_s: w[2].parse().map_err(|_| bad())?,
            signal: w[3].parse().map_err(|_| bad())?,
            at_s: w[4].parse().map_err(|_| bad())?,
            dir: (w[5] != "-").then(|| w[5].to_string()),
            argv: parse_argv("soak", w[6])?,
        }));
    }
    Ok(steps)
}

/// Runs every step of the plan at `path`.
pub(crate) fn run_plan(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))?;
    let steps = parse_plan(&text)?;
    if !std::path::Path::new(&format!("{CG_ROOT}/cgroup.controllers")).exists() {
        mount_fs(
            "cgroup2",
            CG_ROOT,
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "",
        )?;
    }
    write_file(
        &format!("{CG_ROOT}/cgroup.subtree_control"),
        "+memory +pids",
    )?;
    // Kernel messages (OOM kills, hung tasks) stay off the console: the markers and
    // reports must not be cut by them.
    // SAFETY: SYSLOG_ACTION_CONSOLE_LEVEL takes no buffer.
    unsafe { libc::klogctl(8, std::ptr::null_mut(), 1) };
    let mut buf = vec![0u8; OUT_CAP];
    let mut runs = 0;
    for item in &steps {
        match item {
            Item::Step(s) => {
                run_step(s, &mut buf)?;
                runs += 1;
            }
            Item::Floor(n) => measure_floor(*n),
        }
    }
    out(&format!("===MISBEHAVE-SOAK-END runs={runs}===\n"));
    Ok(())
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_num(path: &str) -> Option<u64> {
    read(path).and_then(|s| s.trim().parse().ok())
}

/// Bytes in use on the filesystem of `dir`.
fn fs_used(dir: &str) -> Option<u64> {
    let p = cstring(dir);
    // SAFETY: a zeroed statvfs (plain integers) is a valid out value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and out pointer.
    if unsafe { libc::statvfs(p.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_blocks - st.f_bfree) as u64 * st.f_frsize as u64)
}

/// Processes in the cgroup (cgroup.procs lists no zombies).
fn procs_in(cg: &str) -> usize {
    read(&format!("{cg}/cgroup.procs")).map_or(0, |s| s.lines().count())
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "?".into(), |x| x.to_string())
}

fn secs(v: Option<Duration>) -> String {
    v.map_or_else(|| "?".into(), |d| format!("{:.3}", d.as_secs_f64()))
}

fn run_step(s: &Step, buf: &mut [u8]) -> Result<(), String> {
    let cg = format!("{CG_ROOT}/soak-{}", s.i);
    let c = cstring(&cg);
    // SAFETY: valid path.
    if unsafe { libc::mkdir(c.as_ptr(), 0o755) } != 0 && errno() != libc::EEXIST {
        return Err(os_err(&format!("mkdir {cg}")));
    }
    let mut fds = [0; 2];
    // SAFETY: valid out array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(os_err("pipe2"));
    }
    let (rfd, wfd) = (fds[0], fds[1]);
    // SAFETY: fcntl on our own fd: the child's end must block.
    unsafe { libc::fcntl(wfd, libc::F_SETFL, 0) };
    let disk0 = s.dir.as_deref().and_then(fs_used);

    // Init steps into the step's cgroup for the fork, so the command is born there with
    // every process it will make, and steps back out at once.
    write_file(&format!("{cg}/cgroup.procs"), "0")?;
    let start = Instant::now();
    let pid = spawn(
        &s.argv,
        wfd,
        b"guest-init: execve of a soak command failed\n",
    );
    let back = write_file(&format!("{CG_ROOT}/cgroup.procs"), "0");
    // SAFETY: our copy of the write end.
    unsafe { libc::close(wfd) };
    let pid = pid?;
    back?;
    out(&format!(
        "===MISBEHAVE-SOAK-START i={} binary={} pid={pid}===\n",
        s.i, s.binary
    ));

    let hard = Duration::from_secs_f64(s.duration_s + HARD_EXTRA_S);
    let at = Duration::from_secs_f64(s.at_s);
    let (mut status, mut t_exit, mut t_empty, mut t_sig) = (None, None, None, None);
    let (mut procs_peak, mut mem_peak, mut disk_peak) = (0usize, 0u64, 0u64);
    let mut timed_out = false;
    let mut left = None;
    let (mut len, mut dropped) = (0usize, 0usize);
    let mut pipe_open = true;
    let max_iter = ((s.duration_s + HARD_EXTRA_S) * 1000.0 / TICK_MS as f64) as usize + 10_000;
    for _ in 0..max_iter {
        if status.is_none() {
            if let Some(st) = reap_all(pid) {
                status = Some(st);
                t_exit = Some(start.elapsed());
            }
        } else {
            reap_all(0);
        }
        let procs = procs_in(&cg);
        procs_peak = procs_peak.max(procs);
        mem_peak = mem_peak.max(read_num(&format!("{cg}/memory.current")).unwrap_or(0));
        if let (Some(d), Some(u0)) = (s.dir.as_deref(), disk0) {
            disk_peak = disk_peak.max(fs_used(d).unwrap_or(u0).saturating_sub(u0));
        }
        let el = start.elapsed();
        if let Some(te) = t_exit {
            if procs == 0 {
                t_empty = Some(el);
                break;
            }
            if left.is_none() && el >= te + SETTLE {
                left = Some(procs);
            }
            if el >= te + LINGER {
                break;
            }
        } else if s.signal != 0 && t_sig.is_none() && el >= at {
            // SAFETY: signalling the command (the supervisor) alone.
            unsafe { libc::kill(pid, s.signal) };
            t_sig = Some(el);
        }
        // Once the command has ended, LINGER alone bounds the wait for the rest of the run.
        if t_exit.is_none() && el >= hard {
            timed_out = true;
            break;
        }
        if pipe_open {
            let mut pfd = libc::pollfd {
                fd: rfd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, TICK_MS) } > 0
                && !drain(rfd, buf, &mut len, &mut dropped)
            {
                pipe_open = false;
            }
        } else {
            std::thread::sleep(Duration::from_millis(TICK_MS as u64));
        }
    }
    let left = left.unwrap_or_else(|| if t_empty.is_some() { 0 } else { procs_in(&cg) });
    // What is left goes now, whatever it is.
    let _ = write_file(&format!("{cg}/cgroup.kill"), "1");
    for _ in 0..500 {
        reap_all(0);
        if procs_in(&cg) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if status.is_none() {
        status = reap_all(pid);
    }
    if pipe_open {
        drain(rfd, buf, &mut len, &mut dropped);
    }
    // SAFETY: our fd.
    unsafe { libc::close(rfd) };
    let mem_peak = read_num(&format!("{cg}/memory.peak")).unwrap_or(mem_peak);
    let pids_peak = read_num(&format!("{cg}/pids.peak"));
    for _ in 0..100 {
        // SAFETY: valid path; fails while the last task is still being released.
        if unsafe { libc::rmdir(c.as_ptr()) } == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut files = Vec::new();
    if let Some(d) = &s.dir {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten().take(100) {
                let name = e.file_name().to_string_lossy().into_owned();
                if name != "lost+found" {
                    files.push(name);
                }
            }
        }
    }
    let disk_left = match (s.dir.as_deref().and_then(fs_used), disk0) {
        (Some(u), Some(u0)) => Some(u.saturating_sub(u0)),
        _ => None,
    };
    let exit = exit_word(status, timed_out);
    if !files.is_empty() {
        out(&format!(
            "===MISBEHAVE-NOTE soak run {} left files: {}===\n",
            s.i,
            one_line(&files.join(" "))
        ));
    }
    // After a newline: the command's live status line on the console has none.
    out(&format!(
        "\n===MISBEHAVE-SOAK-RUN i={} binary={} exit={exit} exit_s={} end_s={} sig_s={} left={left} \
         files_left={} procs_peak={procs_peak} pids_peak={} mem_peak={mem_peak} disk_peak={} \
         disk_left={}===\n",
        s.i,
        s.binary,
        secs(t_exit),
        secs(t_empty),
        secs(t_sig),
        files.len(),
        opt(pids_peak),
        opt(disk0.map(|_| disk_peak)),
        opt(disk_left),
    ));
    out(&format!("===MISBEHAVE-SOAK-REPORT-BEGIN i={}===\n", s.i));
    let report = &buf[..len];
    out_bytes(report);
    if !report.is_empty() && !report.ends_with(b"\n") {
        out("\n");
    }
    out(&format!("===MISBEHAVE-SOAK-REPORT-END i={}===\n", s.i));
    Ok(())
}
