//! `compare`: the isolation paper's degradation table from probe reports.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use misbehave_host::{compare, read_report, Results};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Md,
    Csv,
    Json,
    Svg,
}

/// The isolation paper's table from probe reports: per stress test and kind of work, the
/// percent degradation of the well-behaved guests (mean and worst) and of the misbehaving
/// one, against a baseline run; DNR where a guest reported nothing or its run failed.
#[derive(Debug, Parser)]
#[command(
    name = "compare",
    version,
    after_long_help = "
Input: a results directory laid out as RESULTS/<set>/<host>/*.json, one set for the baseline
(no stress; named `baseline` unless --baseline says) and one per stress test, named after the
test (memory, fork, cpu, disk, net-send, net-recv, or the bomb's name: membomb, forkbomb,
cpubomb, diskthrash, netflood-send, netflood-sink; other names are listed after the paper's
rows). In each host's directory, the probe report is found by its `tool` field (a bomb's
report beside it is ignored); with several, the newest counts. The misbehaving guest is
--bad HOST, or the host named in RESULTS/<set>/BAD (one line; it wins for its set). Or name
reports one by one: --report SET/HOST=PATH.

Degradation, per guest against its own baseline, in percent:
  within-SLO share  (base - test) / base
  p99 latency       (test - base) / base
Good = mean over the well-behaved guests that reported (and the worst of them), Bad = the
misbehaving guest. DNR: no report in that set, a failed run, or no baseline for the guest.

Examples:
  compare results --bad web4                     Markdown on stdout
  compare results --bad web4 --format svg -o degradation.svg
  compare results --bad web4 --out-dir report    degradation.{md,csv,json,svg}
  compare --report baseline/web1=b1.json --report cpu/web1=c1.json --bad web2

Exit codes: 0 table written; 1 an output could not be written; 2 bad input."
)]
struct Cli {
    /// Results directories (RESULTS/<set>/<host>/*.json)
    #[arg(value_name = "RESULTS")]
    dirs: Vec<PathBuf>,

    /// A report named on the command line: SET/HOST=PATH (repeatable)
    #[arg(long, value_name = "SET/HOST=PATH")]
    report: Vec<String>,

    /// The misbehaving guest (unless a set's BAD file names it)
    #[arg(long, value_name = "HOST")]
    bad: Option<String>,

    /// The set that is the baseline
    #[arg(long, value_name = "SET", default_value = "baseline")]
    baseline: String,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Md)]
    format: Format,

    /// Write the output to PATH instead of stdout
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,

    /// Write all four formats into DIR (degradation.md, .csv, .json, .svg)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "format"])]
    out_dir: Option<PathBuf>,
}

fn fail(code: u8, msg: &str) -> ExitCode {
    eprintln!("compare: error: {msg}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if cli.dirs.is_empty() && cli.report.is_empty() {
        return fail(
            2,
            "name a results directory or --report SET/HOST=PATH (see --help)",
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
        match read_report(std::path::Path::new(path)) {
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
        eprintln!("compare: {n}");
    }
    let render = |f: Format| match f {
        Format::Md => table.markdown(),
        Format::Csv => table.csv(),
        Format::Json => {
            serde_json::to_string_pretty(&table.json()).expect("JSON always serialises") + "\n"
        }
        Format::Svg => table.svg(),
    };
    if let Some(dir) = &cli.out_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return fail(1, &format!("{}: {e}", dir.display()));
        }
        for (f, ext) in [
            (Format::Md, "md"),
            (Format::Csv, "csv"),
            (Format::Json, "json"),
            (Format::Svg, "svg"),
        ] {
            let p = dir.join(format!("degradation.{ext}"));
            if let Err(e) = std::fs::write(&p, render(f)) {
                return fail(1, &format!("{}: {e}", p.display()));
            }
        }
        return ExitCode::SUCCESS;
    }
    let out = render(cli.format);
    match &cli.output {
        Some(p) => {
            if let Err(e) = std::fs::write(p, out) {
                return fail(1, &format!("{}: {e}", p.display()));
            }
        }
        None => print!("{out}"),
    }
    ExitCode::SUCCESS
}
