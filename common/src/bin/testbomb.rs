//! `testbomb`: a tiny stressor that exists only to test the framework itself (deadline,
//! signals, teardown, respawn, failures, the interlock, `-o`, latency histograms, rate
//! caps, the single-thread rule). It is never shipped: `scripts/dist` builds only the
//! crates under `stressors/`. Its workers cost almost nothing unless asked to spin.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde::Serialize;

use common::units::{parse_plain_duration, parse_rate, RateKind};
use common::{
    CommonArgs, ExitAction, Findings, Found, Host, Metric, RateCap, RunData, Stressor, Unit,
    Worker, WorkerEnd, OPS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Work {
    /// count operations as fast as possible
    Spin,
    /// one operation every 10 ms
    Sleep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnDeath {
    Keep,
    Respawn,
    End,
}

fn parse_count_rate(s: &str) -> Result<f64, String> {
    parse_rate(s, RateKind::Count)
}

/// Test-only stressor for the framework's own tests (never shipped).
#[derive(Debug, Parser)]
#[command(name = "testbomb", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    /// What each worker does
    #[arg(long, value_enum, default_value_t = Work::Sleep)]
    work: Work,

    /// First-generation workers kill themselves (SIGKILL) after this long
    #[arg(long, value_name = "DUR", value_parser = parse_plain_duration)]
    die_after: Option<Duration>,

    /// What the supervisor does when a worker dies early
    #[arg(long, value_enum, default_value_t = OnDeath::Keep)]
    on_death: OnDeath,

    /// Operations per second over all workers (the rate cap)
    #[arg(long, value_name = "RATE", value_parser = parse_count_rate)]
    rate: Option<f64>,

    /// Record a latency per operation: (i mod 100 + 1) microseconds for the i-th
    #[arg(long)]
    latency_ramp: bool,

    /// Break the rule: start a thread while planning (the supervisor must refuse)
    #[arg(long)]
    thread: bool,
}

#[derive(Debug, Serialize)]
struct TestBomb {
    #[serde(skip)]
    workers: usize,
    #[serde(skip)]
    work: Work,
    #[serde(skip)]
    die_after: Option<Duration>,
    #[serde(skip)]
    on_death: OnDeath,
    #[serde(serialize_with = "per_s")]
    rate: Option<RateCap>,
    #[serde(skip)]
    latency_ramp: bool,
}

fn per_s<S: serde::Serializer>(r: &Option<RateCap>, s: S) -> Result<S::Ok, S::Error> {
    r.map(|r| r.per_s).serialize(s)
}

static METRICS: [Metric; 2] = [OPS, Metric::gauge("level", Unit::Count)];
static LATENCIES: [&str; 1] = ["op"];

impl common::Command for Cli {
    type Stressor = TestBomb;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn plan(&self, _host: &Host) -> common::Result<TestBomb> {
        if self.thread {
            std::thread::spawn(|| std::thread::sleep(Duration::from_secs(3600)));
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(TestBomb {
            workers: self.common.workers.unwrap_or(2),
            work: self.work,
            die_after: self.die_after,
            on_death: self.on_death,
            rate: self.rate.map(|r| RateCap::new(0, r)),
            latency_ramp: self.latency_ramp,
        })
    }
}

impl Stressor for TestBomb {
    const NAME: &'static str = "testbomb";

    fn metrics(&self) -> &'static [Metric] {
        &METRICS
    }

    fn latencies(&self) -> &'static [&'static str] {
        if self.latency_ramp {
            &LATENCIES
        } else {
            &[]
        }
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn work(&self, w: &mut Worker) -> common::Result<()> {
        let t0 = Instant::now();
        let hist = self.latency_ramp.then(|| w.histogram(0));
        let batch = self.rate.map_or(1, |r| r.batch(self.workers, 1 << 20));
        let mut i = 0u64;
        w.set(1, 1);
        while w.running() {
            if w.generation == 0 && self.die_after.is_some_and(|d| t0.elapsed() >= d) {
                // SAFETY: raising a signal at ourselves.
                unsafe { libc::raise(libc::SIGKILL) };
            }
            let n = match &self.rate {
                Some(cap) => {
                    if !w.pace(cap, batch) {
                        break;
                    }
                    batch
                }
                None => 1,
            };
            if let Some(h) = &hist {
                for k in 0..n {
                    h.record(((i + k) % 100 + 1) * 1000);
                }
            }
            i += n;
            w.add(0, n);
            if self.work == Work::Sleep && self.rate.is_none() {
                w.sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }

    fn on_exit(&self, end: &WorkerEnd) -> ExitAction {
        match self.on_death {
            OnDeath::Keep => ExitAction::Keep,
            OnDeath::Respawn => ExitAction::Respawn,
            OnDeath::End => {
                ExitAction::EndRun(format!("worker {} died (--on-death end)", end.index))
            }
        }
    }

    fn finish(&self, run: &RunData) -> Findings {
        let mut f = Findings::default();
        let per_s = run.per_s(run.totals[0] as f64);
        f.detail(
            "ops_per_s",
            Found::Number((per_s * 10.0).round() / 10.0, "/s"),
        );
        f
    }
}

fn main() -> ExitCode {
    common::main::<Cli>()
}
