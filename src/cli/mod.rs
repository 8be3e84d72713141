//! The command line: one file per subcommand. `main.rs` calls [`main`].

mod check;

pub use check::render as check_output;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Sparky: an operations agent that answers alerts with playbooks.
#[derive(Debug, Parser)]
#[command(name = "sparky", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check playbooks: syntax, names, types, conditions and lints.
    Check(check::Args),
}

/// Exit status: 0 success, 1 problems found, 2 the command could not run.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(2),
            };
        }
    };
    match cli.command {
        Command::Check(args) => check::run(args),
    }
}
