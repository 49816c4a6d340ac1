fn main() -> std::process::ExitCode {
    common::main::<cpubomb::Cli>()
}
