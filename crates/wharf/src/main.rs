//! The `wharf` command. Everything is in the library so tests can drive it.

fn main() -> std::process::ExitCode {
    wharf::run()
}
