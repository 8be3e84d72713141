//! `sparky explain EVENT_FILE`: what Sparky would do with the event(s) in a file, and why.

use super::input;
use super::report;
use crate::event::Event;
use crate::graph::RuleGraph;
use crate::triage::{self, Decision, MemoryContext, Options, Outcome};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// A payload as its sender posts it (or JSON Lines of payloads), or normalized events.
    event_file: PathBuf,
    #[command(flatten)]
    common: super::DecideArgs,
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

/// What `explain` works from, apart from its output format.
pub struct Request<'a> {
    pub event_file: &'a Path,
    pub source: Option<&'a str>,
    pub playbooks: &'a [PathBuf],
    pub context: Option<&'a Path>,
    /// "Now" when the context does not set it.
    pub now: DateTime<Utc>,
    pub explain_all: bool,
}

/// The rule graph, each event with its decision, and what the reader noticed in the file.
pub type Explained = (RuleGraph, Vec<(Event, Decision)>, Vec<String>);

/// The decisions for the events of a file, decided in order: each event sees what the ones
/// before it opened (they are one delivery).
pub fn decide_file(req: &Request) -> Result<Explained, String> {
    input::check_source(req.source)?;
    let file = match req.context {
        Some(path) => input::load_context_file(path)?,
        None => Default::default(),
    };
    let graph = input::load_graph(req.playbooks)?;
    let now = file.now.unwrap_or(req.now);
    let (events, notes) = input::read_file(req.event_file, req.source, now)?;
    if events.is_empty() {
        return Err(format!("{} holds no events", req.event_file.display()));
    }
    let mut ctx = MemoryContext::from_file(&file, now).map_err(|e| format!("context: {e}"))?;
    let options = Options { explain_all: req.explain_all };
    let mut out = Vec::new();
    for event in events {
        let analysis = file.analysis.clone();
        let decision = triage::decide_lazily(&event, &ctx, &graph, now, options, |_| analysis);
        ctx.record(&event, &decision, &graph, Outcome::Pending, now);
        out.push((event, decision));
    }
    Ok((graph, out, notes))
}

/// The JSON `explain --format json` prints.
pub fn to_json(graph: &RuleGraph, decided: &[(Event, Decision)], notes: &[String]) -> serde_json::Value {
    let list: Vec<_> = decided.iter().map(|(e, d)| report::event_json(e, d, notes)).collect();
    serde_json::json!({ "ruleset": graph.hash(), "events": list })
}

fn explain(args: &Args) -> Result<String, String> {
    let req = Request {
        event_file: &args.event_file,
        source: args.common.source.as_deref(),
        playbooks: &args.common.playbooks,
        context: args.common.context.as_deref(),
        now: Utc::now(),
        explain_all: !args.candidates_only,
    };
    let (graph, decided, notes) = decide_file(&req)?;
    Ok(match args.common.format {
        super::FormatArg::Json => {
            serde_json::to_string_pretty(&to_json(&graph, &decided, &notes)).expect("JSON values serialize") + "\n"
        }
        super::FormatArg::Human => {
            let mut out = String::new();
            for (i, (e, d)) in decided.iter().enumerate() {
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
