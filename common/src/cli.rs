//! The flags every binary shares, with the same names and meaning everywhere.
//!
//! Each stressor's clap `Parser` flattens [`CommonArgs`] next to its own flags, and ends its
//! `--help` with its examples followed by [`help_footer!`], so `--help` alone tells a person
//! who just copied one binary into a guest everything they need.

use std::path::PathBuf;

use clap::Args;

use crate::units::{parse_duration, RunFor};

/// Flags shared by every misbehave binary.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// How long to stress: 30, 30s, 500ms, 5m, 1h30m; no deadline only if spelled `forever`
    #[arg(short = 't', long = "duration", value_name = "DUR", default_value = "60s",
          value_parser = parse_duration, help_heading = "Run")]
    pub duration: RunFor,

    /// Worker processes [default: depends on the stressor, see the plan with --dry-run]
    #[arg(short = 'w', long, value_name = "N", value_parser = parse_workers, help_heading = "Run")]
    pub workers: Option<usize>,

    /// Seed for every random choice; the same seed repeats the same run
    #[arg(long, value_name = "N", help_heading = "Run")]
    pub seed: Option<u64>,

    /// Resolve every size, cap and count, print the plan, stress nothing
    #[arg(long, help_heading = "Run")]
    pub dry_run: bool,

    /// Run even where no VM, container or zone is detected (on bare metal)
    #[arg(long, help_heading = "Safety")]
    pub allow_host: bool,

    /// Print the JSON report on stdout
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    /// Also write the JSON report to PATH (atomically: a reader never sees half of it)
    #[arg(short = 'o', long, value_name = "PATH", help_heading = "Output")]
    pub output: Option<PathBuf>,

    /// No live status line and no summary on stderr (errors are still printed)
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,
}

/// The most workers any binary starts: each is a process with a slot of shared counters.
pub const MAX_WORKERS: usize = 4096;

fn parse_workers(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| "expected a whole number of workers, like 4".to_string())?;
    if n == 0 || n > MAX_WORKERS {
        return Err(format!("must be from 1 to {MAX_WORKERS}"));
    }
    Ok(n)
}

/// The part of `--help` that is the same in every binary: safety model, units, exit codes.
/// Put it after the stressor's own examples: `after_long_help = concat!(EXAMPLES, help_footer!())`.
#[macro_export]
macro_rules! help_footer {
    () => {
        "
Safety:
  Runs only inside a VM, container or illumos zone unless --allow-host is given (it says
  what it detected). Every run has a deadline (--duration, default 60s). Ctrl-C, SIGTERM or
  SIGHUP stop it; teardown kills every process of the run and removes every file it made.
  Workers die with the supervisor, even when it is killed with SIGKILL.

Units:
  sizes      4096, 64k, 1.5G, 2GiB (powers of 1024), or 80% of the base the flag names
  durations  30 (seconds), 30s, 500ms, 5m, 1h30m, or forever
  rates      100M/s, 64k/s (bytes), 1Gbit/s (bits, decimal), 10k/s (counts)

Output:
  A summary goes to stderr, with a live status line when stderr is a terminal (no colour
  with NO_COLOR). --json prints the report (schema misbehave.report/1) on stdout; -o writes
  it to a file. The report is written also when the run is interrupted.

Exit codes:
  0 ran to the end   1 failed while running   2 bad input or refused (nothing started)
  129/130/143 stopped by SIGHUP/SIGINT/SIGTERM (the report is still written)
"
    };
}
