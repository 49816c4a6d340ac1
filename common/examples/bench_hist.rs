//! What recording a latency costs (run by `scripts/bench-hist`): ns per `Recorder::record`
//! into a histogram in shared memory, against the same loop with no recording, and what
//! the supervisor's once-a-second merge costs per worker.

use std::hint::black_box;
use std::time::Instant;

use common::hist::{Histogram, Recorder};
use common::shm::Shared;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50_000_000);
    // Log-uniform values from 1 us to 100 ms, made before timing.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let values: Vec<u64> = (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            (1e3 * 10f64.powf(u * 5.0)) as u64
        })
        .collect();
    let shared = Shared::new(1, 1, 0).expect("shared mapping");
    let rec = Recorder::new(shared.hist(0, 0));

    let best = |f: &dyn Fn()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let empty = best(&|| {
        let mut s = 0u64;
        for i in 0..n {
            s = s.wrapping_add(black_box(values[i & 0xffff]));
        }
        black_box(s);
    });
    let recorded = best(&|| {
        for i in 0..n {
            rec.record(black_box(values[i & 0xffff]));
        }
    });
    let per = |t: f64| t * 1e9 / n as f64;
    println!("values recorded      {n}");
    println!("loop alone           {:.2} ns/value", per(empty));
    println!("loop + record        {:.2} ns/value", per(recorded));
    println!(
        "record               {:.2} ns/record (target: well under 50)",
        per(recorded - empty).max(0.0)
    );
    let mut h = Histogram::new();
    let merges = 2000;
    let t = Instant::now();
    for _ in 0..merges {
        h.clear();
        h.add_cells(shared.hist(0, 0));
        black_box(h.summary());
    }
    println!(
        "merge + percentiles  {:.1} us per worker-histogram per second",
        t.elapsed().as_secs_f64() * 1e6 / merges as f64
    );
    let s = h.summary().expect("values");
    println!(
        "check                count {} p50 {} ns p99 {} ns max {} ns",
        s.count, s.p50_ns, s.p99_ns, s.max_ns
    );
}
