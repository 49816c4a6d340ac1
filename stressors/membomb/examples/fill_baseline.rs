//! The simplest possible fill loop, the yardstick for `scripts/bench-mem`: PROCS processes
//! each map BYTES/PROCS of private anonymous memory at once and write one byte per page.
//! Each prints one line, `bytes seconds`, for its mmap + touch; then holds the memory for
//! HOLD_MS (so a cgroup poller sees it) and exits.
//!
//!     fill_baseline BYTES [PROCS] [HOLD_MS]

use std::time::{Duration, Instant};

use memmap2::MmapMut;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: fill_baseline BYTES [PROCS] [HOLD_MS]");
        std::process::exit(2)
    };
    let arg = |i: usize, d: u64| {
        args.get(i)
            .map_or(Some(d), |s| s.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let bytes = arg(1, 0);
    let procs = arg(2, 1).max(1);
    let hold = Duration::from_millis(arg(3, 300));
    if bytes == 0 {
        usage();
    }
    let page = common::sys::page_size();
    let per = (bytes / procs) as usize / page * page;
    let mut kids = Vec::new();
    for _ in 0..procs {
        // SAFETY: single-threaded; the child only maps, writes, prints and exits.
        match unsafe { libc::fork() } {
            0 => {
                let t0 = Instant::now();
                let mut m = MmapMut::map_anon(per).expect("mmap");
                let p = m.as_mut_ptr();
                let mut off = 0;
                while off < per {
                    // SAFETY: inside the mapping.
                    unsafe { p.add(off).write_volatile(1) };
                    off += page;
                }
                let secs = t0.elapsed().as_secs_f64();
                println!("{per} {secs:.6}");
                std::thread::sleep(hold);
                // SAFETY: leaving the child.
                unsafe { libc::_exit(0) };
            }
            -1 => panic!("fork: {}", std::io::Error::last_os_error()),
            pid => kids.push(pid),
        }
    }
    for pid in kids {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
    }
}
