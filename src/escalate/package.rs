//! The escalation package: the context package of the event (what was known when Sparky
//! decided) plus what Sparky did and why it stopped. Every destination renders this one
//! structure — Jira (ADF or wiki markup), PagerDuty custom details, Slack blocks, Markdown —
//! so the ticket, the page and `sparky explain` tell the same story.
//!
//! A package is frozen when the escalation is written to the outbox: a retry an hour later,
//! or after a restart, sends exactly what was known then.

use crate::analysis::package::Package;
use crate::event::Event;
use crate::graph::RuleGraph;
use crate::knowledge::catalog::{Owner, Service};
use crate::knowledge::{Deploy, PastIncident};
use crate::triage::{self, Decision};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write;

/// Jira's limit on an issue summary.
const SUMMARY_MAX: usize = 255;
/// The windows `analysis::package` lists deploys and past incidents from, as headings say them.
const DEPLOYS_WINDOW: &str = "last 24 h";
const HISTORY_WINDOW: &str = "last 90 days";
/// Labels listed at most: a few dozen labels bury the facts that matter.
const LABELS_MAX: usize = 20;
/// An annotation's text shown at most (an alert's `description` can hold a whole log).
const ANNOTATION_MAX: usize = 1_000;
/// The attempt's detail shown at most, in characters: Jira refuses a description over 32 767
/// characters, and a ticket is read, not parsed — the full detail stays in the store.
const DETAIL_MAX: usize = 8_000;

/// Everything a person needs to start on an incident Sparky hands over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EscalationPackage {
    /// One Jira issue, one PagerDuty alert per key.
    pub incident_key: String,
    /// `P1` .. `P4`.
    pub priority: String,
    /// The Jira project the playbook names (`l3 jira "OPS"`); the service's catalog entry
    /// and the configured default come after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira_project: Option<String>,
    /// Whether the escalation pages (PagerDuty) or only files a ticket.
    pub page: bool,
    /// Why Sparky stopped and handed over, in one sentence.
    pub cause: String,
    /// What Sparky tried before it stopped: an L1 execution that failed or was refused, an
    /// L2 fix whose tests failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Attempt>,
    pub package: Package,
}

/// An attempt Sparky made before escalating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// `l1` (an execution) or `l2` (a generated fix).
    pub level: String,
    /// The execution id, or the fix branch.
    pub id: String,
    pub playbook: String,
    /// How it ended: `failed`, `timed_out`, `refused`, `interrupted`, `tests failed`.
    pub outcome: String,
    /// Its recorded result (plan, errors, the verification, the guard that refused).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// A later word on an escalated incident: a repeat of the alert, an engine escalation on an
/// incident already handed over, the resolution. Rendered as a Jira comment, a Slack message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub incident_key: String,
    /// One line: `the alert fired again (3 events so far)`, `resolved at ...`.
    pub headline: String,
    /// Further facts, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Attempt>,
}

/// The Jira issue an incident was filed as: its key (`OPS-12`) and browse URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueLink {
    pub key: String,
    pub url: String,
}

impl EscalationPackage {
    /// The escalation package of `decision`: its context `package`, the escalation settings
    /// of the decision (or, for an L1 or L2 that may escalate later, of its playbook's `l3`),
    /// and why it escalates.
    pub fn of_decision(event: &Event, decision: &Decision, graph: &RuleGraph, package: Package) -> EscalationPackage {
        let settings = decision.escalation.clone().unwrap_or_else(|| {
            let playbook = decision.playbook.as_deref().and_then(|id| graph.playbooks().iter().find(|p| p.id == id));
            match playbook {
                Some(pb) => triage::escalation_of(pb),
                None => triage::escalation_by_severity(event.severity),
            }
        });
        let incident_key = match &decision.incident {
            Some(change) => change.key.clone(),
            None => triage::incident_key(event),
        };
        // Its reasons but the one that says which playbook decided (the package says that).
        let reasons: Vec<&str> =
            decision.reasons.iter().map(String::as_str).filter(|r| !r.contains(" decides: ")).collect();
        let cause = if reasons.is_empty() { decision.reasons.join("; ") } else { reasons.join("; ") };
        EscalationPackage {
            incident_key,
            priority: settings.priority,
            jira_project: settings.jira_project,
            // Never a page about what PagerDuty itself reported, whenever it is escalated (now,
            // or later by the engine when an L1 fails).
            page: settings.page && event.source != "pagerduty",
            cause,
            attempt: None,
            package,
        }
    }

    /// The issue summary / page title: `checkout: Pod checkout-7d9 is crash-looping`, at most
    /// 255 characters (Jira's limit), cut on a character boundary.
    pub fn title(&self) -> String {
        // One line: Jira refuses a summary with a line break (alert descriptions often have them).
        let summary = one_line(&self.package.event.summary);
        let summary = if summary.is_empty() { "an event Sparky could not handle" } else { summary.as_str() };
        let full = match &self.package.service {
            Some(s) if !summary.to_lowercase().contains(&s.name.to_lowercase()) => format!("{}: {summary}", s.name),
            _ => summary.to_string(),
        };
        truncate(&full, SUMMARY_MAX)
    }

    /// The service's name, when the event named one.
    pub fn service(&self) -> Option<&str> {
        self.package.service.as_ref().map(|s| s.name.as_str())
    }

    /// The package in Markdown: `sparky explain`, and destinations that read Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {} {} — {}\n", self.priority, self.incident_key, self.title());
        let _ = writeln!(out, "**Why Sparky escalated:** {}\n", self.cause);
        if let Some(a) = &self.attempt {
            let _ = writeln!(out, "**What Sparky tried:** {}\n", a.describe());
            if !a.detail.is_null() {
                let detail = serde_json::to_string_pretty(&a.detail).unwrap_or_default();
                let _ = writeln!(out, "```json\n{detail}\n```\n");
            }
        }
        out.push_str(&self.package.to_markdown());
        out
    }
}

impl Attempt {
    /// `L1 execution ex-1 of PB-001: failed`.
    pub fn describe(&self) -> String {
        let what = if self.level == "l2" { "L2 fix" } else { "L1 execution" };
        format!("{what} {} of {}: {}", self.id, self.playbook, self.outcome)
    }
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A piece of a line of the outline. The text is as the package holds it — never escaped:
/// each renderer escapes for its own syntax, so no renderer trusts another's escaping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Span {
    Text(String),
    Strong(String),
    Code(String),
    /// Only `http(s)` URLs become links (see [`link`]): a `javascript:` URL from an alert
    /// must not be one click away.
    Link {
        text: String,
        url: String,
    },
}

/// A block of the outline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// Level 2 (the headline) or 3 (a section).
    Heading(u8, String),
    Paragraph(Vec<Span>),
    List(Vec<Vec<Span>>),
    /// Pretty-printed JSON, already cut to [`DETAIL_MAX`].
    Json(String),
}

impl EscalationPackage {
    /// The package as headings, paragraphs and lists, in the order the on-call engineer reads
    /// it: headline, why, what was tried, then [`Package::to_markdown`]'s sections. Jira Cloud
    /// (ADF) and Jira Server (wiki markup) render this one outline, so both tickets say the
    /// same; a user text never starts a paragraph (wiki markup reads `h1.` or `#` there).
    pub(crate) fn outline(&self) -> Vec<Block> {
        let mut out = vec![
            Block::Heading(2, one_line(&format!("{} {} — {}", self.priority, self.incident_key, self.title()))),
            labelled("Why Sparky escalated:", &self.cause),
        ];
        if let Some(a) = &self.attempt {
            attempt_outline(a, &mut out);
        }
        event_outline(self, &mut out);
        package_outline(&self.package, &mut out);
        out
    }
}

impl Note {
    /// The note as an outline: its headline, its lines, the attempt.
    pub(crate) fn outline(&self) -> Vec<Block> {
        let mut out = vec![Block::Paragraph(vec![Span::Strong(one_line(&self.headline))])];
        let lines: Vec<Vec<Span>> = self.lines.iter().map(|l| vec![Span::Text(one_line(l))]).collect();
        if !lines.is_empty() {
            out.push(Block::List(lines));
        }
        if let Some(a) = &self.attempt {
            attempt_outline(a, &mut out);
        }
        out
    }
}

fn attempt_outline(a: &Attempt, out: &mut Vec<Block>) {
    out.push(labelled("What Sparky tried:", &a.describe()));
    if !a.detail.is_null() {
        out.push(Block::Json(detail_json(&a.detail)));
    }
}

fn event_outline(p: &EscalationPackage, out: &mut Vec<Block>) {
    let e = &p.package.event;
    let mut items = vec![
        vec![
            Span::Strong("Event".into()),
            Span::Text(" ".into()),
            Span::Code(or_unknown(&e.id)),
            Span::Text(one_line_spaced(&format!(
                " from {} — {} {}, severity {}, since {}",
                or_unknown(&e.source),
                e.kind,
                e.status,
                e.severity,
                e.occurred_at.to_rfc3339()
            ))),
        ],
        vec![Span::Strong("Fingerprint".into()), Span::Text(" ".into()), Span::Code(or_unknown(&e.fingerprint))],
    ];
    // The title is cut at 255 characters: the full summary belongs in the body then.
    let summary = one_line(&e.summary);
    if !summary.is_empty() && !p.title().contains(&summary) {
        items.push(vec![Span::Strong("Summary".into()), Span::Text(format!(" {summary}"))]);
    }
    if let Some(d) = e.annotations.get("description").map(|d| one_line(d)).filter(|d| !d.is_empty() && *d != summary) {
        items.push(vec![Span::Strong("Description".into()), Span::Text(format!(" {}", truncate(&d, ANNOTATION_MAX)))]);
    }
    if !e.labels.is_empty() {
        let mut spans = vec![Span::Strong("Labels".into())];
        for (i, (k, v)) in e.labels.iter().take(LABELS_MAX).enumerate() {
            spans.push(Span::Text(if i == 0 { " " } else { ", " }.into()));
            spans.push(Span::Code(one_line(&format!("{k}={v}"))));
        }
        if let Some(more) = e.labels.len().checked_sub(LABELS_MAX).filter(|m| *m > 0) {
            spans.push(Span::Text(format!(" and {more} more")));
        }
        items.push(spans);
    }
    out.push(Block::Heading(3, "Event".into()));
    out.push(Block::List(items));
}

/// The sections of [`Package::to_markdown`], in its order and words.
fn package_outline(p: &Package, out: &mut Vec<Block>) {
    out.push(Block::Heading(3, "Service".into()));
    let mut items = Vec::new();
    match &p.service {
        Some(s) => {
            let from = s.from.as_deref().map(|f| format!(" (from {f})")).unwrap_or_default();
            let known = if s.known { "" } else { " — not in the catalog" };
            items.push(vec![
                Span::Strong(or_unknown(&one_line(&s.name))),
                Span::Text(one_line_spaced(&format!("{from}{known}"))),
            ]);
            if let Some(c) = &s.catalog {
                let facts = service_facts(c);
                let mut spans = vec![Span::Text(facts.join(" · "))];
                if let Some(r) = &c.runbook {
                    spans.push(Span::Text(if facts.is_empty() { "" } else { " · " }.into()));
                    spans.push(link("runbook", r));
                }
                if spans.len() > 1 || !facts.is_empty() {
                    items.push(spans);
                }
            }
            if let Some(o) = &s.owner {
                items.push(vec![Span::Text(format!("owner: {}", owner_text(o)))]);
            }
            if let Some(on) = &s.oncall {
                items.push(vec![Span::Text(format!("on call: {}", one_line(on)))]);
            }
        }
        None => items.push(vec![Span::Text("unknown: no label names one".into())]),
    }
    out.push(Block::List(items));

    if !p.links.is_empty() {
        out.push(Block::Heading(3, "Links".into()));
        out.push(Block::List(
            p.links.iter().map(|l| vec![Span::Text(format!("{}: ", one_line(&l.rel))), link(&l.url, &l.url)]).collect(),
        ));
    }

    out.push(Block::Heading(3, format!("Recent deploys ({DEPLOYS_WINDOW})")));
    if p.recent_deploys.is_empty() {
        out.push(Block::Paragraph(vec![Span::Text("none known".into())]));
    } else {
        let items = p
            .recent_deploys
            .iter()
            .map(|d| {
                let mut spans = vec![Span::Text(deploy_text(d))];
                if let Some(u) = &d.url {
                    spans.push(Span::Text(" — ".into()));
                    spans.push(link("deploy", u));
                }
                spans
            })
            .collect();
        out.push(Block::List(items));
    }

    out.push(Block::Heading(3, format!("Has this happened before? ({HISTORY_WINDOW})")));
    if p.past_incidents.is_empty() {
        out.push(Block::Paragraph(vec![Span::Text("no incident with this fingerprint".into())]));
    } else {
        out.push(Block::List(p.past_incidents.iter().map(|i| vec![Span::Text(past_incident_text(i))]).collect()));
    }

    out.push(Block::Heading(3, "Impact".into()));
    let mut impact = vec![vec![Span::Text(downstream_text(p))]];
    if !p.upstream.is_empty() {
        let names: Vec<&str> = p.upstream.iter().map(|r| r.name.as_str()).collect();
        impact.push(vec![Span::Text(one_line(&format!("depends on ({}): {}", p.upstream.len(), names.join(", "))))]);
    }
    out.push(Block::List(impact));

    if let Some(a) = &p.analysis {
        let by = if a.analyzer.is_empty() { "given" } else { &a.analyzer };
        out.push(Block::Heading(3, format!("Analysis ({})", one_line(by))));
        if !a.summary.trim().is_empty() {
            out.push(labelled("Summary:", &a.summary));
        }
        if let Some(rc) = &a.root_cause {
            out.push(labelled("Likely root cause:", &format!("{rc} ({:.0}%)", a.confidence)));
        }
        let mut items: Vec<Vec<Span>> = a.evidence.iter().map(|ev| vec![Span::Text(one_line(ev))]).collect();
        items.extend(a.proposals.iter().map(|pr| {
            vec![
                Span::Text("proposal ".into()),
                Span::Code(or_unknown(&pr.generator)),
                Span::Text(one_line_spaced(&format!(" at {:.0}%: {}", pr.confidence, pr.summary))),
            ]
        }));
        items.extend(a.notes.iter().map(|n| vec![Span::Text(one_line(&format!("note: {n}")))]));
        if !items.is_empty() {
            out.push(Block::List(items));
        }
    }

    if let Some(d) = &p.decision {
        out.push(Block::Heading(3, "What Sparky did".into()));
        let by = d.playbook.as_deref().map(|pb| format!(" by {pb}")).unwrap_or_default();
        out.push(Block::Paragraph(vec![
            Span::Text(one_line_spaced(&format!("{}{by} (ruleset ", or_unknown(&d.level)))),
            Span::Code(or_unknown(&d.ruleset)),
            Span::Text(")".into()),
        ]));
        if let Some(key) = &d.incident {
            let escalated = d.escalation.as_deref().map(|e| format!(", escalated {e}")).unwrap_or_default();
            out.push(Block::Paragraph(vec![Span::Text(one_line(&format!("incident {key}{escalated}")))]));
        }
        let mut items: Vec<Vec<Span>> = d.reasons.iter().map(|r| code_spans(r)).collect();
        items.extend(d.refused_guards.iter().map(|g| code_spans(&format!("refused: {g}"))));
        if !items.is_empty() {
            out.push(Block::List(items));
        }
        if !d.considered.is_empty() {
            out.push(Block::Paragraph(vec![Span::Text("Playbooks considered:".into())]));
            out.push(Block::List(d.considered.iter().map(|c| code_spans(c)).collect()));
        }
    }
}

/// `**label** text` as a paragraph.
fn labelled(label: &str, text: &str) -> Block {
    let mut spans = vec![Span::Strong(label.into()), Span::Text(" ".into())];
    spans.extend(code_spans(&or_unknown(text)));
    Block::Paragraph(spans)
}

/// A line Sparky wrote with Markdown code (``refused: PB-001: `at_most 3 per 1h` — 3 runs``)
/// as spans, the backticked parts as code; with an odd number of backticks, all as text.
fn code_spans(text: &str) -> Vec<Span> {
    let text = one_line(text);
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return vec![Span::Text(text)];
    }
    parts
        .iter()
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| if i % 2 == 1 { Span::Code((*part).into()) } else { Span::Text((*part).into()) })
        .collect()
}

/// A link to `url` when it is a web address, otherwise the URL as code: what it says is still
/// worth reading, but not worth a click.
pub(crate) fn link(text: &str, url: &str) -> Span {
    match web_url(url) {
        Some(url) => Span::Link { text: or_unknown(&one_line(text)), url: url.to_string() },
        None => Span::Code(or_unknown(&one_line(url))),
    }
}

/// `url`, trimmed, when it is an `http(s)` URL with no whitespace — the only links a
/// rendering makes.
pub(crate) fn web_url(url: &str) -> Option<&str> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
    (scheme_ok && url.len() > 8 && !url.chars().any(char::is_whitespace)).then_some(url)
}

/// Text on one line: alert texts carry newlines that would end a list item or a table row.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`one_line`] keeping one space at either end, for text between spans.
fn one_line_spaced(text: &str) -> String {
    let lead = if text.starts_with(char::is_whitespace) { " " } else { "" };
    let trail = if text.ends_with(char::is_whitespace) && !text.trim().is_empty() { " " } else { "" };
    format!("{lead}{}{trail}", one_line(text))
}

/// A value never shown blank (ADF refuses an empty text node, and a blank reads as a bug).
fn or_unknown(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() { "unknown".into() } else { text.into() }
}

/// The attempt's detail as pretty JSON, cut to [`DETAIL_MAX`] characters.
pub(crate) fn detail_json(detail: &Value) -> String {
    let text = serde_json::to_string_pretty(detail).unwrap_or_else(|_| detail.to_string());
    truncate(&text, DETAIL_MAX)
}

/// `tier 1 · stateless · system shop · repo acme/checkout`: what the catalog says of the
/// service that matters for a fix.
pub(crate) fn service_facts(c: &Service) -> Vec<String> {
    [
        c.tier.as_ref().map(|t| format!("tier {t}")),
        c.stateless.map(|st| if st { "stateless".to_string() } else { "stateful".to_string() }),
        c.system.as_ref().map(|x| format!("system {x}")),
        c.repo.as_ref().map(|r| format!("repo {r}")),
    ]
    .into_iter()
    .flatten()
    .map(|f| one_line(&f))
    .collect()
}

/// `Team Checkout (checkout@example.com, #team-checkout)`.
pub(crate) fn owner_text(o: &Owner) -> String {
    let name = o.display_name.as_deref().unwrap_or(&o.reference);
    let contact: Vec<&str> = [o.email.as_deref(), o.slack.as_deref()].into_iter().flatten().collect();
    let contact = if contact.is_empty() { String::new() } else { format!(" ({})", contact.join(", ")) };
    one_line(&format!("{}{contact}", or_unknown(name)))
}

/// `2026-03-10T07:55:00+00:00 v1.4.2 by alice, succeeded` (its URL apart: each destination
/// links it its own way).
pub(crate) fn deploy_text(d: &Deploy) -> String {
    let what = d.version.as_deref().or(d.commit.as_deref()).unwrap_or("unnamed version");
    let by = d.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
    one_line(&format!("{} {what}{by}, {}", d.at.to_rfc3339(), d.state.as_str()))
}

/// `2026-02-01T03:00:00+00:00 SPK-1 (L1): actions k8s.delete_pod, success`.
pub(crate) fn past_incident_text(i: &PastIncident) -> String {
    let done = match (&i.fix, i.actions.is_empty()) {
        (Some(f), _) => format!("fix {f}"),
        (None, false) => format!("actions {}", i.actions.join(", ")),
        (None, true) => "escalated".into(),
    };
    let outcome = i.outcome.as_deref().unwrap_or("outcome unknown");
    one_line(&format!("{} {} ({}): {done}, {outcome}", i.opened_at.to_rfc3339(), i.key, i.level))
}

/// `downstream (3): cart, web and 1 more`: who else suffers.
pub(crate) fn downstream_text(p: &Package) -> String {
    if p.downstream.is_empty() {
        return "downstream: none known".into();
    }
    let names: Vec<&str> = p.downstream.iter().map(|r| r.name.as_str()).collect();
    let more = p.downstream_total.saturating_sub(p.downstream.len());
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    one_line(&format!("downstream ({}): {}{more}", p.downstream_total, names.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters_not_bytes() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(truncate("", 3), "");
    }
}
