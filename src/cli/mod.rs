//! The command line: one file per subcommand. `main.rs` calls [`main`].

mod check;
pub mod explain;
mod input;
mod replay;
mod report;
mod serve;
pub mod test;

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
    /// Explain what Sparky would do with the event(s) in a file, and why.
    Explain(explain::Args),
    /// Decide a batch of events in order and summarize: levels, playbooks, automation rate.
    Replay(replay::Args),
    /// Run the playbook test suites (`*.test.yaml`) beside the playbooks.
    Test(test::Args),
    /// Run the daemon: receive webhooks, decide, hot-reload the playbooks.
    Serve(serve::Args),
}

/// Output format of the commands that print decisions.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Human,
    Json,
}

/// What `explain` and `replay` share: where the events come from, the playbooks, the
/// starting context and the output format.
#[derive(Debug, clap::Args)]
struct DecideArgs {
    /// Who sent the events (`alertmanager`, `event` for normalized events); inferred per
    /// document when left out.
    #[arg(long)]
    source: Option<String>,
    /// Where the playbooks are (files or folders; repeat for several).
    #[arg(long, default_value = "playbooks")]
    playbooks: Vec<std::path::PathBuf>,
    /// Service catalog files or folders (Backstage `catalog-info.yaml`); `./catalog` when
    /// left out and that folder exists.
    #[arg(long)]
    catalog: Option<Vec<std::path::PathBuf>>,
    /// A YAML file of run history, knowledge facts, open incidents, pauses, analysis and
    /// time, to ask "what if" (see docs/triage.md).
    #[arg(long)]
    context: Option<std::path::PathBuf>,
    /// `human` or `json`.
    #[arg(long, value_enum, default_value = "human")]
    format: FormatArg,
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
        Command::Explain(args) => explain::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Test(args) => test::run(args),
        Command::Serve(args) => serve::run(args),
    }
}
