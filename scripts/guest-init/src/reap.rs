//! Reaping: as PID 1, init adopts every orphan and must reap it. Counting the processes
//! left, killing them and waiting for them to go also lives here.

use std::ffi::CStr;
use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::sys::sleep_ms;

/// The `also=` command's pid while it runs (0: none or reaped), and its wait status once
/// reaped (-1 until then); set by `reap_all`, which reaps every child.
pub(crate) static ALSO_PID: AtomicI32 = AtomicI32::new(0);
pub(crate) static ALSO_STATUS: AtomicI32 = AtomicI32::new(-1);
/// Most /proc entries `count_procs` looks at.
const MAX_PROC_SCAN: usize = 100_000;

/// Reaps every zombie child without blocking. Returns the wait status of `pid`
/// if it was among them.
pub(crate) fn reap_all(pid: libc::pid_t) -> Option<libc::c_int> {
    let mut status_of_pid = None;
    for _ in 0..100_000 {
        let mut st = 0;
        // SAFETY: valid out pointer.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
        if r == pid {
            status_of_pid = Some(st);
        }
        if r > 0 && r == ALSO_PID.load(Relaxed) {
            ALSO_STATUS.store(st, Relaxed);
            ALSO_PID.store(0, Relaxed);
        }
    }
    status_of_pid
}

/// Number of live user-space processes other than init (kernel threads and
/// zombies excluded).
fn count_procs() -> usize {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0;
    let mut buf = [0u8; 512];
    for e in rd.flatten().take(MAX_PROC_SCAN) {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == 1 {
            continue;
        }
        let mut path = [0u8; 32];
        let mut cur = std::io::Cursor::new(&mut path[..]);
        let _ = write!(cur, "/proc/{pid}/stat\0");
        let Ok(p) = CStr::from_bytes_until_nul(&path) else {
            continue;
        };
        // SAFETY: valid path, buffer and length.
        let len = unsafe {
            let fd = libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                continue;
            }
            let len = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
            len
        };
        if len <= 0 {
            continue;
        }
        let stat = &buf[..len as usize];
        // Fields after the last ')': state ppid pgrp session tty tpgid flags ...
        let Some(close) = stat.iter().rposition(|&c| c == b')') else {
            continue;
        };
        let Ok(rest) = std::str::from_utf8(&stat[close + 1..]) else {
            continue;
        };
        let mut f = rest.split_ascii_whitespace();
        let state = f.next().unwrap_or("");
        let flags: u64 = f.nth(5).and_then(|x| x.parse().ok()).unwrap_or(0);
        const PF_KTHREAD: u64 = 0x0020_0000;
        if flags & PF_KTHREAD != 0 || state == "Z" || state == "X" {
            continue;
        }
        n += 1;
    }
    n
}

/// Kills everything but init and reaps it, for at most `limit`. Returns how
/// many processes still exist at the end.
fn kill_all_and_reap(limit: Duration) -> usize {
    let t0 = Instant::now();
    for _ in 0..1000 {
        // SAFETY: kill(-1) from PID 1 signals every process but init itself.
        unsafe { libc::kill(-1, libc::SIGKILL) };
        reap_all(0);
        let n = count_procs();
        if n == 0 || t0.elapsed() > limit {
            return n;
        }
        sleep_ms(20);
    }
    count_procs()
}

/// Once the command has ended: a grace of up to 500 ms for processes already on their
/// way out, then SIGKILL for whatever is left. Returns (processes left after the grace,
/// processes that survived the kill for 5 s).
pub(crate) fn clean_up() -> (usize, usize) {
    let mut left = count_procs();
    for _ in 0..25 {
        if left == 0 {
            break;
        }
        reap_all(0);
        sleep_ms(20);
        left = count_procs();
    }
    let remaining = if left > 0 {
        kill_all_and_reap(Duration::from_secs(5))
    } else {
        0
    };
    (left, remaining)
}
