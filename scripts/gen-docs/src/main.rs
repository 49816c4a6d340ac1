//! Writes man pages and shell completions for every shipped binary (the stressors and the
//! host-side `misbehave`), from its clap definition.
//!
//! `gen-docs OUT_DIR` makes `OUT_DIR/man/man1/<name>.1` (and one page per subcommand,
//! `<name>-<sub>.1`), `OUT_DIR/completions/bash/<name>`, `OUT_DIR/completions/zsh/_<name>`
//! and `OUT_DIR/completions/fish/<name>.fish`. A new stressor is one entry in [`COMMANDS`]
//! (and one line in Cargo.toml): Cargo cannot list dependencies by a glob, so the test
//! checks [`COMMANDS`] against the one list of stressors, the crates under `stressors/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Command, CommandFactory};
use clap_complete::Shell;

/// Every shipped binary's clap command, in the order of the README.
const COMMANDS: &[fn() -> Command] = &[
    cpubomb::Cli::command,
    forkbomb::Cli::command,
    membomb::Cli::command,
    diskthrash::Cli::command,
    netflood::Cli::command,
    probe::Cli::command,
    misbehave_host::cli::Cli::command,
];

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: gen-docs OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-docs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every page and completion under `out`; returns the files written.
fn generate(out: &Path) -> io::Result<Vec<PathBuf>> {
    let man = out.join("man/man1");
    let comp = out.join("completions");
    for d in [
        &man,
        &comp.join("bash"),
        &comp.join("zsh"),
        &comp.join("fish"),
    ] {
        fs::create_dir_all(d)?;
    }
    let mut written = Vec::new();
    for make in COMMANDS {
        let mut cmd = make().disable_help_subcommand(true);
        cmd.build();
        let name = cmd.get_name().to_string();
        write_man(cmd, &man, &mut written)?;
        for (shell, dir, file) in [
            (Shell::Bash, "bash", name.clone()),
            (Shell::Zsh, "zsh", format!("_{name}")),
            (Shell::Fish, "fish", format!("{name}.fish")),
        ] {
            let path = comp.join(dir).join(file);
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut make(), &name, &mut buf);
            fs::write(&path, buf)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The page of `cmd`, then one page per visible subcommand (`netflood-send.1`), as
/// `clap_mangen::generate_to` does, with the release date on each.
fn write_man(cmd: Command, dir: &Path, written: &mut Vec<PathBuf>) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_man(sub, dir, written)?;
    }
    written.push(
        clap_mangen::Man::new(cmd)
            .date(release_date())
            .generate_to(dir)?,
    );
    Ok(())
}

/// The page date: SOURCE_DATE_EPOCH when set (reproducible builds), else none.
fn release_date() -> String {
    date_of(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())
}

/// `YYYY-MM-DD` of a Unix time in seconds; empty when there is none.
fn date_of(epoch: Option<&str>) -> String {
    let Some(secs) = epoch.and_then(|s| s.trim().parse::<i64>().ok()) else {
        return String::new();
    };
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binary_gets_pages_and_completions() {
        let dir = std::env::temp_dir().join(format!("gen-docs-test-{}", std::process::id()));
        let files = generate(&dir).unwrap();
        for name in stressors() {
            let page = fs::read_to_string(dir.join(format!("man/man1/{name}.1"))).unwrap();
            assert!(page.contains(".TH"), "{name}.1 is not a man page");
            assert!(page.contains("duration"), "{name}.1 lacks the shared flags");
            assert!(dir.join(format!("completions/bash/{name}")).is_file());
            assert!(dir.join(format!("completions/zsh/_{name}")).is_file());
            assert!(dir.join(format!("completions/fish/{name}.fish")).is_file());
        }
        for sub in ["send", "sink", "echo"] {
            assert!(dir.join(format!("man/man1/netflood-{sub}.1")).is_file());
        }
        // The host-side command: its page, one per subcommand, its completions.
        let page = fs::read_to_string(dir.join("man/man1/misbehave.1")).unwrap();
        assert!(
            page.contains(".TH") && page.contains("compare"),
            "misbehave.1"
        );
        for sub in ["compare", "summary"] {
            assert!(dir.join(format!("man/man1/misbehave-{sub}.1")).is_file());
        }
        assert!(dir.join("completions/bash/misbehave").is_file());
        // A page and three completions per command, and the five subcommands' pages.
        assert_eq!(files.len(), COMMANDS.len() * 4 + 3 + 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Every crate under `stressors/` (the one list of the shipped stressors).
    fn stressors() -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../stressors");
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("Cargo.toml").is_file())
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn commands_are_the_stressors_and_misbehave() {
        let mut names: Vec<String> = COMMANDS
            .iter()
            .map(|c| c().get_name().to_string())
            .collect();
        names.sort();
        let mut want = stressors();
        want.push("misbehave".into());
        want.sort();
        assert_eq!(
            names, want,
            "COMMANDS must hold every crate under stressors/"
        );
    }

    #[test]
    fn date_from_epoch() {
        assert_eq!(date_of(Some("1796083200")), "2026-12-01");
        assert_eq!(date_of(Some("0")), "1970-01-01");
        assert_eq!(date_of(Some("951782400")), "2000-02-29");
        assert_eq!(date_of(None), "");
    }
}
