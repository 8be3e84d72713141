//! `sparky approve <id>` / `sparky reject <id>`: a person's answer to a plan that waits for
//! approval (a playbook that has not earned trust yet). `sparky approve --list` shows them.
//! The answer goes straight to the store; the running daemon picks an approval up within a
//! second and applies it under the execution-time guards.

use super::StoreArgs;
use chrono::Utc;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The execution to answer (`act-123`, as the decision, `--list` and the status API show it).
    #[arg(required_unless_present = "list")]
    id: Option<String>,
    /// List the executions awaiting approval instead.
    #[arg(long, conflicts_with = "id")]
    list: bool,
    /// Who answers, for the audit log; `$USER` when left out.
    #[arg(long)]
    by: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

pub(super) fn run(args: Args, approve: bool) -> ExitCode {
    super::with_store(&args.store, |store| async move {
        if args.list {
            let waiting = store.executions(&["awaiting_approval"], 200).await.map_err(|e| e.to_string())?;
            if waiting.is_empty() {
                println!("no execution awaits approval");
            }
            for e in waiting {
                println!(
                    "{}  {}  {}  expires {}",
                    e.id,
                    e.playbook,
                    e.incident_key.as_deref().unwrap_or("-"),
                    e.expires_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into())
                );
                for p in &e.plans {
                    println!("    {} on {}: {}", p.action, p.target, p.steps.join("; "));
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        let id = args.id.as_deref().unwrap_or_default();
        let by = super::actor(args.by.as_deref());
        match store.answer(id, approve, &by, Utc::now()).await.map_err(|e| e.to_string())? {
            Ok(e) if approve => {
                println!(
                    "approved {} ({}) by {by}: the daemon applies it under the execution-time guards; `sparky audit --execution {}` shows what happens",
                    e.id, e.playbook, e.id
                );
                Ok(ExitCode::SUCCESS)
            }
            Ok(e) => {
                println!("rejected {} ({}) by {by}: it will not be applied", e.id, e.playbook);
                Ok(ExitCode::SUCCESS)
            }
            Err(why) => {
                eprintln!("error: {why}");
                Ok(ExitCode::from(1))
            }
        }
    })
}
