fn main() -> std::process::ExitCode {
    common::main::<netflood::Cli>()
}
