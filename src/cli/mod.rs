//! The command line: one file per subcommand. `main.rs` calls [`main`].

mod approve;
mod audit;
mod check;
pub mod explain;
pub mod input;
mod migrate;
mod pause;
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
    /// Run the daemon: receive webhooks, decide, act, hot-reload the playbooks.
    Serve(serve::Args),
    /// Approve a plan that waits for a person (`--list` shows them).
    Approve(approve::Args),
    /// Reject a plan that waits for a person.
    Reject(approve::Args),
    /// Stop L1 actions: all of them (the kill switch) or a scope, for a while or until resumed.
    Pause(pause::PauseArgs),
    /// Lift a pause, or re-enable a playbook the circuit breaker demoted.
    Resume(pause::ResumeArgs),
    /// List the audit log; `sparky audit verify` checks its hash chain.
    Audit(audit::Args),
    /// Apply the store's schema migrations (`sparky serve` applies them at start too).
    Migrate(migrate::Args),
}

/// Where the operator commands find the store: the daemon's configuration, or a URL.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// The daemon's configuration file (for its `store`); `./sparky.yaml` when it exists.
    #[arg(long, global = true)]
    config: Option<std::path::PathBuf>,
    /// The store URL (overrides the configuration's), e.g. `sqlite://sparky.db`.
    #[arg(long, global = true)]
    store: Option<String>,
}

impl StoreArgs {
    /// The store URL: `--store`, the configuration's, or the default.
    fn url(&self) -> Result<String, String> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        let default_file = std::path::PathBuf::from("sparky.yaml");
        let path = self.config.clone().or_else(|| default_file.exists().then_some(default_file));
        let env = |name: &str| std::env::var(name).ok();
        Ok(match path {
            Some(p) => crate::daemon::config::Config::load(&p, &env).map_err(|e| e.to_string())?.store,
            None => crate::daemon::config::Config::default().store,
        })
    }
}

/// Runs `f` with the store open; an error is printed and exits 2.
fn with_store<F, Fut>(args: &StoreArgs, f: F) -> ExitCode
where
    F: FnOnce(crate::store::Store) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode, String>>,
{
    let result = (|| {
        let url = args.url()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        runtime.block_on(async {
            let store = crate::store::Store::open(&url).await.map_err(|e| e.to_string())?;
            let code = f(store.clone()).await;
            store.close().await;
            code
        })
    })();
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// Who a person is, for the audit log: `--by`, else `$USER`, else `unknown`.
fn actor(by: Option<&str>) -> String {
    by.map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".into())
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
        Command::Approve(args) => approve::run(args, true),
        Command::Reject(args) => approve::run(args, false),
        Command::Pause(args) => pause::pause(args),
        Command::Resume(args) => pause::resume(args),
        Command::Audit(args) => audit::run(args),
        Command::Migrate(args) => migrate::run(args),
    }
}
