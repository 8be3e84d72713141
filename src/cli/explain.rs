//! `sparky explain EVENT_FILE`: what Sparky would do with the event(s) in a file, and why.

use super::input;
use super::report;
use crate::triage::{self, MemoryContext, Options, Outcome};
use chrono::Utc;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// A payload as its sender posts it (or JSON Lines of payloads), or normalized events.
    event_file: PathBuf,
    /// Who sent it (`alertmanager`, `event` for normalized events); inferred when left out.
    #[arg(long)]
    source: Option<String>,
    /// Where the playbooks are.
    #[arg(long, default_value = "playbooks")]
    playbooks: Vec<PathBuf>,
    /// A YAML file of run history, knowledge facts, open incidents, pauses, analysis and
    /// time, to ask "what if" (see docs/triage.md).
    #[arg(long)]
    context: Option<PathBuf>,
    /// `human` or `json`.
    #[arg(long, value_enum, default_value = "human")]
    format: super::FormatArg,
    /// Trace only the playbooks the index offers (as the daemon does), not every playbook.
    #[arg(long)]
    candidates_only: bool,
}

pub(super) fn run(args: Args) -> ExitCode {
    match explain(&args) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn explain(args: &Args) -> Result<String, String> {
    input::check_source(args.source.as_deref())?;
    let file = match &args.context {
        Some(path) => input::load_context_file(path)?,
        None => Default::default(),
    };
    let graph = input::load_graph(&args.playbooks)?;
    let now = file.now.unwrap_or_else(Utc::now);
    let (events, notes) = input::read_file(&args.event_file, args.source.as_deref(), now)?;
    if events.is_empty() {
        return Err(format!("{} holds no events", args.event_file.display()));
    }
    let mut ctx = MemoryContext::from_file(&file, now).map_err(|e| format!("context: {e}"))?;
    let options = Options { explain_all: !args.candidates_only };
    let mut results = Vec::new();
    for event in &events {
        let analysis = file.analysis.clone();
        let decision = triage::decide_lazily(event, &ctx, &graph, now, options, |_| analysis);
        // Events of one file are one delivery: each sees what the ones before it opened.
        ctx.record(event, &decision, &graph, Outcome::Pending, now);
        results.push(decision);
    }
    Ok(match args.format {
        super::FormatArg::Json => {
            let list: Vec<_> = events.iter().zip(&results).map(|(e, d)| report::event_json(e, d, &notes)).collect();
            let doc = serde_json::json!({ "ruleset": graph.hash(), "events": list });
            serde_json::to_string_pretty(&doc).expect("JSON values serialize") + "\n"
        }
        super::FormatArg::Human => {
            let mut out = String::new();
            for (i, (e, d)) in events.iter().zip(&results).enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                out.push_str(&report::event_human(e, d, if i == 0 { &notes } else { &[] }, true));
            }
            out.push_str(&format!("\nruleset {}\n", graph.hash()));
            out
        }
    })
}
