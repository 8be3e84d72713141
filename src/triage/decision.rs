//! The decision and its trace: what Sparky will do with an event, and why.

use crate::knowledge::PastIncident;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The answer to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Level {
    /// A trusted, guarded remediation.
    L1,
    /// A code-level fix, opened as a pull request.
    L2,
    /// An escalation to people: a Jira ticket and, if configured, a page.
    L3,
    /// Recorded; nothing to do.
    #[serde(rename = "observe")]
    Observe,
    /// A repeat of something already being handled.
    #[serde(rename = "suppressed")]
    Suppressed,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::L1, Level::L2, Level::L3, Level::Observe, Level::Suppressed];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::L1 => "L1",
            Level::L2 => "L2",
            Level::L3 => "L3",
            Level::Observe => "observe",
            Level::Suppressed => "suppressed",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an L1 decision is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum L1Mode {
    /// Applied by the executor.
    Apply,
    /// The playbook has not earned trust yet (fewer runs than its `success_rate` guard asks):
    /// the plan waits for a person's approval, and the event is escalated meanwhile.
    AwaitApproval,
    /// A draft playbook: planned and recorded, never applied; the event is escalated as if
    /// the playbook had no L1.
    PlanOnly,
}

impl L1Mode {
    /// The run a decision in this mode records for its playbook, which its cooldown and
    /// `at_most` guards count: `applied` when applied; `pending` while a plan awaits approval
    /// (it stands for the action a person may approve; a rejection or expiry makes it
    /// `refused`, which no guard counts); `planned` for a draft.
    pub fn run_outcome(self, applied: super::Outcome) -> super::Outcome {
        match self {
            L1Mode::Apply => applied,
            L1Mode::AwaitApproval => super::Outcome::Pending,
            L1Mode::PlanOnly => super::Outcome::Planned,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            L1Mode::Apply => "apply",
            L1Mode::AwaitApproval => "await_approval",
            L1Mode::PlanOnly => "plan_only",
        }
    }
}

/// One action of an L1 plan: the action's own plan (its arguments filled in from the event,
/// its target, its steps in words) and its blast radius.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    #[serde(flatten)]
    pub plan: crate::actions::Plan,
    /// How many things it touches, as its guard counts them.
    pub blast_radius: u64,
}

impl fmt::Display for PlannedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = self
            .plan
            .args
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k} = {s:?}"),
                other => format!("{k} = {other}"),
            })
            .collect();
        write!(f, "{}({})", self.plan.action, args.join(", "))
    }
}

/// The fix an L2 decision asks a generator for.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PlannedFix {
    pub generator: String,
    /// Percent.
    pub confidence: f64,
    /// The threshold it met, percent.
    pub threshold: f64,
    pub summary: String,
    /// The generator's arguments (its bounds), from the playbook's `l2` block only.
    pub args: BTreeMap<String, serde_json::Value>,
    /// What the analyzer proposes within those bounds (the diff, the value, the commit).
    pub proposal: BTreeMap<String, serde_json::Value>,
}

/// Who is told, and how loudly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    /// `P1` .. `P4`.
    pub priority: String,
    pub jira_project: Option<String>,
    pub page: bool,
}

/// What the decision does to the incident of the event's fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentEffect {
    /// Opens a new incident under `key`.
    Open,
    /// Adds to the open incident (a repeat, an acknowledgement).
    Update,
    /// Closes it (the source resolved).
    Close,
}

impl IncidentEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentEffect::Open => "open",
            IncidentEffect::Update => "update",
            IncidentEffect::Close => "close",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentChange {
    pub key: String,
    pub effect: IncidentEffect,
}

/// Whether the analyzer's opinion played a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisUse {
    /// It could not change the outcome, or analysis is off.
    NotNeeded,
    /// It could turn this L3 into an L2: gather it and decide again.
    Wanted,
    /// This decision was made with it.
    Used,
}

/// What `decide` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub level: Level,
    /// The deciding playbook.
    pub playbook: Option<String>,
    /// For L1: how the plan is carried out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<L1Mode>,
    /// Why, in sentences for the on-call engineer.
    pub reasons: Vec<String>,
    /// For L1: the planned actions.
    pub actions: Vec<PlannedAction>,
    /// For L1: how the outcome is verified (`resolved within 10m`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verify: Vec<String>,
    /// For L2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<PlannedFix>,
    /// For L3, and alongside an L1 that is not applied yet (awaiting approval, draft).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentChange>,
    pub analysis: AnalysisUse,
    /// The ruleset hash of the rule graph that decided.
    pub ruleset: String,
    pub decided_at: DateTime<Utc>,
    /// Every playbook considered, in triage order.
    #[serde(skip)]
    pub trace: Vec<TraceEntry>,
    /// When the decision was made twice (without, then with the analysis): the first pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_pass: Option<FirstPass>,
    /// What the analyzer said, when the decision asked it (the second pass): its evidence,
    /// its proposals, and whether a remote analyzer failed and the built-in one answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyzer: Option<super::Analysis>,
    /// Which service the event is about, and which label said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<crate::knowledge::ServiceMatch>,
    /// When the event's fingerprint flaps: its state changes within the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flapping: Option<super::lifecycle::FlapReport>,
}

impl Decision {
    /// The incident this decision opens, as "has this happened before?" will remember it.
    pub fn opened_incident(&self, event: &crate::event::Event, now: DateTime<Utc>) -> Option<PastIncident> {
        let change = self.incident.as_ref().filter(|c| c.effect == IncidentEffect::Open)?;
        Some(PastIncident {
            key: change.key.clone(),
            fingerprint: event.fingerprint.clone(),
            service: event.service.clone(),
            opened_at: now,
            closed_at: None,
            level: self.level.as_str().to_string(),
            playbook: self.playbook.clone(),
            summary: event.summary.clone(),
            actions: self.actions.iter().map(|a| a.plan.action.clone()).collect(),
            fix: self.fix.as_ref().map(|f| f.generator.clone()),
            outcome: None,
            flapping: self.flapping.is_some(),
        })
    }

    /// `observe` with nothing planned yet, by `graph` at `now`: where every decision starts.
    pub fn blank(graph: &crate::graph::RuleGraph, now: DateTime<Utc>) -> Decision {
        Decision {
            level: Level::Observe,
            playbook: None,
            mode: None,
            reasons: Vec::new(),
            actions: Vec::new(),
            verify: Vec::new(),
            fix: None,
            escalation: None,
            incident: None,
            analysis: AnalysisUse::NotNeeded,
            ruleset: graph.hash().to_string(),
            decided_at: now,
            trace: Vec::new(),
            service: None,
            analyzer: None,
            first_pass: None,
            flapping: None,
        }
    }

    /// The event with this decision and its trace, as `sparky explain --format json` shows
    /// one event and the daemon stores it.
    pub fn explained(&self, event: &crate::event::Event) -> serde_json::Value {
        serde_json::json!({
            "id": event.id,
            "source": event.source,
            "kind": event.kind.as_str(),
            "status": event.status.as_str(),
            "fingerprint": event.fingerprint,
            "service": event.service,
            "severity": event.severity.as_str(),
            "summary": event.summary,
            "decision": self,
            "trace": self.trace,
        })
    }
}

/// The first of two passes, kept in the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstPass {
    pub level: Level,
    pub reasons: Vec<String>,
}

/// Why a playbook did or did not decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Its trigger and condition hold: it decides.
    Decides,
    /// It matches too, but a playbook earlier in triage order decided.
    Shadowed,
    /// A trigger matcher failed (see `mismatches`).
    TriggerMismatch,
    /// The trigger matched; the condition is false.
    ConditionFalse,
    /// The trigger matched; the condition failed or hit a limit (see `condition.error`).
    ConditionError,
    /// `status disabled`.
    Disabled,
    /// Only schedule triggers, and this is not its schedule's event.
    NotScheduled,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Decides => "decides",
            Verdict::Shadowed => "shadowed",
            Verdict::TriggerMismatch => "trigger mismatch",
            Verdict::ConditionFalse => "condition false",
            Verdict::ConditionError => "condition error",
            Verdict::Disabled => "disabled",
            Verdict::NotScheduled => "not scheduled",
        }
    }
}

/// The first matcher of a trigger that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// 1-based position of the `on` statement in the playbook.
    pub trigger: usize,
    pub field: String,
    /// The matcher, as written (`labels.namespace =~ "^prod"`).
    pub expected: String,
    /// The event's value; `None` when the field is missing.
    pub actual: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.actual {
            Some(a) => write!(f, "expected {}, got {a:?}", self.expected),
            None => write!(f, "expected {}, but {} is missing", self.expected, self.field),
        }
    }
}

/// What the condition gave.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionResult {
    pub value: Option<bool>,
    pub error: Option<String>,
}

pub use super::guards::{GuardCheck, GuardFigure};

/// One playbook in the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceEntry {
    pub playbook: String,
    pub priority: i64,
    pub verdict: Verdict,
    /// 1-based position of the trigger that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<Mismatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardCheck>,
    /// Why the L1 could not even be planned (a template field missing, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_error: Option<String>,
}
