//! `cpubomb`: the isolation paper's CPU test. Every worker continuously does integer and
//! floating point multiplication, division and remainder, to occupy the CPU time it gets.
//!
//! `--load P` turns the bomb into a steady neighbour: each worker runs a duty cycle measured
//! against the CPU time it *really received* (its own CPU clock), not against wall time, so
//! a starved guest does not fall below its target by the steal, and the achieved load lands
//! on P over the run. The report gives each worker's load, the guest's steal time over the
//! run (Linux), and how long the workers took to get busy.

use clap::{Parser, ValueEnum};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use common::{CommonArgs, Findings, Found, Host, MetricId, Metrics, RunData, Stressor, Worker};

/// What each operation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// 64-bit integer multiply, divide and remainder
    Int,
    /// double-precision multiply, divide and remainder
    Float,
    /// both, in every operation
    Mixed,
}

/// Burn every CPU the guest has: integer and floating point multiply, divide, remainder.
#[derive(Debug, Parser)]
#[command(name = "cpubomb", version, after_long_help = concat!("
Examples:
  cpubomb                      every usable CPU at 100% for 60s
  cpubomb -t 10m -w 4          4 workers for ten minutes
  cpubomb --load 30 -t 1h      each worker busy 30% of the CPU time it gets, for an hour
  cpubomb --method float -t 30s --json > cpu.json
  cpubomb --dry-run            show the plan: workers, load, what the guest looks like
", common::help_footer!()), after_help = "See --help for examples, units, safety and exit codes.")]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    /// What each operation computes
    #[arg(short, long, value_enum, default_value_t = Method::Mixed, help_heading = "Stress")]
    pub method: Method,

    /// Percent of the CPU time each worker gets that it keeps busy (1-100)
    #[arg(short, long, value_name = "P", default_value_t = 100,
          value_parser = clap::value_parser!(u8).range(1..=100), help_heading = "Stress")]
    pub load: u8,
}

/// The plan: how many workers, what they compute, how busy they keep.
#[derive(Debug, Clone, Serialize)]
pub struct CpuBomb {
    #[serde(skip)]
    pub workers: usize,
    #[serde(serialize_with = "common::params::as_value_name")]
    pub method: Method,
    #[serde(rename = "load_pct")]
    pub load: u8,
    usable_cpus: usize,
    #[serde(skip)]
    counters: Counters,
}

common::metrics! {
    /// The metrics, each with its handle (`ops`: multiply-divide-remainder operations).
    struct Counters {
        /// Each worker's own CPU clock (reported as `worker_cpu_s`; `totals.cpu_s` is the
        /// whole run's, from rusage).
        cpu: total("worker_cpu_ns", Nanos),
    }
}

impl common::Command for Cli {
    type Stressor = CpuBomb;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn plan(&self, host: &Host) -> common::Result<CpuBomb> {
        Ok(CpuBomb {
            workers: self.common.workers.unwrap_or(host.cpus.usable),
            method: self.method,
            load: self.load,
            usable_cpus: host.cpus.usable,
            counters: Counters::default(),
        })
    }
}

/// Operations per batch between two looks at the stop flag (tens of microseconds).
const BATCH: u64 = 1024;

struct Operands {
    x: u64,
    y: u64,
    a: f64,
    c: f64,
}

impl Operands {
    fn new(seed: u64) -> Self {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        Operands {
            x: rng.random(),
            y: rng.random::<u64>() | 1,
            a: rng.random_range(1.0..100.0),
            c: rng.random_range(2.5..7.5),
        }
    }

    #[inline(never)]
    fn int(&mut self, n: u64) {
        let (mut x, mut y) = (self.x, self.y);
        for _ in 0..n {
            x = x.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(y);
            let d = (y >> 7) | 3;
            let q = x / d;
            let r = x % (d ^ 0x55);
            y = y.rotate_left(13) ^ q ^ r;
        }
        self.x = std::hint::black_box(x);
        self.y = std::hint::black_box(y);
    }

    #[inline(never)]
    fn float(&mut self, n: u64) {
        let (mut a, c) = (self.a, self.c);
        for _ in 0..n {
            // Stays within [1, 20): no overflow, no denormals.
            let m = a * 1.000_173 + 0.25;
            let q = m / c;
            let r = m % c;
            a = r + q * 0.5 + 1.0;
        }
        self.a = std::hint::black_box(a);
    }

    fn run(&mut self, method: Method, n: u64) {
        match method {
            Method::Int => self.int(n),
            Method::Float => self.float(n),
            Method::Mixed => {
                self.int(n / 2);
                self.float(n - n / 2);
            }
        }
    }
}

impl CpuBomb {
    /// Full load: work, count, and publish the CPU clock every few hundred batches.
    fn full(&self, w: &mut Worker, ops: &mut Operands) {
        let mut n = 0u32;
        while w.running() {
            ops.run(self.method, BATCH);
            w.add(MetricId::OPS, BATCH);
            n = n.wrapping_add(1);
            if n.is_multiple_of(256) {
                w.set(self.counters.cpu, common::time::process_cpu_ns());
            }
        }
    }

    /// Duty cycle on the CPU clock: keep this process's CPU time at `load`% of the wall time
    /// since it started. Work while behind; once ahead by a couple of milliseconds, sleep
    /// until the wall clock catches up. A long stretch without CPU (steal, a busy host) is
    /// forgiven beyond 100 ms of CPU, so the worker does not burst afterwards.
    fn duty(&self, w: &mut Worker, ops: &mut Operands) {
        const MIN_SLEEP_NS: f64 = 2e6;
        const MAX_OWED_NS: f64 = 100e6;
        let p = f64::from(self.load) / 100.0;
        let c0 = common::time::process_cpu_ns();
        let mut t0 = common::time::mono_ns() as f64;
        while w.running() {
            ops.run(self.method, BATCH / 4);
            w.add(MetricId::OPS, BATCH / 4);
            let cpu_abs = common::time::process_cpu_ns();
            w.set(self.counters.cpu, cpu_abs);
            let cpu = (cpu_abs - c0) as f64;
            let wall = common::time::mono_ns() as f64 - t0;
            let owed = p * wall - cpu;
            if owed > MAX_OWED_NS {
                t0 += (owed - MAX_OWED_NS) / p;
            }
            let ahead = cpu / p - wall;
            if ahead >= MIN_SLEEP_NS {
                w.sleep(std::time::Duration::from_nanos(ahead as u64));
            }
        }
    }
}

impl Stressor for CpuBomb {
    const NAME: &'static str = "cpubomb";

    fn metrics(&self) -> &Metrics {
        &self.counters.list
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn work(&self, w: &mut Worker) -> common::Result<()> {
        let mut ops = Operands::new(w.seed);
        if self.load == 100 {
            self.full(w, &mut ops);
        } else {
            self.duty(w, &mut ops);
        }
        w.set(self.counters.cpu, common::time::process_cpu_ns());
        Ok(())
    }

    fn finish(&self, run: &RunData) -> Findings {
        let mut f = Findings::default();
        let mut loads = Vec::with_capacity(run.slots.len());
        for slot in &run.slots {
            let pct = 100.0 * run.per_s(slot.counter(self.counters.cpu) as f64 / 1e9);
            f.per_worker
                .push(vec![common::Finding::new("load_pct", Found::Percent(pct))]);
            loads.push(pct);
        }
        let avg = loads.iter().sum::<f64>() / loads.len().max(1) as f64;
        f.detail(
            "method",
            Found::Text(common::params::value_name(&self.method)),
        )
        .detail("target_load_pct", Found::Count(self.load.into()))
        .detail("load_pct", Found::Percent(avg));
        if let Some(ready) = run.workers.ready_s {
            let ms = (ready * 1e4).round() / 10.0;
            f.detail("ready_ms", Found::Number(ms, "ms"));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_stay_finite_and_bounded() {
        let mut o = Operands::new(7);
        o.run(Method::Mixed, 1_000_000);
        assert!(o.a.is_finite() && o.a >= 1.0 && o.a < 20.0, "{}", o.a);
    }

    #[test]
    fn same_seed_same_work() {
        let (mut a, mut b) = (Operands::new(42), Operands::new(42));
        a.run(Method::Int, 5000);
        b.run(Method::Int, 5000);
        assert_eq!((a.x, a.y), (b.x, b.y));
    }
}
