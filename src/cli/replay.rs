//! `sparky replay PATH...`: decide a batch of recorded events in order, with time taken from
//! the events, and summarize. Decisions are simulated like `sparky test` (repeats suppressed,
//! resolutions closing incidents, runs counting for guards); nothing is ever applied.

use super::input;
use super::report;
use crate::compile::files_under;
use crate::event::Event;
use crate::fix::feedback::{Acceptance, Feedback};
use crate::triage::{self, Decision, IncidentEffect, L1Mode, Level, MemoryContext, Options, Outcome};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Files (payloads, normalized events, JSON Lines of either) and folders of them
    /// (`*.json`, `*.jsonl`, `*.ndjson`, read in name order).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    common: super::DecideArgs,
    /// Print one line per event before the summary (human format).
    #[arg(long, short)]
    verbose: bool,
}

pub(super) fn run(args: Args) -> ExitCode {
    match replay(&args) {
        Ok(out) => {
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Event files: JSON, JSON Lines.
fn is_events_file(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "json" | "jsonl" | "ndjson"))
}

/// Counts of a replay.
#[derive(Debug, Default)]
pub struct Summary {
    pub events: usize,
    pub by_level: BTreeMap<&'static str, usize>,
    pub by_playbook: BTreeMap<String, BTreeMap<&'static str, usize>>,
    /// L1 applied, L2.
    pub automated: usize,
    /// L1, L2 or L3: events that needed something done.
    pub actionable: usize,
    /// The L2 fixes proposed, by incident key: generator, playbook, and what the replayed
    /// `pull_request` webhooks said of them (`open` until one does).
    pub fixes: BTreeMap<String, (String, Option<String>, &'static str)>,
    /// `pull_request` answers on Sparky branches whose incident this replay did not open.
    pub unmatched_answers: usize,
}

impl Summary {
    fn add(&mut self, d: &Decision) {
        self.events += 1;
        let level = match (d.level, d.mode) {
            (Level::L1, Some(L1Mode::AwaitApproval)) => "L1 awaiting approval",
            (Level::L1, Some(L1Mode::PlanOnly)) => "L1 planned only (draft)",
            (l, _) => l.as_str(),
        };
        *self.by_level.entry(level).or_default() += 1;
        if let Some(p) = &d.playbook
            && d.level != Level::Suppressed
        {
            *self.by_playbook.entry(p.clone()).or_default().entry(level).or_default() += 1;
        }
        if matches!(d.level, Level::L1 | Level::L2 | Level::L3) {
            self.actionable += 1;
        }
        if d.level == Level::L2 || (d.level == Level::L1 && d.mode == Some(L1Mode::Apply)) {
            self.automated += 1;
        }
        if d.level == Level::L2
            && let (Some(fix), Some(change)) = (&d.fix, &d.incident)
            && change.effect == IncidentEffect::Open
        {
            self.fixes.entry(change.key.clone()).or_insert((fix.generator.clone(), d.playbook.clone(), "open"));
        }
    }

    /// A person's answer to a fix's pull request, as a replayed webhook tells it.
    fn answer(&mut self, feedback: &Feedback) {
        match self.fixes.get_mut(&feedback.incident_key) {
            // A merge is final: nothing moves a fix out of `merged`.
            Some(fix) if fix.2 == "merged" => {}
            Some(fix) => fix.2 = feedback.state(),
            None => self.unmatched_answers += 1,
        }
    }

    /// The acceptance of the replayed fixes, by generator and playbook.
    pub fn acceptance(&self) -> Acceptance {
        let mut a = Acceptance::default();
        for (generator, playbook, state) in self.fixes.values() {
            a.add(generator, playbook.as_deref(), state, 1);
        }
        a
    }

    /// Share of the events that needed something done that Sparky handled at L1 or L2.
    pub fn automation_rate(&self) -> f64 {
        if self.actionable == 0 { 0.0 } else { self.automated as f64 * 100.0 / self.actionable as f64 }
    }
}

fn replay(args: &Args) -> Result<String, String> {
    input::check_source(args.common.source.as_deref())?;
    let file = match &args.common.context {
        Some(path) => input::load_context_file(path)?,
        None => Default::default(),
    };
    let graph = input::load_graph(&args.common.playbooks)?;
    let mut files = Vec::new();
    for p in &args.paths {
        files.extend(files_under(p, &is_events_file)?);
    }
    let mut events: Vec<Event> = Vec::new();
    let mut notes = Vec::new();
    for f in &files {
        // Received "when it happened": replays take their time from the events.
        let (found, mut n) = input::read_file(f, args.common.source.as_deref(), DateTime::<Utc>::UNIX_EPOCH)?;
        events.extend(found);
        notes.append(&mut n);
    }
    if events.is_empty() {
        return Err("no events found in the given paths".into());
    }
    let start = file.now.unwrap_or_else(|| events[0].occurred_at);
    let catalog = input::load_catalog(&input::catalog_paths(&args.common.catalog))?;
    let mut ctx = MemoryContext::from_file(&file, catalog, start).map_err(|e| format!("context: {e}"))?;
    let mut now = start;
    let mut summary = Summary::default();
    let mut decided = Vec::with_capacity(events.len());
    for mut event in events {
        now = now.max(event.occurred_at);
        event.received_at = now;
        ctx.set_now(now);
        let (d, arrival) = triage::triage_event(
            &mut event,
            &mut ctx,
            &graph,
            now,
            Options::default(),
            input::analyzer(&file.analysis, now),
        );
        ctx.record(&event, arrival, &d, &graph, Outcome::Success, now);
        summary.add(&d);
        if let Some(f) = Feedback::of(&event) {
            summary.answer(&f);
        }
        decided.push((event, d));
    }
    Ok(match args.common.format {
        super::FormatArg::Json => {
            let list: Vec<_> = decided.iter().map(|(e, d)| report::event_json(e, d, &[])).collect();
            let doc = json!({
                "ruleset": graph.hash(),
                "events": list,
                "notes": notes,
                "summary": {
                    "events": summary.events,
                    "by_level": summary.by_level,
                    "by_playbook": summary.by_playbook,
                    "actionable": summary.actionable,
                    "automated": summary.automated,
                    "automation_rate": (summary.automation_rate() * 10.0).round() / 10.0,
                    "fixes": summary.acceptance().to_json(),
                    "unmatched_answers": summary.unmatched_answers,
                },
            });
            serde_json::to_string_pretty(&doc).expect("JSON values serialize") + "\n"
        }
        super::FormatArg::Human => {
            let mut out = String::new();
            if args.verbose {
                for (e, d) in &decided {
                    let by = d.playbook.as_deref().unwrap_or("-");
                    let _ = writeln!(
                        out,
                        "{}  {:<11} {:<8} {}",
                        d.decided_at.to_rfc3339(),
                        d.level.as_str(),
                        by,
                        e.summary
                    );
                }
                out.push('\n');
            }
            for n in &notes {
                let _ = writeln!(out, "note: {n}");
            }
            out.push_str(&human_summary(&summary, graph.hash()));
            out
        }
    })
}

fn human_summary(s: &Summary, ruleset: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} event{} replayed (ruleset {ruleset})", s.events, if s.events == 1 { "" } else { "s" });
    let _ = writeln!(out, "by level:");
    for (level, n) in &s.by_level {
        let _ = writeln!(out, "  {level:<24} {n:>6}");
    }
    if !s.by_playbook.is_empty() {
        let _ = writeln!(out, "by playbook:");
        for (pb, levels) in &s.by_playbook {
            let parts: Vec<String> = levels.iter().map(|(l, n)| format!("{l} {n}")).collect();
            let _ = writeln!(out, "  {pb:<24} {}", parts.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "automation rate: {:.1}% ({} of {} events that needed action were handled at L1 or L2)",
        s.automation_rate(),
        s.automated,
        s.actionable
    );
    let acceptance = s.acceptance();
    if !acceptance.is_empty() {
        out.push_str(&acceptance.describe());
    }
    if s.unmatched_answers > 0 {
        let _ = writeln!(
            out,
            "{} pull request answer{} on sparky/ branches matched no fix this replay proposed (its incident began before the replayed events)",
            s.unmatched_answers,
            if s.unmatched_answers == 1 { "" } else { "s" }
        );
    }
    out
}
