fn main() -> std::process::ExitCode {
    common::main::<diskthrash::Cli>()
}
