//! `misbehave`: the host-side command (`compare`, `summary`); see `misbehave_host::cli`.

fn main() -> std::process::ExitCode {
    misbehave_host::cli::main()
}
