//! The corral command-line tool.

fn main() -> std::process::ExitCode {
    corral::cli::run()
}
