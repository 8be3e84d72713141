//! `sparky audit`: the audit log (who did what to production, and why), oldest first;
//! `sparky audit verify` walks the hash chain and reports any record altered or removed.

use super::{FormatArg, StoreArgs};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Records at or after this time: RFC 3339, or a span back from now (`24h`, `7d`).
    #[arg(long)]
    since: Option<String>,
    /// Only this playbook's records.
    #[arg(long)]
    playbook: Option<String>,
    /// Only this execution's records (`act-123`).
    #[arg(long)]
    execution: Option<String>,
    /// At most this many (the newest).
    #[arg(long, default_value_t = 200)]
    limit: i64,
    /// `human` or `json`.
    #[arg(long, value_enum, default_value = "human")]
    format: FormatArg,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Check the hash chain: exit 1 when a record was altered, inserted or removed.
    Verify,
}

fn since(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    crate::dsl::parse_duration(text)
        .map(|ms| chrono::Utc::now() - chrono::Duration::milliseconds(ms as i64))
        .ok_or_else(|| format!("`--since {text}` is neither a time (RFC 3339) nor a span such as `24h`"))
}

pub(super) fn run(args: Args) -> ExitCode {
    let since = match args.since.as_deref().map(since).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    super::with_store(&args.store, |store| async move {
        if let Some(Sub::Verify) = args.command {
            let report = store.audit_verify().await.map_err(|e| e.to_string())?;
            if report.problems.is_empty() {
                println!("the audit log is intact: {} records, head {}", report.records, report.head);
                return Ok(ExitCode::SUCCESS);
            }
            for p in &report.problems {
                println!("broken: {p}");
            }
            println!(
                "the audit log was tampered with: {} problem{} in {} records",
                report.problems.len(),
                if report.problems.len() == 1 { "" } else { "s" },
                report.records
            );
            return Ok(ExitCode::from(1));
        }
        let records = store
            .audit(since, args.playbook.as_deref(), args.execution.as_deref(), args.limit)
            .await
            .map_err(|e| e.to_string())?;
        match args.format {
            FormatArg::Json => {
                for r in &records {
                    println!("{}", serde_json::to_string(r).unwrap_or_default());
                }
            }
            FormatArg::Human => {
                if records.is_empty() {
                    println!("no audit records match");
                }
                for r in &records {
                    println!(
                        "#{} {} {} {} {} {} {}",
                        r.seq,
                        r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        r.actor,
                        r.action,
                        r.execution.as_deref().unwrap_or("-"),
                        r.playbook.as_deref().unwrap_or("-"),
                        r.record
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
