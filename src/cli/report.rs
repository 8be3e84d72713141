//! Decisions as people and programs read them: the JSON of `explain --format json` and the
//! human text of `explain`, `replay` and `test`.

use crate::event::Event;
use crate::triage::{Decision, Level, TraceEntry, Verdict};
use serde_json::{Value, json};
use std::fmt::Write;

/// One event and its decision, as JSON: the event's identity, `decision`, then `trace`.
pub fn event_json(event: &Event, decision: &Decision, notes: &[String]) -> Value {
    let mut v = decision.explained(event);
    if !notes.is_empty() {
        v["notes"] = json!(notes);
    }
    v
}

fn headline(d: &Decision) -> String {
    let by = d.playbook.as_deref().map(|p| format!(" by {p}")).unwrap_or_default();
    let mut line = format!("{}{by}", d.level);
    if let Some(mode) = d.mode {
        let _ = write!(line, " ({})", mode.as_str().replace('_', " "));
    }
    if let Some(e) = &d.escalation {
        let jira = e.jira_project.as_deref().map(|j| format!(", Jira {j}")).unwrap_or_default();
        let page = if e.page { ", page" } else { ", no page" };
        let _ = write!(line, "; escalate {}{jira}{page}", e.priority);
    }
    if let Some(i) = &d.incident {
        let _ = write!(line, "; incident {} ({})", i.key, i.effect.as_str());
    }
    line
}

fn trace_line(e: &TraceEntry) -> String {
    let mut out = format!("{:<10} {:<17}", e.playbook, e.verdict.as_str());
    match e.verdict {
        Verdict::TriggerMismatch => {
            let parts: Vec<String> = e.mismatches.iter().map(|m| m.to_string()).collect();
            out.push_str(&parts.join("; "));
        }
        _ => {
            if let Some(t) = e.trigger {
                let _ = write!(out, "trigger {t} matched");
            }
            if let Some(c) = &e.condition {
                match (&c.value, &c.error) {
                    (Some(v), _) => {
                        let _ = write!(out, ", condition {v}");
                    }
                    (None, Some(err)) => {
                        let _ = write!(out, ", condition failed: {err}");
                    }
                    _ => {}
                }
            }
        }
    }
    out.trim_end().to_string()
}

/// The human account of one decision: what, why, and (with `trace`) every playbook looked at.
pub fn event_human(event: &Event, decision: &Decision, notes: &[String], trace: bool) -> String {
    let mut out = String::new();
    let service = event.service.as_deref().unwrap_or("unknown service");
    let _ = writeln!(
        out,
        "event {} · {} {} {} · {service} · {}",
        event.id,
        event.source,
        event.kind.as_str(),
        event.status.as_str(),
        event.severity.as_str()
    );
    let _ = writeln!(out, "  {}", event.summary);
    for n in notes {
        let _ = writeln!(out, "  note: {n}");
    }
    if let Some(s) = &decision.service {
        let known = if s.known { "in the catalog" } else { "not in the catalog" };
        let _ = writeln!(out, "  service: {} (from {}, {known})", s.name, s.from);
    }
    let _ = writeln!(out, "  decision: {}", headline(decision));
    if let Some(f) = &decision.flapping {
        let _ = writeln!(out, "  flapping since {}: {}", f.since.to_rfc3339(), f.describe());
    }
    if let Some(first) = &decision.first_pass {
        let _ = writeln!(out, "  first pass (without the analysis): {}", first.level);
    }
    for r in &decision.reasons {
        let _ = writeln!(out, "    - {r}");
    }
    for a in &decision.actions {
        let _ = writeln!(out, "  plan: {a} (blast radius {})", a.blast_radius);
        let _ = writeln!(out, "    on {} ({}):", a.plan.target, a.plan.integration);
        for step in &a.plan.steps {
            let _ = writeln!(out, "      {step}");
        }
    }
    for v in &decision.verify {
        let _ = writeln!(out, "  verify: {v}");
    }
    if let Some(f) = &decision.fix {
        let _ = writeln!(out, "  fix: {} ({}% ≥ {}%): {}", f.generator, f.confidence, f.threshold, f.summary);
    }
    if let Some(a) = &decision.analyzer {
        let who = if a.analyzer.is_empty() { "given" } else { a.analyzer.as_str() };
        let _ = writeln!(out, "  analysis ({who}): {}", a.summary);
        for e in &a.evidence {
            let _ = writeln!(out, "    - {e}");
        }
        for n in &a.notes {
            let _ = writeln!(out, "    note: {n}");
        }
    }
    if trace {
        if decision.trace.is_empty() {
            let why = match decision.level {
                Level::Suppressed => "a repeat: playbooks were not consulted",
                _ if event.status != crate::event::Status::Firing && event.status != crate::event::Status::Info => {
                    "not firing: playbooks were not consulted"
                }
                _ => "no playbook's trigger could match this event",
            };
            let _ = writeln!(out, "  trace: {why}");
        } else {
            let _ = writeln!(out, "  trace:");
        }
        for e in &decision.trace {
            let _ = writeln!(out, "    {}", trace_line(e));
            for g in &e.guards {
                let mark = if !g.passed {
                    "✗"
                } else if g.needs_approval {
                    "?"
                } else {
                    "✓"
                };
                let _ = writeln!(out, "      {mark} {g}");
            }
            if let Some(p) = &e.plan_error {
                let _ = writeln!(out, "      ✗ plan: {p}");
            }
        }
    }
    out
}
