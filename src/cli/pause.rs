//! `sparky pause` / `sparky resume`: the kill switch and scoped pauses. Without a scope,
//! every L1 stops (events are still accepted, decided and escalated); `--scope
//! service=checkout` (or `playbook=`, `namespace=`; repeat to narrow) stops only that. A
//! pause ends after `--for`, or at `sparky resume` with the same scope (or its `--id`).
//! `sparky resume --scope playbook=PB-001` also re-enables a playbook the circuit breaker
//! demoted. Without arguments `sparky pause --list` shows what is paused.

use super::StoreArgs;
use crate::triage::Pause;
use chrono::Utc;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct PauseArgs {
    /// What to pause: `service=checkout`, `playbook=PB-001`, `namespace=prod`; repeat to
    /// narrow. Every L1 when left out.
    #[arg(long)]
    scope: Vec<String>,
    /// How long, e.g. `2h`; until `sparky resume` when left out.
    #[arg(long = "for")]
    duration: Option<String>,
    /// Why, for the on-call engineer who finds it.
    #[arg(long, default_value = "paused by an operator")]
    reason: String,
    /// Who pauses, for the audit log; `$USER` when left out.
    #[arg(long)]
    by: Option<String>,
    /// List the pauses in force instead.
    #[arg(long, conflicts_with_all = ["scope", "duration"])]
    list: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub(super) struct ResumeArgs {
    /// The scope of the pause to lift, as it was given to `sparky pause`.
    #[arg(long, conflicts_with = "id")]
    scope: Vec<String>,
    /// The pause to lift, by its id (`sparky pause --list`).
    #[arg(long)]
    id: Option<i64>,
    /// Who resumes, for the audit log; `$USER` when left out.
    #[arg(long)]
    by: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

fn describe(id: i64, p: &Pause) -> String {
    let until = p.until.map(|u| format!(" until {}", u.to_rfc3339())).unwrap_or_else(|| " until resumed".into());
    let by = p.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
    format!("#{id} {}{by}{until}: {}", p.scope(), p.reason)
}

pub(super) fn pause(args: PauseArgs) -> ExitCode {
    let mut pause = match Pause::parse_scope(&args.scope) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let now = Utc::now();
    if let Some(d) = &args.duration {
        match crate::dsl::parse_duration(d).filter(|ms| *ms > 0) {
            Some(ms) => pause.until = Some(now + chrono::Duration::milliseconds(ms as i64)),
            None => {
                eprintln!("error: `--for {d}` is not a duration; write e.g. `30m` or `2h`");
                return ExitCode::from(2);
            }
        }
    }
    pause.reason = args.reason.clone();
    pause.by = Some(super::actor(args.by.as_deref()));
    super::with_store(&args.store, |store| async move {
        if args.list {
            let active = store.active_pauses(now).await.map_err(|e| e.to_string())?;
            if active.is_empty() {
                println!("nothing is paused");
            }
            for (id, p) in active {
                println!("{}", describe(id, &p));
            }
            return Ok(ExitCode::SUCCESS);
        }
        let id = store.pause(&pause, now).await.map_err(|e| e.to_string())?;
        println!(
            "paused {}: {}; events are still accepted, decided and escalated (`sparky resume{}` to lift it)",
            describe(id, &pause),
            if pause.scope() == "all L1" { "no L1 runs" } else { "no L1 runs in that scope" },
            args.scope.iter().map(|s| format!(" --scope {s}")).collect::<String>()
        );
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn resume(args: ResumeArgs) -> ExitCode {
    let scope = match Pause::parse_scope(&args.scope) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let by = super::actor(args.by.as_deref());
    super::with_store(&args.store, |store| async move {
        let lifted = store.resume(args.id, &scope, &by, Utc::now()).await.map_err(|e| e.to_string())?;
        if lifted.is_empty() {
            let what = match args.id {
                Some(id) => format!("#{id}"),
                None => format!("with the scope `{}`", scope.scope()),
            };
            eprintln!("error: no pause {what} is in force; `sparky pause --list` shows those that are");
            return Ok(ExitCode::from(1));
        }
        for (id, p) in &lifted {
            println!("resumed {}", describe(*id, p));
        }
        Ok(ExitCode::SUCCESS)
    })
}
