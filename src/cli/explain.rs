//! `sparky explain EVENT_FILE`: what Sparky would do with the event(s) in a file, and why;
//! `sparky explain --schedule PB-003 --at TIME`: what a scheduled run would do at that time.

use super::input;
use super::report;
use crate::analysis::package::Package;
use crate::escalate::EscalationPackage;
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
    #[arg(required_unless_present = "schedule", conflicts_with = "schedule")]
    event_file: Option<PathBuf>,
    /// Decide the scheduled run of this playbook instead of an event file.
    #[arg(long, value_name = "PLAYBOOK")]
    schedule: Option<String>,
    /// Decide as at this time (RFC 3339), over the context file's `now` and the clock.
    #[arg(long, value_name = "TIME")]
    at: Option<DateTime<Utc>>,
    #[command(flatten)]
    common: super::DecideArgs,
    /// Trace only the playbooks the index offers (as the daemon does), not every playbook.
    #[arg(long)]
    candidates_only: bool,
    /// Also print each event's context package (what an L2 pull request or an L3 ticket
    /// carries): service, owner, deploys, past incidents, impact, analysis, what Sparky did.
    #[arg(long)]
    package: bool,
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
    /// The events; `None` with `schedule`.
    pub event_file: Option<&'a Path>,
    /// The playbook whose scheduled run is decided, instead of an event file.
    pub schedule: Option<&'a str>,
    /// The time to decide at, over the context's `now`.
    pub at: Option<DateTime<Utc>>,
    pub source: Option<&'a str>,
    pub playbooks: &'a [PathBuf],
    pub context: Option<&'a Path>,
    /// Service catalog files or folders.
    pub catalog: &'a [PathBuf],
    /// "Now" when the context does not set it.
    pub now: DateTime<Utc>,
    pub explain_all: bool,
}

/// The rule graph, each event with its decision, what the reader noticed in the file, and
/// each event's context package.
pub struct Explained {
    pub graph: RuleGraph,
    pub decided: Vec<(Event, Decision)>,
    pub notes: Vec<String>,
    pub packages: Vec<Package>,
}

/// The decisions for the events of a file, decided in order: each event sees what the ones
/// before it opened (they are one delivery).
pub fn decide_file(req: &Request) -> Result<Explained, String> {
    input::check_source(req.source)?;
    let file = match req.context {
        Some(path) => input::load_context_file(path)?,
        None => Default::default(),
    };
    let graph = input::load_graph(req.playbooks)?;
    let now = req.at.or(file.now).unwrap_or(req.now);
    let (events, notes) = match (req.event_file, req.schedule) {
        (_, Some(id)) => {
            let Some(pb) = graph.playbooks().iter().find(|p| p.id == id) else {
                let known: Vec<&str> = graph.playbooks().iter().map(|p| p.id.as_str()).collect();
                return Err(format!("no playbook `{id}` (loaded: {})", known.join(", ")));
            };
            if crate::daemon::scheduler::Schedule::of(pb).is_none() {
                return Err(format!("{id} has no schedule (`on schedule every ...` or `on schedule cron ...`)"));
            }
            (vec![Event::schedule(id, now)], Vec::new())
        }
        (Some(path), None) => input::read_file(path, req.source, now)?,
        (None, None) => return Err("give an event file or `--schedule PLAYBOOK`".into()),
    };
    if events.is_empty() {
        return Err(format!("{} holds no events", req.event_file.map(|p| p.display().to_string()).unwrap_or_default()));
    }
    let catalog = input::load_catalog(req.catalog)?;
    let mut ctx = MemoryContext::from_file(&file, catalog, now).map_err(|e| format!("context: {e}"))?;
    let options = Options { explain_all: req.explain_all };
    let mut decided = Vec::new();
    let mut packages = Vec::new();
    for mut event in events {
        let (decision, arrival) =
            triage::triage_event(&mut event, &mut ctx, &graph, now, options, input::analyzer(&file.analysis, now));
        packages.push(Package::assemble(
            &event,
            ctx.knowledge_graph(),
            Some(&decision),
            decision.analyzer.as_ref(),
            now,
        ));
        ctx.record(&event, arrival, &decision, &graph, Outcome::Pending, now);
        decided.push((event, decision));
    }
    Ok(Explained { graph, decided, notes, packages })
}

/// The JSON `explain --format json` prints; with `package`, each event carries its
/// context package under `package`.
pub fn to_json(explained: &Explained, package: bool) -> serde_json::Value {
    let list: Vec<_> = explained
        .decided
        .iter()
        .zip(&explained.packages)
        .map(|((e, d), p)| {
            let mut v = report::event_json(e, d, &explained.notes);
            if package {
                v["package"] = serde_json::to_value(p).unwrap_or_default();
            }
            v
        })
        .collect();
    serde_json::json!({ "ruleset": explained.graph.hash(), "events": list })
}

fn explain(args: &Args) -> Result<String, String> {
    let req = Request {
        event_file: args.event_file.as_deref(),
        schedule: args.schedule.as_deref(),
        at: args.at,
        source: args.common.source.as_deref(),
        playbooks: &args.common.playbooks,
        context: args.common.context.as_deref(),
        catalog: &input::catalog_paths(&args.common.catalog),
        now: Utc::now(),
        explain_all: !args.candidates_only,
    };
    let explained = decide_file(&req)?;
    Ok(match args.common.format {
        super::FormatArg::Json => {
            serde_json::to_string_pretty(&to_json(&explained, args.package)).expect("JSON values serialize") + "\n"
        }
        super::FormatArg::Human => {
            let mut out = String::new();
            let notes = &explained.notes;
            for (i, ((e, d), p)) in explained.decided.iter().zip(&explained.packages).enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                out.push_str(&report::event_human(e, d, if i == 0 { notes } else { &[] }, true));
                if args.package {
                    out.push('\n');
                    // An escalating decision shows what the on-call engineer will be handed.
                    if d.escalation.is_some() {
                        let package = EscalationPackage::of_decision(e, d, &explained.graph, p.clone());
                        out.push_str(&package.to_markdown());
                    } else {
                        out.push_str(&p.to_markdown());
                    }
                }
            }
            out.push_str(&format!("\nruleset {}\n", explained.graph.hash()));
            out
        }
    })
}
