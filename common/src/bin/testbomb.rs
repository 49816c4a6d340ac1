//! `testbomb`: the template a new stressor starts from, and the stressor the framework's
//! own tests drive (deadline, signals, teardown, respawn, failures, the interlock, `-o`,
//! latency histograms, rate caps, the single-thread rule). It is never shipped:
//! `scripts/dist` builds only the crates under `stressors/`. Its workers cost almost
//! nothing unless asked to spin.
//!
//! **Copy this file to start a new stressor** (`stressors/<name>/src/lib.rs`, with a
//! one-line `main.rs`; CONTRIBUTING.md lists the steps). It has every part, in order:
//!
//! 1. the flags: a clap `Cli` that flattens [`CommonArgs`], enums as clap `ValueEnum`s;
//! 2. the plan: one struct that the flags resolve into, whose `Serialize` is the run's
//!    effective parameters (`params.effective`, `--dry-run`);
//! 3. the metrics: a [`common::metrics!`] struct of typed handles;
//! 4. `Command::plan`: flags + host facts -> plan, refusing what cannot run (exit 2);
//! 5. `Stressor`: the worker loop and what the run found.
//!
//! Everything else (forking, deadline, signals, teardown, counters in shared memory, the
//! report and the summary) is `common`'s: `common/src/stressor.rs` is the whole API. The
//! flags marked *test knob* exist for the framework's tests; a real stressor has none.
//! The switches only the framework's tests need live here, not in a shipped binary:
//! `--fail`, `--plan-delay` and `MISBEHAVE_TEST_BARE_METAL` in the environment (the
//! interlock sees bare metal on a machine that is itself a guest).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde::Serialize;

use common::host::VirtKind;
use common::units::{parse_plain_duration, parse_rate, RateKind};
use common::{
    CommonArgs, ExitAction, Findings, Found, Host, MetricId, Metrics, RateCap, RunData, Stressor,
    Worker, WorkerEnd,
};

// 1. The flags. An enum flag is a clap `ValueEnum`: its doc comments are the `--help`
//    text of each value, and its names are the ones the plan and the report use
//    (`common::params::value_name`), so they are written once.

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
    /// The flags every binary shares (-t, -w, --seed, --dry-run, --json, -o, ...).
    #[command(flatten)]
    common: CommonArgs,

    /// What each worker does
    #[arg(long, value_enum, default_value_t = Work::Sleep)]
    work: Work,

    /// First-generation workers kill themselves (SIGKILL) after this long (test knob)
    #[arg(long, value_name = "DUR", value_parser = parse_plain_duration)]
    die_after: Option<Duration>,

    /// What the supervisor does when a worker dies early (test knob)
    #[arg(long, value_enum, default_value_t = OnDeath::Keep)]
    on_death: OnDeath,

    /// Operations per second over all workers (the rate cap)
    #[arg(long, value_name = "RATE", value_parser = parse_count_rate)]
    rate: Option<f64>,

    /// Record a latency per operation: (i mod 100 + 1) microseconds for the i-th (test knob)
    #[arg(long)]
    latency_ramp: bool,

    /// Break the rule: start a thread while planning (the supervisor must refuse; test knob)
    #[arg(long)]
    thread: bool,

    /// Every worker fails at once with an error (test knob)
    #[arg(long)]
    fail: bool,

    /// Take this long to plan: a window for signals before the run (test knob)
    #[arg(long, value_name = "DUR", value_parser = parse_plain_duration)]
    plan_delay: Option<Duration>,
}

// 2. The plan: every flag resolved (defaults, percentages, caps against the host) into
//    plain values the workers read. Its `Serialize` is the effective parameters, so what
//    the report says is what the run used: a field appears under its name, renamed where
//    the report wants a unit in the key (`#[serde(rename = "size_bytes")]`); what is not a
//    parameter is `#[serde(skip)]`: `workers` (common reports it), handles, test knobs.

#[derive(Debug, Serialize)]
struct TestBomb {
    #[serde(skip)]
    workers: usize,
    #[serde(serialize_with = "common::params::as_value_name")]
    work: Work,
    #[serde(skip)]
    die_after: Option<Duration>,
    #[serde(skip)]
    on_death: OnDeath,
    /// The rate cap, reported as operations per second (null: none).
    #[serde(serialize_with = "per_s")]
    rate: Option<RateCap>,
    #[serde(skip)]
    latency_ramp: bool,
    #[serde(skip)]
    fail: bool,
    /// The metrics and their handles: built with the plan, lent to `common`.
    #[serde(skip)]
    counters: Counters,
}

fn per_s<S: serde::Serializer>(r: &Option<RateCap>, s: S) -> Result<S::Ok, S::Error> {
    r.map(|r| r.per_s).serialize(s)
}

// 3. The metrics: `ops` (the stressor's unit of work) comes first by itself; each other
//    counter is declared once, and its handle is what `w.add`, `w.set` and
//    `RunData::total` take. A `total` only grows (it gets a rate in the report), a `gauge`
//    goes up and down (it gets a peak).
common::metrics! {
    /// The metrics, each with its handle (`ops`: operations counted by the loop).
    struct Counters {
        /// 1 while a worker is in its loop: a gauge the tests read back.
        level: gauge("level", Count),
    }
}

/// The latency histogram's name (with `--latency-ramp`): the report's `latency.op`.
static LATENCIES: [&str; 1] = ["op"];

// 4. Planning: in the supervisor, before anything starts. A usage error here
//    (`common::Error::usage`) exits 2 with nothing started. No thread may be started here
//    (`--thread` breaks that rule on purpose, for the test that the supervisor refuses).

impl common::Command for Cli {
    type Stressor = TestBomb;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn plan(&self, _host: &Host) -> common::Result<TestBomb> {
        if let Some(d) = self.plan_delay {
            std::thread::sleep(d);
        }
        if self.thread {
            std::thread::spawn(|| std::thread::sleep(Duration::from_secs(3600)));
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(TestBomb {
            counters: Counters::default(),
            workers: self.common.workers.unwrap_or(2),
            work: self.work,
            die_after: self.die_after,
            on_death: self.on_death,
            rate: self.rate.map(|r| RateCap::new(0, r)),
            latency_ramp: self.latency_ramp,
            fail: self.fail,
        })
    }
}

// 5. The stressor: `work` runs in each worker process until `w.running()` says stop (it
//    must look often: teardown waits 250 ms before SIGKILL); counters go through the
//    handles; `on_exit` and `finish` are optional (see `common/src/stressor.rs`).

impl Stressor for TestBomb {
    const NAME: &'static str = "testbomb";

    fn metrics(&self) -> &Metrics {
        &self.counters.list
    }

    fn latencies(&self) -> &[&'static str] {
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
        if self.fail {
            return Err(common::Error::runtime("--fail is set"));
        }
        let t0 = Instant::now();
        let hist = self.latency_ramp.then(|| w.histogram(0));
        // Rate-capped work takes its tokens in batches: one shared word per batch, not per
        // operation.
        let batch = self.rate.map_or(1, |r| r.batch(self.workers, 1 << 20));
        let mut i = 0u64;
        w.set(self.counters.level, 1);
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
            w.add(MetricId::OPS, n);
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

    /// What the run found beyond its metrics: typed values the report and the summary show.
    fn finish(&self, run: &RunData) -> Findings {
        let mut f = Findings::default();
        let per_s = run.per_s(run.total(MetricId::OPS) as f64);
        f.detail(
            "ops_per_s",
            Found::Number((per_s * 10.0).round() / 10.0, "/s"),
        );
        f
    }
}

/// The host as probed, or bare metal when `MISBEHAVE_TEST_BARE_METAL` is set.
fn probe() -> Host {
    let mut host = common::host::probe();
    if std::env::var_os("MISBEHAVE_TEST_BARE_METAL").is_some() {
        let v = &mut host.virtualization;
        v.kind = VirtKind::None;
        v.evidence.push("MISBEHAVE_TEST_BARE_METAL is set".into());
    }
    host
}

/// The whole program: `common` parses, plans, runs and reports (a real stressor's `main`
/// is `common::main::<Cli>()`; this one swaps the host probe for the bare-metal switch).
fn main() -> ExitCode {
    common::program::main_on::<Cli>(probe)
}
