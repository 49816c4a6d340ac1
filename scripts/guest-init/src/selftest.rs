//! Self-tests of the harness, and child mode. Run as any PID other than 1, the binary
//! offers stand-in commands for the harness self-tests (`--selftest-ok [SECS]`,
//! `--selftest-hang`, `--selftest-orphans`) and the floor measurement (`--floor N`, see
//! the `floor` module). As PID 1, `selftest=` makes init itself misbehave.

use std::time::{Duration, Instant};

use crate::console::out;
use crate::floor::floor_mode;
use crate::sys::sleep_ms;

/// `selftest=NAME`: init itself misbehaves, once the pseudo file systems are mounted.
pub(crate) fn init_selftest(name: &str) -> Result<(), String> {
    match name {
        "init-panic" => panic!("selftest=init-panic: init panics on purpose"),
        "init-exit" => {
            out("guest-init: selftest=init-exit: PID 1 exits, the kernel panics\n");
            std::process::exit(3);
        }
        "init-hang" => {
            out("guest-init: selftest=init-hang: PID 1 sleeps for an hour\n");
            for _ in 0..3600 {
                sleep_ms(1000);
            }
        }
        other => return Err(format!("unknown selftest={other}")),
    }
    Ok(())
}

pub(crate) fn child_mode(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("--floor") => match args.get(1).and_then(|a| a.parse().ok()) {
            Some(n) => floor_mode(n),
            None => 2,
        },
        Some("--selftest-hang") => {
            eprintln!("selftest-hang: sleeping for an hour");
            for _ in 0..3600 {
                sleep_ms(1000);
            }
            0
        }
        Some("--selftest-ok") => {
            // One spinning thread per CPU for SECS (default 3) seconds, sampled every
            // second; the report has the shape of a cpubomb report.
            let secs: u64 = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or(3)
                .min(600);
            selftest_burn(Duration::from_secs(secs));
            0
        }
        Some("--selftest-orphans") => {
            // Leaves three sleeping orphans behind: init must count and kill them.
            for _ in 0..3 {
                // SAFETY: fork in a single-threaded process; the child only sleeps.
                if unsafe { libc::fork() } == 0 {
                    for _ in 0..3600 {
                        // SAFETY: plain syscall.
                        unsafe { libc::sleep(1) };
                    }
                    // SAFETY: plain syscall.
                    unsafe { libc::_exit(0) };
                }
            }
            println!("{{\"schema\":\"misbehave.report/1\",\"tool\":\"guest-init-selftest\",\"outcome\":\"completed\"}}");
            0
        }
        _ => {
            eprintln!(
                "guest-init is the /init of scripts/guest-test guests; as PID {} it only offers\n\
                 --selftest-ok | --selftest-hang | --selftest-orphans",
                std::process::id()
            );
            2
        }
    }
}

fn selftest_burn(dur: Duration) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ops = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..n)
        .map(|_| {
            let ops = Arc::clone(&ops);
            std::thread::spawn(move || {
                let mut x = 1u64;
                while t0.elapsed() < dur {
                    for i in 0..10_000u64 {
                        x = std::hint::black_box(x.wrapping_mul(i | 1).wrapping_add(i));
                    }
                    ops.fetch_add(10_000, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut samples = String::new();
    for i in 1..=dur.as_secs() {
        let next = Duration::from_secs(i);
        if let Some(wait) = next.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
        if !samples.is_empty() {
            samples.push(',');
        }
        samples.push_str(&format!(
            "{{\"t\":{:.3},\"ops\":{}}}",
            t0.elapsed().as_secs_f64(),
            ops.load(Ordering::Relaxed)
        ));
    }
    let mut exited = 0;
    for w in workers {
        exited += usize::from(w.join().is_ok());
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // SAFETY: valid out pointer.
    let cpu_s = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    println!(
        "{{\"schema\":\"misbehave.report/1\",\"tool\":\"guest-init-selftest\",\"outcome\":\"completed\",\
         \"elapsed_s\":{elapsed:.3},\"workers\":{{\"started\":{n},\"exited\":{exited},\"killed\":0,\"oom_killed\":0}},\
         \"totals\":{{\"ops\":{},\"cpu_s\":{cpu_s:.3}}},\"samples\":[{samples}],\
         \"details\":{{\"load_pct\":{:.1}}}}}",
        ops.load(Ordering::Relaxed),
        100.0 * cpu_s / (elapsed * n as f64)
    );
}
