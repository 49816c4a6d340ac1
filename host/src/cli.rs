//! The `misbehave` command line: `misbehave compare` and `misbehave summary`. The clap
//! definition lives here, not in main.rs, so that `scripts/gen-docs` makes its man pages
//! and completions as it does the stressors'.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::platforms::Platforms;
use crate::{compare, read_report, summary, Results};

/// Host-side tools of the misbehave suite (for the operator's machine or the Ansible
/// controller; never copied into guests).
#[derive(Debug, Parser)]
#[command(
    name = "misbehave",
    version,
    disable_help_subcommand = true,
    after_long_help = "
The stressors (cpubomb, forkbomb, membomb, diskthrash, netflood, probe) run in the guests and
write JSON reports (schema misbehave.report/1); this command reads them:

  misbehave compare RESULTS --bad HOST   the isolation paper's degradation table
  misbehave summary RESULTS              every report as one table, stressor x host

`misbehave COMMAND --help` tells each in full.

Exit codes: 0 done; 1 an output could not be written; 2 bad input."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Compare(CompareArgs),
    Summary(SummaryArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Md,
    Csv,
    Json,
    Svg,
}

/// The isolation paper's degradation table from probe reports
///
/// Per stress test and kind of work, the percent degradation of the well-behaved guests
/// (mean and worst) and of the misbehaving one, against a baseline run; DNR where a guest
/// reported nothing or its run failed.
#[derive(Debug, Args)]
#[command(after_long_help = "
Input: a results directory laid out as RESULTS/<set>/<host>/*.json, one set for the baseline
(no stress; named `baseline` unless --baseline says) and one per stress test, named after the
test (memory, fork, cpu, disk, net-send, net-recv, or the bomb's name: membomb, forkbomb,
cpubomb, diskthrash, netflood-send, netflood-sink; other names are listed after the paper's
rows). In each host's directory, the probe report is found by its `tool` field (a bomb's
report beside it is ignored); with several, the newest counts. The misbehaving guest is
--bad HOST, or the host named in RESULTS/<set>/BAD (one line; it wins for its set). Or name
reports one by one: --report SET/HOST=PATH. A set named S.r2, S.r3, ... is a repetition of
S: each cell is then the mean over the repetitions with [min, max], and with the baseline
repeated, a cell within the baseline's own noise is marked n.s. (not significant).

Across platforms: --platform NAME=RESULTS, once per platform (a VM, a container, a sandbox:
the same experiment on each), gives one table with a column group per platform, each
against its own baseline.

Degradation, per guest against its own baseline, in percent:
  within-SLO share  (base - test) / base
  p99 latency       (test - base) / base
Good = mean over the well-behaved guests that reported (and the worst of them), Bad = the
misbehaving guest. DNR: no report in that set, a failed run, or no baseline for the guest.

Examples:
  misbehave compare results --bad web4                     Markdown on stdout
  misbehave compare results --bad web4 --format svg -o degradation.svg
  misbehave compare results --bad web4 --out-dir report    degradation.{md,csv,json,svg}
  misbehave compare --report baseline/web1=b1.json --report cpu/web1=c1.json --bad web2
  misbehave compare --platform kvm=vm/reports --platform docker=ct/reports --out-dir all

Exit codes: 0 table written; 1 an output could not be written; 2 bad input.")]
pub struct CompareArgs {
    /// Results directories (RESULTS/<set>/<host>/*.json)
    #[arg(value_name = "RESULTS")]
    pub dirs: Vec<PathBuf>,

    /// A report named on the command line: SET/HOST=PATH (repeatable)
    #[arg(long, value_name = "SET/HOST=PATH")]
    pub report: Vec<String>,

    /// One platform's results directory, for the table across platforms: NAME=RESULTS
    /// (repeatable, in the order of the columns)
    #[arg(long, value_name = "NAME=RESULTS", conflicts_with_all = ["dirs", "report"])]
    pub platform: Vec<String>,

    /// The misbehaving guest (unless a set's BAD file names it)
    #[arg(long, value_name = "HOST")]
    pub bad: Option<String>,

    /// The set that is the baseline
    #[arg(long, value_name = "SET", default_value = "baseline")]
    pub baseline: String,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,

    /// Write the output to PATH instead of stdout
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Write all four formats into DIR (degradation.md, .csv, .json, .svg; with --platform,
    /// platforms.md, .csv, .json, .svg)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "format"])]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    #[value(alias = "markdown")]
    Md,
    Csv,
}

/// Every report of a fleet run as one table, stressor x host
///
/// Per report: outcome, exit code, seconds of stress, the main rate, peaks and errors.
#[derive(Debug, Args)]
#[command(after_long_help = "
Input: the results directory the misbehave.fleet roles fetch into, laid out as
RESULTS/<host>/<stressor>-<stamp>.json. One row per report, sorted by stressor, host and run.
The main rate is the report's largest byte rate (a rate named *bytes), else its operations
per second. A file that is not a report gets a row saying so.

Examples:
  misbehave summary results                     Markdown on stdout
  misbehave summary results --format csv -o results.csv

Exit codes: 0 table written; 1 the output could not be written; 2 bad input (no such
directory, no report in it).")]
pub struct SummaryArgs {
    /// The results directory (RESULTS/<host>/<stressor>-<stamp>.json)
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value_t = TableFormat::Md)]
    pub format: TableFormat,

    /// Write the table to PATH instead of stdout
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Compare(a) => run_compare(&a),
        Command::Summary(a) => run_summary(&a),
    }
}

fn fail(cmd: &str, code: u8, msg: &str) -> ExitCode {
    eprintln!("misbehave {cmd}: error: {msg}");
    ExitCode::from(code)
}

/// Writes `text` to `path`, or to stdout.
fn emit(cmd: &str, path: Option<&Path>, text: &str) -> ExitCode {
    match path {
        Some(p) => match std::fs::write(p, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(cmd, 1, &format!("{}: {e}", p.display())),
        },
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}

fn run_summary(a: &SummaryArgs) -> ExitCode {
    let fail = |code, msg: &str| fail("summary", code, msg);
    if !a.results.is_dir() {
        return fail(2, &format!("{}: not a directory", a.results.display()));
    }
    let rows = match summary::collect(&a.results) {
        Ok(r) => r,
        Err(e) => return fail(2, &e),
    };
    if rows.is_empty() {
        return fail(
            2,
            &format!("no reports under {}/<host>/", a.results.display()),
        );
    }
    let text = match a.format {
        TableFormat::Md => summary::markdown(&rows),
        TableFormat::Csv => summary::csv(&rows),
    };
    emit("summary", a.output.as_deref(), &text)
}

/// Writes every format into `dir` as `stem.{md,csv,json,svg}`.
fn write_all(dir: &Path, stem: &str, render: impl Fn(Format) -> String) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail("compare", 1, &format!("{}: {e}", dir.display()));
    }
    for (f, ext) in [
        (Format::Md, "md"),
        (Format::Csv, "csv"),
        (Format::Json, "json"),
        (Format::Svg, "svg"),
    ] {
        let p = dir.join(format!("{stem}.{ext}"));
        if let Err(e) = std::fs::write(&p, render(f)) {
            return fail("compare", 1, &format!("{}: {e}", p.display()));
        }
    }
    ExitCode::SUCCESS
}

fn run_platforms(cli: &CompareArgs) -> ExitCode {
    let fail = |code, msg: &str| fail("compare", code, msg);
    let mut tables = Vec::new();
    for p in &cli.platform {
        let Some((name, dir)) = p
            .split_once('=')
            .filter(|(n, d)| !n.is_empty() && !d.is_empty())
        else {
            return fail(2, &format!("--platform {p}: expected NAME=RESULTS"));
        };
        if tables.iter().any(|(n, _)| n == name) {
            return fail(2, &format!("--platform {p}: {name} is named twice"));
        }
        let dir = Path::new(dir);
        if !dir.is_dir() {
            return fail(
                2,
                &format!("--platform {p}: {}: not a directory", dir.display()),
            );
        }
        let mut res = Results::default();
        if let Err(e) = res.read_dir(dir) {
            return fail(2, &format!("--platform {p}: {e}"));
        }
        match compare(&res, &cli.baseline, cli.bad.as_deref()) {
            Ok(t) => tables.push((name.to_string(), t)),
            Err(e) => return fail(2, &format!("--platform {p}: {e}")),
        }
    }
    let all = Platforms { tables };
    let render = |f: Format| match f {
        Format::Md => all.markdown(),
        Format::Csv => all.csv(),
        Format::Json => {
            serde_json::to_string_pretty(&all.json()).expect("JSON always serialises") + "\n"
        }
        Format::Svg => all.svg(),
    };
    match &cli.out_dir {
        Some(dir) => write_all(dir, "platforms", render),
        None => emit("compare", cli.output.as_deref(), &render(cli.format)),
    }
}

fn run_compare(cli: &CompareArgs) -> ExitCode {
    let fail = |code, msg: &str| fail("compare", code, msg);
    if !cli.platform.is_empty() {
        return run_platforms(cli);
    }
    if cli.dirs.is_empty() && cli.report.is_empty() {
        return fail(
            2,
            "name a results directory, --report SET/HOST=PATH or --platform NAME=RESULTS (see --help)",
        );
    }
    let mut res = Results::default();
    for d in &cli.dirs {
        if !d.is_dir() {
            return fail(2, &format!("{}: not a directory", d.display()));
        }
        if let Err(e) = res.read_dir(d) {
            return fail(2, &e);
        }
    }
    for r in &cli.report {
        let Some((sh, path)) = r.split_once('=') else {
            return fail(2, &format!("--report {r}: expected SET/HOST=PATH"));
        };
        let Some((set, host)) = sh
            .split_once('/')
            .filter(|(s, h)| !s.is_empty() && !h.is_empty())
        else {
            return fail(2, &format!("--report {r}: expected SET/HOST=PATH"));
        };
        res.touch(set);
        res.hosts.insert(host.to_string());
        match read_report(Path::new(path)) {
            Ok(Some(run)) => res.add(set, host, run),
            Ok(None) => return fail(2, &format!("--report {r}: not a probe report")),
            Err(e) => return fail(2, &format!("--report {r}: {e}")),
        }
    }
    let table = match compare(&res, &cli.baseline, cli.bad.as_deref()) {
        Ok(t) => t,
        Err(e) => return fail(2, &e),
    };
    for n in &table.notes {
        eprintln!("misbehave compare: {n}");
    }
    let render = |f: Format| match f {
        Format::Md => table.markdown(),
        Format::Csv => table.csv(),
        Format::Json => {
            serde_json::to_string_pretty(&table.json()).expect("JSON always serialises") + "\n"
        }
        Format::Svg => table.svg(),
    };
    match &cli.out_dir {
        Some(dir) => write_all(dir, "degradation", render),
        None => emit("compare", cli.output.as_deref(), &render(cli.format)),
    }
}
