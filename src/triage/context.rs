//! What `decide` knows besides the event: run history, open incidents, pauses (the kill
//! switch), the analyzer's opinion, the knowledge snapshot that `kg::` functions read, and
//! the settings. All of it is gathered before deciding; nothing here does I/O.
//!
//! [`TriageContext`] is the interface; [`super::MemoryContext`] holds it in memory (for
//! `sparky explain --context`, replays and test suites). The store and the knowledge graph
//! back it in the daemon.

use crate::event::Severity;
use crate::script::ContextView;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How an L1 run of a playbook ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied and verified.
    Success,
    /// Applied, and the verification failed (or the action did).
    Failure,
    /// Applied, verification still running.
    Pending,
    /// Planned only (a draft playbook): counts for its own cooldowns and rates, never for
    /// its success rate.
    Planned,
    /// Carried out in dry-run mode (guarded and audited, not applied): counts for cooldowns
    /// and rates, as the live run would have, never for the success rate.
    DryRun,
    /// Refused at execution time (a pause, a freeze, the target busy, the budget spent):
    /// nothing was done, so it counts for nothing.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Pending => "pending",
            Outcome::Planned => "planned",
            Outcome::DryRun => "dry_run",
            Outcome::Refused => "refused",
        }
    }

    /// The outcome written `text` (`pending` for anything unknown: it counts as a run
    /// without counting as a success).
    pub fn parse(text: &str) -> Outcome {
        match text {
            "success" => Outcome::Success,
            "failure" => Outcome::Failure,
            "planned" => Outcome::Planned,
            "dry_run" => Outcome::DryRun,
            "refused" => Outcome::Refused,
            _ => Outcome::Pending,
        }
    }
}

/// One L1 run of a playbook, as the guards see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub at: DateTime<Utc>,
    /// The value of each `cooldown ... per <field>` field at the time, by field (`labels.pod`).
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    pub outcome: Outcome,
    /// The incident the run was for (a re-fire inside its verification window makes the
    /// run a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

/// An incident Sparky has open for a fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    /// The incident key: one Jira issue, one PagerDuty incident, one pull request per key.
    pub key: String,
    pub fingerprint: String,
    pub opened_at: DateTime<Utc>,
    /// The level that opened it (`L1`, `L2`, `L3`).
    pub level: String,
    pub playbook: Option<String>,
}

/// A pause: the kill switch for every L1, or a scoped one. Each scope that is set must match
/// (`service=checkout` and `playbook=PB-001` together pause that playbook for that service);
/// none set pauses every playbook's L1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Set by the circuit breaker (failed verifications), not by a person.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub breaker: bool,
    pub reason: String,
    #[serde(default)]
    pub by: Option<String>,
    /// Open-ended when `None`.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

impl Pause {
    /// Whether it stops `playbook`'s L1 for an event of `service` in `namespace` at `now`.
    pub fn applies(&self, playbook: &str, service: Option<&str>, namespace: Option<&str>, now: DateTime<Utc>) -> bool {
        self.playbook.as_deref().is_none_or(|p| p == playbook)
            && self.service.as_deref().is_none_or(|s| Some(s) == service)
            && self.namespace.as_deref().is_none_or(|n| Some(n) == namespace)
            && self.until.is_none_or(|u| now < u)
    }

    /// The keys a scope may name.
    pub const SCOPES: &'static [&'static str] = &["playbook", "service", "namespace"];

    /// `service=checkout` ... into a pause's scope; the error says which one is wrong.
    pub fn parse_scope(scopes: &[String]) -> Result<Pause, String> {
        let mut p = Pause::default();
        for s in scopes {
            let Some((k, v)) = s.split_once('=').map(|(k, v)| (k.trim(), v.trim())).filter(|(_, v)| !v.is_empty())
            else {
                return Err(format!("`--scope {s}` is not `key=value`; write e.g. `--scope service=checkout`"));
            };
            let slot = match k {
                "playbook" => &mut p.playbook,
                "service" => &mut p.service,
                "namespace" => &mut p.namespace,
                _ => {
                    let hint = crate::diagnostics::did_you_mean(k, Pause::SCOPES.iter().copied())
                        .map(|m| format!(" (did you mean `{m}`?)"))
                        .unwrap_or_default();
                    return Err(format!(
                        "`{k}` is not a scope{hint}; use {}",
                        crate::diagnostics::quoted_list(Pause::SCOPES)
                    ));
                }
            };
            if slot.replace(v.to_string()).is_some() {
                return Err(format!("`--scope {k}=` is given twice"));
            }
        }
        Ok(p)
    }

    /// The guard that refuses for it: a person's pause or the circuit breaker.
    pub fn guard(&self) -> &'static str {
        if self.breaker { "circuit breaker" } else { "kill switch" }
    }

    /// The figure a refusal shows: `service=checkout is paused by alice until …: reason`.
    pub fn describe(&self) -> String {
        let by = self.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
        let until = self.until.map(|u| format!(" until {}", u.to_rfc3339())).unwrap_or_default();
        format!("{} is paused{by}{until}: {}", self.scope(), self.reason)
    }

    /// `all L1`, or the scopes: `service=checkout, playbook=PB-001`.
    pub fn scope(&self) -> String {
        let parts: Vec<String> =
            [("playbook", &self.playbook), ("service", &self.service), ("namespace", &self.namespace)]
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                .collect();
        if parts.is_empty() { "all L1".into() } else { parts.join(", ") }
    }
}

/// A fix the analyzer proposes for the event: what an L2 fix generator acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The fix generator that would write it (`revert`, `memory_limit`, ...).
    pub generator: String,
    /// Percent, 0..=100.
    pub confidence: f64,
    pub summary: String,
    /// The generator's arguments as the analysis sees them (the deploy to revert, the
    /// container); bounds come only from the playbook's `l2` block.
    #[serde(default)]
    pub args: BTreeMap<String, serde_json::Value>,
}

/// What the event is likely to affect beyond its own service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// Services that depend on the event's service, nearest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downstream: Vec<String>,
    /// How bad it is likely to get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// What the analyzer said about the event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Who answered: `builtin`, or `remote <model>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub analyzer: String,
    #[serde(default)]
    pub summary: String,
    /// The likely root cause, in a sentence; `None` when the evidence points nowhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    /// Confidence in the root cause, percent.
    #[serde(default)]
    pub confidence: f64,
    #[serde(default)]
    pub impact: Impact,
    /// The facts the analysis rests on, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub proposals: Vec<Proposal>,
    /// What happened on the way: a remote analyzer that timed out or answered badly, and the
    /// fallback used instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Settings that shape decisions, from the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Events no playbook claims are escalated at or above this severity, observed below it.
    pub escalate_at: Severity,
    /// Whether events no playbook claims are escalated at all (at or above `escalate_at`),
    /// so that nothing critical falls through; off, they are recorded only.
    pub escalate_unmatched: bool,
    /// The confidence (percent) a fix proposal needs for L2 when the deciding playbook has
    /// no `l2` block of its own.
    pub l2_min_confidence: f64,
    /// Whether an analysis is asked for at all (when it could turn an L3 into an L2).
    pub analysis: bool,
    /// A firing event whose fingerprint was decided less than this long ago, with no
    /// incident open (an `observe`) and no resolution since, is attached to that decision
    /// instead of being triaged again (`0s` turns grouping off).
    pub group_window: Span,
    /// When a fingerprint flaps (see `triage::lifecycle`).
    pub flapping: super::lifecycle::Flapping,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            escalate_at: Severity::High,
            escalate_unmatched: true,
            l2_min_confidence: 90.0,
            analysis: true,
            group_window: Span::minutes(5),
            flapping: super::lifecycle::Flapping::default(),
        }
    }
}

/// A length of time in settings, written as a duration (`5m`, `1h`, `0s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub millis: u64,
}

impl Span {
    pub const fn minutes(n: u64) -> Span {
        Span { millis: n * 60_000 }
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::dsl::ast::Duration { millis: self.millis }.fmt(f)
    }
}

impl std::str::FromStr for Span {
    type Err = String;
    fn from_str(text: &str) -> Result<Span, String> {
        crate::dsl::parse_duration(text.trim())
            .map(|millis| Span { millis })
            .ok_or_else(|| format!("`{text}` is not a duration; write one such as `5m`, `1h` or `0s`"))
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything `decide` may read besides the event, the rule graph and the time.
pub trait TriageContext {
    /// The knowledge snapshot that `kg::` functions read.
    fn knowledge(&self) -> &Arc<dyn ContextView>;
    /// The L1 runs of `playbook`, any order.
    fn runs(&self, playbook: &str) -> &[Run];
    /// The incident open for `fingerprint`, if any.
    fn open_incident(&self, fingerprint: &str) -> Option<&OpenIncident>;
    /// Every pause in force or not; `decide` checks which apply at `now`.
    fn pauses(&self) -> &[Pause];
    /// The analyzer's opinion, when it was gathered for this event.
    fn analysis(&self) -> Option<&Analysis>;
    fn settings(&self) -> &Settings;
    /// What is remembered of `fingerprint` (its state changes, its last decision), with the
    /// event being decided already counted (see `lifecycle::arrive`).
    fn track(&self, fingerprint: &str) -> Option<&super::lifecycle::Track>;
    /// The open incident under `key` (for echoes of Sparky's own pages).
    fn incident(&self, key: &str) -> Option<&OpenIncident>;
}
