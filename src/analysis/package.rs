//! The context package: everything known about an event, assembled in one place. The L2
//! pull request body, the L3 ticket and page, the remote analyzer's prompt and
//! `sparky explain --package` all render this one structure, so what the engineer reads at
//! 3 a.m. is what Sparky knew when it decided.

use crate::event::{Event, Link};
use crate::knowledge::catalog::{Owner, Related, Service};
use crate::knowledge::{Deploy, Knowledge, PastIncident, ServiceMatch};
use crate::triage::{Analysis, Decision, Verdict};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// How far back deploys are listed.
const DEPLOYS_HOURS: i64 = 24;
/// How far back past incidents are listed, and how many.
const HISTORY_DAYS: u64 = 90;
const HISTORY_MAX: usize = 10;
/// Dependents and dependencies listed at most.
const RELATED_MAX: usize = 50;

/// The event as the package shows it (its payload stays in the store).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventPart {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub status: String,
    pub severity: String,
    pub summary: String,
    pub fingerprint: String,
    pub occurred_at: DateTime<Utc>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The service, its catalog entry and who to call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServicePart {
    pub name: String,
    /// Where its name was read (`label app`, ...), when the decision resolved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub known: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Service>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oncall: Option<String>,
}

/// What Sparky did with the event and why it stopped where it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionPart {
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    pub reasons: Vec<String>,
    /// The incident key (one Jira issue, one page, one pull request per key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The escalation priority, when the event is escalated (`P2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
    /// Playbooks that matched, were shadowed or refused, one line each.
    pub considered: Vec<String>,
    /// Guards that refused an L1, with their figure and limit.
    pub refused_guards: Vec<String>,
    pub ruleset: String,
}

/// Everything known about an event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Package {
    pub event: EventPart,
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServicePart>,
    /// Deploys of the service in the last day, newest first.
    pub recent_deploys: Vec<Deploy>,
    /// Past incidents with the same fingerprint, newest first.
    pub past_incidents: Vec<PastIncident>,
    /// Services that depend on this one (who else suffers), nearest first, at most 50.
    pub downstream: Vec<Related>,
    /// How many services depend on this one in all.
    pub downstream_total: usize,
    /// Services this one depends on (where the cause may be), nearest first.
    pub upstream: Vec<Related>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionPart>,
    pub assembled_at: DateTime<Utc>,
}

impl Package {
    /// Assembles the package of `event` (its service already resolved) from `knowledge`,
    /// with the decision and the analysis when there are.
    pub fn assemble(
        event: &Event,
        knowledge: &Knowledge,
        decision: Option<&Decision>,
        analysis: Option<&Analysis>,
        now: DateTime<Utc>,
    ) -> Package {
        let service_name = event.service.clone().filter(|s| !s.is_empty());
        let matched: Option<&ServiceMatch> = decision.and_then(|d| d.service.as_ref());
        let catalog = knowledge.catalog();
        let service = service_name.as_ref().map(|name| ServicePart {
            name: name.clone(),
            from: matched.map(|m| m.from.clone()),
            known: knowledge.knows(name),
            catalog: catalog.service(name).cloned(),
            owner: knowledge.owner_of(name),
            oncall: knowledge.oncall_of(name),
        });
        let since = now.checked_sub_signed(Duration::hours(DEPLOYS_HOURS)).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let recent_deploys = service_name
            .as_deref()
            .map(|s| knowledge.deploys_of(s).filter(|d| d.at >= since).take(20).cloned().collect())
            .unwrap_or_default();
        let past_incidents = knowledge
            .history_within(&event.fingerprint, HISTORY_DAYS * 86_400_000)
            .take(HISTORY_MAX)
            .cloned()
            .collect();
        let (downstream, downstream_total, upstream) = match service_name.as_deref() {
            Some(s) => (
                catalog.downstream_nearest(s, RELATED_MAX),
                catalog.downstream_count(s),
                catalog.upstream_nearest(s, RELATED_MAX),
            ),
            None => (Vec::new(), 0, Vec::new()),
        };
        Package {
            event: EventPart {
                id: event.id.clone(),
                source: event.source.clone(),
                kind: event.kind.as_str().into(),
                status: event.status.as_str().into(),
                severity: event.severity.as_str().into(),
                summary: event.summary.clone(),
                fingerprint: event.fingerprint.clone(),
                occurred_at: event.occurred_at,
                labels: event.labels.clone(),
                annotations: event.annotations.clone(),
            },
            links: event.links.clone(),
            service,
            recent_deploys,
            past_incidents,
            downstream,
            downstream_total,
            upstream,
            analysis: analysis.cloned(),
            decision: decision.map(decision_part),
            assembled_at: now,
        }
    }

    /// The package in Markdown: for `sparky explain --package`, pull request bodies and
    /// tickets that read Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let e = &self.event;
        let _ = writeln!(out, "## {}\n", e.summary);
        let _ = writeln!(
            out,
            "- **Event** `{}` from {} — {} {}, severity {}, since {}",
            e.id,
            e.source,
            e.kind,
            e.status,
            e.severity,
            e.occurred_at.to_rfc3339()
        );
        let _ = writeln!(out, "- **Fingerprint** `{}`", e.fingerprint);
        match &self.service {
            Some(s) => {
                let from = s.from.as_deref().map(|f| format!(" (from {f})")).unwrap_or_default();
                let known = if s.known { "" } else { " — not in the catalog" };
                let _ = writeln!(out, "- **Service** {}{from}{known}", s.name);
                if let Some(c) = &s.catalog {
                    let facts: Vec<String> = [
                        c.tier.as_ref().map(|t| format!("tier {t}")),
                        c.stateless.map(|st| if st { "stateless".to_string() } else { "stateful".to_string() }),
                        c.system.as_ref().map(|x| format!("system {x}")),
                        c.repo.as_ref().map(|r| format!("repo {r}")),
                        c.runbook.as_ref().map(|r| format!("[runbook]({r})")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    if !facts.is_empty() {
                        let _ = writeln!(out, "  - {}", facts.join(" · "));
                    }
                }
                if let Some(o) = &s.owner {
                    let name = o.display_name.as_deref().unwrap_or(&o.reference);
                    let contact: Vec<&str> = [o.email.as_deref(), o.slack.as_deref()].into_iter().flatten().collect();
                    let contact = if contact.is_empty() { String::new() } else { format!(" ({})", contact.join(", ")) };
                    let _ = writeln!(out, "  - owner: {name}{contact}");
                }
                if let Some(on) = &s.oncall {
                    let _ = writeln!(out, "  - on call: {on}");
                }
            }
            None => {
                let _ = writeln!(out, "- **Service** unknown: no label names one");
            }
        }
        if !self.links.is_empty() {
            let _ = writeln!(out, "\n### Links\n");
            for l in &self.links {
                let _ = writeln!(out, "- {}: {}", l.rel, l.url);
            }
        }
        let _ = writeln!(out, "\n### Recent deploys (last {DEPLOYS_HOURS} h)\n");
        if self.recent_deploys.is_empty() {
            let _ = writeln!(out, "none known");
        }
        for d in &self.recent_deploys {
            let what = d.version.as_deref().or(d.commit.as_deref()).unwrap_or("unnamed version");
            let by = d.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
            let url = d.url.as_deref().map(|u| format!(" — {u}")).unwrap_or_default();
            let _ = writeln!(out, "- {} {what}{by}, {}{url}", d.at.to_rfc3339(), d.state.as_str());
        }
        let _ = writeln!(out, "\n### Has this happened before? (last {HISTORY_DAYS} days)\n");
        if self.past_incidents.is_empty() {
            let _ = writeln!(out, "no incident with this fingerprint");
        }
        for i in &self.past_incidents {
            let done = match (&i.fix, i.actions.is_empty()) {
                (Some(f), _) => format!("fix `{f}`"),
                (None, false) => format!("actions {}", i.actions.join(", ")),
                (None, true) => "escalated".into(),
            };
            let outcome = i.outcome.as_deref().unwrap_or("outcome unknown");
            let _ = writeln!(out, "- {} {} ({}): {done}, {outcome}", i.opened_at.to_rfc3339(), i.key, i.level);
        }
        let _ = writeln!(out, "\n### Impact\n");
        let names = |list: &[Related]| list.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ");
        if self.downstream.is_empty() {
            let _ = writeln!(out, "- downstream: none known");
        } else {
            let more = self.downstream_total.saturating_sub(self.downstream.len());
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            let _ = writeln!(out, "- downstream ({}): {}{more}", self.downstream_total, names(&self.downstream));
        }
        if !self.upstream.is_empty() {
            let _ = writeln!(out, "- depends on ({}): {}", self.upstream.len(), names(&self.upstream));
        }
        if let Some(a) = &self.analysis {
            let _ = writeln!(out, "\n### Analysis ({})\n", if a.analyzer.is_empty() { "given" } else { &a.analyzer });
            let _ = writeln!(out, "{}", a.summary);
            for ev in &a.evidence {
                let _ = writeln!(out, "- {ev}");
            }
            for p in &a.proposals {
                let _ = writeln!(out, "- proposal `{}` at {:.0}%: {}", p.generator, p.confidence, p.summary);
            }
            for n in &a.notes {
                let _ = writeln!(out, "- note: {n}");
            }
        }
        if let Some(d) = &self.decision {
            let by = d.playbook.as_deref().map(|p| format!(" by {p}")).unwrap_or_default();
            let _ = writeln!(out, "\n### What Sparky did\n");
            let _ = writeln!(out, "{}{by} (ruleset {})", d.level, d.ruleset);
            if let Some(key) = &d.incident {
                let escalated = d.escalation.as_deref().map(|p| format!(", escalated {p}")).unwrap_or_default();
                let _ = writeln!(out, "incident {key}{escalated}");
            }
            for r in &d.reasons {
                let _ = writeln!(out, "- {r}");
            }
            for g in &d.refused_guards {
                let _ = writeln!(out, "- refused: {g}");
            }
            if !d.considered.is_empty() {
                let _ = writeln!(out, "\nPlaybooks considered:\n");
                for c in &d.considered {
                    let _ = writeln!(out, "- {c}");
                }
            }
        }
        out
    }
}

fn decision_part(d: &Decision) -> DecisionPart {
    let mut considered = Vec::new();
    let mut refused_guards = Vec::new();
    for t in &d.trace {
        if t.verdict == Verdict::TriggerMismatch {
            continue;
        }
        considered.push(format!("{}: {}", t.playbook, t.verdict.as_str()));
        for g in t.guards.iter().filter(|g| !g.passed) {
            refused_guards.push(format!("{}: `{}` — {}", t.playbook, g.guard(), g.figure()));
        }
    }
    DecisionPart {
        level: d.level.as_str().into(),
        playbook: d.playbook.clone(),
        incident: d.incident.as_ref().map(|i| i.key.clone()),
        escalation: d.escalation.as_ref().map(|e| e.priority.clone()),
        reasons: d.reasons.clone(),
        considered,
        refused_guards,
        ruleset: d.ruleset.clone(),
    }
}
