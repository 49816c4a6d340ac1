//! `common`: the one limits-and-safety crate every misbehave binary shares.
//!
//! A misbehave binary is a stressor (its flags, its plan, its worker loop, its findings)
//! plugged into this crate's life cycle. `main` is one line: `common::main::<Cli>()`, which
//!
//! 1. parses the shared flags ([`CommonArgs`]) and the stressor's own, refusing bad input
//!    with one line and exit code 2;
//! 2. probes the host ([`host::Host`]): usable CPUs, memory and its cgroup limit, process
//!    limits, and whether this is a VM, a container or a zone;
//! 3. has the stressor resolve its plan against those facts ([`Command::plan`]);
//! 4. prints the plan and stops (`--dry-run`), or refuses bare metal without `--allow-host`;
//! 5. runs the workers under the [`supervisor`] until the deadline or a signal;
//! 6. reports: JSON ([`report`]) on stdout and/or a file, a summary on stderr, an exit
//!    code that says how it ended.
//!
//! A stressor author reads one file: [`stressor`] (the two traits and the rules).
//!
//! # Layers
//!
//! Each module imports only modules of its own layer or below; `tests/layers.rs` checks
//! this table against every `use crate::` in the sources, so a circle cannot come back.
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 0 | `error`, `units`, `time`, `params` | errors, units, clocks, a plan's serialisation helpers: no dependencies |
//! | 1 | `sys` | one function per platform difference the binaries share (Linux, illumos) |
//! | 2 | `host`, `cli`, `hist`, `rate`, `shm`, `signals`, `cgroup` | host facts, shared flags, latency histograms, rate caps, shared memory, signal pipe, run cgroups |
//! | 3 | `data` | plain data of a run: metrics, run data, typed findings |
//! | 4 | `worker` | what a worker process sees |
//! | 5 | `stressor` | the two traits a stressor implements |
//! | 6 | `report`, `supervisor` | the report made of the data; the run loop (reports progress through a trait) |
//! | 7 | `output` | the terminal: status line (implements the progress trait), summary |
//! | 8 | `program` | the program: parse, plan, run, report |
//! | 9 | `testkit` | test helpers (feature `testkit`) |
//!
//! Platform differences that two or more binaries share live in [`sys`], one function
//! each; nothing else in `common` has a `cfg(target_os)`. A difference that only one
//! stressor has lives in that stressor's own `sys` module (`stressors/<name>/src/sys.rs`),
//! so its code and dependencies reach that binary alone.

pub mod cgroup;
pub mod cli;
pub mod data;
pub mod error;
pub mod hist;
pub mod host;
pub mod output;
pub mod params;
pub mod program;
pub mod rate;
pub mod report;
pub mod shm;
pub mod signals;
pub mod stressor;
pub mod supervisor;
pub mod sys;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
pub mod units;
pub mod worker;

pub use cli::CommonArgs;
pub use data::{
    EndStatus, Finding, Findings, Found, Kind, Metric, MetricId, Metrics, Outcome, RunData, Unit,
    WorkerEnd, OPS,
};
pub use error::{Context, Error, Result};
pub use host::{Host, Limits, ProcessLimit};
pub use program::main;
pub use rate::RateCap;
pub use stressor::{Command, ExitAction, Stressor};
pub use worker::Worker;
