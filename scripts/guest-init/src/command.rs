//! The command init runs (`run=`, its stdout captured through a pipe, a deadline of
//! `timeout=`) and the one beside it (`also=`, its stdout into a file in /tmp).

use std::ffi::{CStr, CString};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::cmdline::Config;
use crate::console::out;
use crate::reap::{reap_all, ALSO_PID, ALSO_STATUS};
use crate::sys::{errno, os_err, sleep_ms};

pub(crate) const ALSO_OUT: &CStr = c"/tmp/misbehave-also.out";

/// Starts the `also=` command: own session, stdout into ALSO_OUT, stderr on the console.
pub(crate) fn start_also(argv: &[CString]) -> Result<libc::pid_t, String> {
    // SAFETY: a path and flags; the fd is ours.
    let fd = unsafe {
        libc::open(
            ALSO_OUT.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return Err(os_err("open /tmp/misbehave-also.out"));
    }
    let pid = spawn(
        argv,
        fd,
        b"guest-init: execve of the also= command failed\n",
    );
    // SAFETY: our copy of the file's fd.
    unsafe { libc::close(fd) };
    let pid = pid?;
    ALSO_STATUS.store(-1, Relaxed);
    ALSO_PID.store(pid, Relaxed);
    Ok(pid)
}

/// Starts `argv` as a command of its own: a session of its own, stdout on `out_fd`,
/// stderr on the console, the default nice and OOM score, SIGPIPE and the signal mask as
/// a shell would leave them, a small fixed environment.
pub(crate) fn spawn(
    argv: &[CString],
    out_fd: libc::c_int,
    fail_msg: &[u8],
) -> Result<libc::pid_t, String> {
    let mut argv: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let env = [c"PATH=/bin:/sbin", c"HOME=/", c"TERM=linux", c"TMPDIR=/tmp"];
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let oom_path = c"/proc/self/oom_score_adj";
    // SAFETY: init is single threaded; the child only makes async-signal-safe calls.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("fork"));
    }
    if pid == 0 {
        // SAFETY: child side of fork: only raw syscalls on prepared data.
        unsafe {
            libc::dup2(out_fd, 1);
            libc::setsid();
            libc::setpriority(libc::PRIO_PROCESS, 0, 0);
            let fd = libc::open(oom_path.as_ptr(), libc::O_WRONLY);
            if fd >= 0 {
                libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
            }
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
            libc::write(2, fail_msg.as_ptr().cast(), fail_msg.len());
            libc::_exit(127);
        }
    }
    Ok(pid)
}

/// Waits up to `limit` for the `also=` command to end; its exit as the markers say it.
pub(crate) fn wait_also(limit: Duration) -> String {
    let t0 = Instant::now();
    for _ in 0..(limit.as_millis() / 20 + 1) {
        reap_all(0);
        if ALSO_PID.load(Relaxed) == 0 {
            break;
        }
        if t0.elapsed() >= limit {
            break;
        }
        sleep_ms(20);
    }
    if ALSO_PID.load(Relaxed) != 0 {
        return "killed".into();
    }
    match ALSO_STATUS.load(Relaxed) {
        st if libc::WIFEXITED(st) => libc::WEXITSTATUS(st).to_string(),
        st if libc::WIFSIGNALED(st) => format!("sig{}", libc::WTERMSIG(st)),
        st => format!("status{st}"),
    }
}

pub(crate) struct ChildResult {
    pub(crate) exit: String,
    pub(crate) wall: Duration,
    pub(crate) output_len: usize,
    pub(crate) dropped: usize,
}

/// Reads whatever the pipe `fd` holds right now into `buf[*len..]`, counting what does not
/// fit in `dropped`; false on EOF.
pub(crate) fn drain(fd: libc::c_int, buf: &mut [u8], len: &mut usize, dropped: &mut usize) -> bool {
    let mut scratch = [0u8; 4096];
    for _ in 0..100_000 {
        let dst: &mut [u8] = if *len < buf.len() {
            &mut buf[*len..]
        } else {
            &mut scratch[..]
        };
        // SAFETY: dst is a valid writable slice.
        let n = unsafe { libc::read(fd, dst.as_mut_ptr().cast(), dst.len()) };
        if n > 0 {
            if *len < buf.len() {
                *len += n as usize;
            } else {
                *dropped += n as usize;
            }
        } else if n == 0 {
            return false;
        } else if errno() == libc::EINTR {
            continue;
        } else {
            return true; // EAGAIN: nothing more for now
        }
    }
    true
}

/// The command's exit as the markers say it: `0`, `sigN`, `statusN`, or `timeout` (also
/// when it was never reaped).
pub(crate) fn exit_word(status: Option<libc::c_int>, timed_out: bool) -> String {
    match status {
        _ if timed_out => "timeout".to_string(),
        None => "timeout".to_string(),
        Some(st) if libc::WIFEXITED(st) => libc::WEXITSTATUS(st).to_string(),
        Some(st) if libc::WIFSIGNALED(st) => format!("sig{}", libc::WTERMSIG(st)),
        Some(st) => format!("status{st}"),
    }
}

/// Runs the command once (round `round`, 1-based), its stdout into `buf`.
pub(crate) fn run_child(cfg: &Config, round: usize, buf: &mut [u8]) -> Result<ChildResult, String> {
    let mut fds = [0; 2];
    // SAFETY: valid out array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(os_err("pipe2"));
    }
    let (rfd, wfd) = (fds[0], fds[1]);
    // The child's end must block.
    // SAFETY: fcntl on our own fd.
    unsafe { libc::fcntl(wfd, libc::F_SETFL, 0) };

    let start = Instant::now();
    let pid = spawn(
        &cfg.run,
        wfd,
        b"guest-init: execve of the run= command failed\n",
    );
    if pid.is_err() {
        // SAFETY: our fds.
        unsafe {
            libc::close(rfd);
            libc::close(wfd);
        }
    }
    let pid = pid?;
    // SAFETY: close our copy of the write end.
    unsafe { libc::close(wfd) };
    if round == 1 {
        out(&format!(
            "===MISBEHAVE-CHILD-START {} pid={pid}===\n",
            cfg.scenario
        ));
    } else {
        out(&format!(
            "===MISBEHAVE-ROUND-START {} i={round} pid={pid}===\n",
            cfg.scenario
        ));
    }

    let deadline = start + cfg.timeout;
    let mut len = 0usize;
    let mut dropped = 0usize;
    let mut pipe_open = true;
    let mut status: Option<libc::c_int> = None;
    let mut timed_out = false;
    // Bounded by the deadline; the count is a second, generous bound.
    let max_iter = (cfg.timeout.as_millis() / 20 + 1000) as usize;
    for _ in 0..max_iter {
        if let Some(st) = reap_all(pid) {
            status = Some(st);
        }
        if status.is_some() {
            if pipe_open {
                drain(rfd, buf, &mut len, &mut dropped);
            }
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            // SAFETY: signalling the child's process group and the child.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            for _ in 0..500 {
                if let Some(st) = reap_all(pid) {
                    status = Some(st);
                    break;
                }
                sleep_ms(10);
            }
            if pipe_open {
                drain(rfd, buf, &mut len, &mut dropped);
            }
            break;
        }
        let wait_ms = (deadline - now).as_millis().min(50) as libc::c_int;
        if pipe_open {
            let mut pfd = libc::pollfd {
                fd: rfd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, wait_ms.max(1)) };
            if r > 0 && !drain(rfd, buf, &mut len, &mut dropped) {
                pipe_open = false;
            }
        } else {
            sleep_ms(wait_ms.max(1) as u64);
        }
    }
    let wall = start.elapsed();
    // SAFETY: our fd.
    unsafe { libc::close(rfd) };
    Ok(ChildResult {
        exit: exit_word(status, timed_out),
        wall,
        output_len: len,
        dropped,
    })
}
