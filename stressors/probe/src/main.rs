fn main() -> std::process::ExitCode {
    common::main::<probe::Cli>()
}
