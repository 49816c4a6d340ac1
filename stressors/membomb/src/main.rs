fn main() -> std::process::ExitCode {
    common::main::<membomb::Cli>()
}
