fn main() -> std::process::ExitCode {
    common::main::<forkbomb::Cli>()
}
