//! The program every stressor binary is: parse, probe, plan, (dry run | refuse | run),
//! report. `common::main::<Cli>()` is a binary's whole `main`.

use std::process::ExitCode;

use clap::ArgMatches;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::cli::CommonArgs;
use crate::data::Findings;
use crate::error::{self, Error, Result};
use crate::host::{self, Host};
use crate::output;
use crate::report::{self, Effective, Parts, Plan, Requested};
use crate::signals;
use crate::stressor::{Command, Stressor};
use crate::supervisor;
use crate::units;

/// The whole program of a stressor binary: `fn main() -> ExitCode { common::main::<Cli>() }`.
pub fn main<C: Command>() -> ExitCode {
    main_on::<C>(host::probe)
}

/// As [`main`], on the host `probe` describes: the test-only `testbomb` passes one that can
/// pretend bare metal, so no shipped binary carries that switch.
pub fn main_on<C: Command>(probe: fn() -> Host) -> ExitCode {
    let name = <C::Stressor as Stressor>::NAME;
    match run::<C>(probe) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let _ = std::io::Write::flush(&mut std::io::stdout());
            match e.kind() {
                error::Kind::Usage => eprintln!("{name}: {e}"),
                error::Kind::Runtime => eprintln!("{name}: error: {e}"),
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Turns clap's verdict into ours: help and version on stdout with exit 0, any error as one
/// line on stderr with exit 2.
fn parse<C: Command>() -> Result<(C, ArgMatches), u8> {
    let cmd = C::command();
    let res = cmd
        .try_get_matches()
        .and_then(|m| C::from_arg_matches(&m).map(|c| (c, m)));
    res.map_err(|e| {
        use clap::error::ErrorKind::*;
        match e.kind() {
            DisplayHelp | DisplayVersion => {
                let _ = e.print();
                0
            }
            _ => {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or("invalid arguments");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                eprintln!("{}: {first} (see --help)", <C::Stressor as Stressor>::NAME);
                2
            }
        }
    })
}

/// The flags as given on the command line, by their long names, as raw text; a
/// subcommand (netflood's `send`) as `mode`, with its own flags.
fn requested(m: &ArgMatches) -> BTreeMap<String, Requested> {
    let mut out = BTreeMap::new();
    if let Some((name, sub)) = m.subcommand() {
        out.insert("mode".into(), Requested::Text(name.into()));
        out.extend(requested(sub));
    }
    for id in m.ids() {
        let id = id.as_str();
        // Argument groups are listed too: clap derive names them after their struct
        // (`CommonArgs`), flags after their snake_case fields.
        if id.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        if m.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let v = match m.get_raw(id) {
            Some(raw) => {
                let mut vals: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
                if vals.len() == 1 {
                    Requested::Text(vals.pop().unwrap_or_default())
                } else {
                    Requested::Texts(vals)
                }
            }
            None => Requested::Switch(true),
        };
        out.insert(id.replace('_', "-"), v);
    }
    out
}

fn effective<S: Stressor>(c: &CommonArgs, s: &S) -> Effective {
    Effective {
        duration: c.duration.to_string(),
        duration_s: c.duration.as_duration().map(|d| d.as_secs_f64()),
        workers: s.workers() as u64,
        seed: c.seed,
        own: match serde_json::to_value(s) {
            Ok(Value::Object(own)) => own,
            other => panic!(
                "{}: the plan must serialise to an object: {other:?}",
                S::NAME
            ),
        },
    }
}

fn run<C: Command>(probe: fn() -> Host) -> Result<u8> {
    supervisor::note_threads_at_start();
    signals::catch_early();
    let (cli, matches) = match parse::<C>() {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let common = cli.common().clone();
    let host = probe();
    let mut stressor = cli.plan(&host)?;
    let name = C::Stressor::NAME;
    let params = report::Params {
        requested: requested(&matches),
        effective: effective(&common, &stressor),
    };
    let virt = &host.virtualization;
    let allowed = virt.is_guest() || common.allow_host;
    if let Some(p) = &common.output {
        report::check_output_path(p)?;
    }

    if common.dry_run {
        print_plan(name, host, params, allowed, common.json);
        return Ok(signals::caught().map_or(0, |s| 128 + s as u8));
    }
    if !allowed {
        return Err(Error::usage(format!(
            "refusing to run: this looks like bare metal ({}); run it inside a VM, container or zone, or pass --allow-host",
            if virt.evidence.is_empty() { "no hypervisor, container or zone found".into() } else { virt.evidence.join("; ") }
        )));
    }

    let style = output::Style::detect();
    let metrics = stressor.metrics().to_vec();
    let prepared = stressor.prepare(&host);
    let run = prepared.and_then(|()| {
        let mut status = output::Status::new(name, style, common.quiet, &metrics);
        supervisor::supervise(&stressor, &common, &mut status)
    });
    // Findings first, while what `prepare` made is still there to be read; then clean up,
    // also after a failure.
    let findings: Findings = run.as_ref().map(|r| stressor.finish(r)).unwrap_or_default();
    stressor.cleanup();
    let mut run = run?;
    if let Some(why) = &findings.failed {
        run.fail(why);
    }

    let parts = Parts {
        metrics: &metrics,
        latencies: stressor.latencies(),
        run: &run,
        findings: &findings,
    };
    let report = report::make(name, host, params, parts);
    let json = report.to_json();
    let mut written = Ok(());
    if common.json {
        written = report::Export::export(&report::Stdout, &json);
    }
    if let Some(p) = &common.output {
        written = written.and(report::Export::export(&report::File(p), &json));
    }
    if !common.quiet {
        eprint!("{}", output::summary(&report, style));
    }
    written?;
    Ok(run.outcome.exit_code())
}

fn print_plan(name: &'static str, host: Host, params: report::Params, allowed: bool, json: bool) {
    if json {
        let plan = Plan {
            schema: report::PLAN_SCHEMA.into(),
            tool: name.into(),
            version: report::VERSION.into(),
            target: report::TARGET.into(),
            host,
            params,
            allowed,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("serialises")
        );
        return;
    }
    let virt = &host.virtualization;
    println!("{name} plan (dry run: nothing is started)");
    // Every parameter by name, the stressor's own among the common ones, as the JSON has them.
    let e = &params.effective;
    let mut shown = e.own.clone();
    shown.insert("duration".into(), e.duration.clone().into());
    shown.insert("duration_s".into(), e.duration_s.into());
    shown.insert("workers".into(), e.workers.into());
    if let Some(seed) = e.seed {
        shown.insert("seed".into(), seed.into());
    }
    for (k, v) in shown {
        let text = match v {
            Value::String(s) => s,
            Value::Null => "none".into(),
            other => other.to_string(),
        };
        println!("  {k:<16} {text}");
    }
    println!("  {:<16} {}", "where", virt.describe());
    for e in &virt.evidence {
        println!("  {:<16} {e}", "");
    }
    println!(
        "  {:<16} {}",
        "would run",
        if allowed {
            "yes"
        } else {
            "no: bare metal, pass --allow-host"
        }
    );
    let m = &host.memory;
    println!(
        "  {:<16} {} CPUs usable of {}, memory {} available of {}{}",
        "host",
        host.cpus.usable,
        host.cpus.online,
        units::bytes(m.available_bytes),
        units::bytes(m.total_bytes),
        m.cgroup_limit_bytes
            .map(|l| format!(", cgroup limit {}", units::bytes(l)))
            .unwrap_or_default()
    );
}
