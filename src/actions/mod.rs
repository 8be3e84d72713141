//! Actions: what an L1 response can do, one file per action.
//!
//! Each file holds one action: its metadata (name, what it does, typed parameters with their
//! docs, examples, how its blast radius is counted), a pure `plan()` that turns the filled-in
//! arguments into a [`Plan`] (or refuses: an empty or over-broad selector takes no action),
//! and an idempotent `apply()` that carries the plan out through [`Clients`]. `sparky check`
//! validates every `do` against the metadata; the executor (`crate::engine`) calls `plan()`
//! and, in live mode and when every guard passes, `apply()`. Dry-run, `explain`, `replay`
//! and `test` call `plan()` only.

pub mod clients;
mod command;
mod http_request;
mod k8s_delete_pod;
mod k8s_evict_pod;
mod k8s_rollout_restart;
mod k8s_scale;
mod kubernetes;
mod notify_slack;
mod notify_token_owners;
mod redis_delete_keys;
mod redis_flush;
pub mod reference;
pub mod text;

pub use clients::{ActionsConfig, Clients, Mode, Secret};
pub use notify_token_owners::{NAME as TOKEN_OWNERS, notice_policy};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// An action's arguments, filled in from the event (`triage::fill_all`).
pub type Args = BTreeMap<String, serde_json::Value>;

/// What `apply()` will do, computed without touching the world. It is what the audit log
/// records before the apply and what dry-run shows; it never holds a secret (headers and
/// URLs that carry one name it as `${secret:NAME}`, resolved only inside `apply()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `k8s.delete_pod`.
    pub action: String,
    /// The one thing it touches, stable across events: `kubernetes:prod/deployment/checkout`.
    /// One action in flight per target; the per-target rate counts by it.
    pub target: String,
    /// What `apply()` will do, step by step, in words for the on-call engineer.
    pub steps: Vec<String>,
    /// The normalized arguments `apply()` works from.
    pub args: Args,
    /// Which integration carries it out (`kubernetes`, `redis`, `http`, `slack`, `command`),
    /// for per-integration modes (`live`, `dry-run`).
    pub integration: String,
    /// Whether it changes the world (every action but notifications).
    pub mutating: bool,
}

/// Why an action cannot be planned: the selector is empty or too broad, an argument is out of
/// bounds. Nothing is applied; the event is escalated with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `apply()` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// One sentence: `deleted pod prod/checkout-7d9`, `pod prod/checkout-7d9 was already gone`.
    pub summary: String,
    /// The figures: keys deleted, replicas before and after, the status received.
    #[serde(default)]
    pub details: serde_json::Value,
}

/// Why `apply()` did not do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The system said no and means it (a PodDisruptionBudget answered 429, more keys match
    /// than allowed, the workload is already at its ceiling). Never retried, never worked
    /// around: the event is escalated.
    Refused(String),
    /// Worth another try after a pause: a timeout, a 5xx, a dropped connection.
    Transient(String),
    /// Will not work as configured: no credentials, a 403, a 404 on the workload.
    Failed(String),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Refused(m) => write!(f, "refused: {m}"),
            ApplyError::Transient(m) => write!(f, "failed (transient): {m}"),
            ApplyError::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

/// The future `apply()` returns.
pub type ApplyFuture<'a> = Pin<Box<dyn Future<Output = Result<Applied, ApplyError>> + Send + 'a>>;

/// `plan()`: pure.
pub type PlanFn = fn(&Args) -> Result<Plan, PlanError>;
/// `apply()`: idempotent for the same plan.
pub type ApplyFn = for<'a> fn(&'a Plan, &'a Clients) -> ApplyFuture<'a>;

/// The type of a parameter, as written in a playbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Text; may be a template such as `"user:{labels.user}:*"` or an event field.
    Str,
    /// A whole number.
    Int,
    /// A number, whole or not.
    Number,
    Bool,
    /// A duration such as `15m`.
    Duration,
    /// A list of strings.
    StrList,
    /// A list of durations.
    DurationList,
}

impl ParamType {
    pub fn describe(self) -> &'static str {
        match self {
            ParamType::Str => "a string",
            ParamType::Int => "an integer",
            ParamType::Number => "a number",
            ParamType::Bool => "a boolean",
            ParamType::Duration => "a duration",
            ParamType::StrList => "a list of strings",
            ParamType::DurationList => "a list of durations",
        }
    }
}

/// Where a parameter's value may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamSource {
    /// A literal, a template or an event field.
    Any,
    /// A literal only: bounds and ceilings are set in reviewed code, never by the alert.
    Literal,
}

/// One parameter of an action or fix generator.
#[derive(Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub source: ParamSource,
    /// The parameter names what the action touches: it must be bound by the event (W306).
    pub target: bool,
    /// The values a string parameter may take; empty means any.
    pub choices: &'static [&'static str],
    /// The smallest and largest value a number parameter may take, both included.
    pub range: Option<(f64, f64)>,
    /// What a value from the event becomes in a string parameter (see [`text`]).
    pub text: text::TextKind,
    pub doc: &'static str,
}

impl ParamSpec {
    /// A required parameter that takes literals, templates and event fields; narrow it with
    /// the methods below.
    pub const fn new(name: &'static str, ty: ParamType, doc: &'static str) -> Self {
        ParamSpec {
            name,
            ty,
            required: true,
            source: ParamSource::Any,
            target: false,
            choices: &[],
            range: None,
            text: text::TextKind::Plain,
            doc,
        }
    }

    pub const fn optional(self) -> Self {
        ParamSpec { required: false, ..self }
    }

    /// Only a literal: for bounds and ceilings.
    pub const fn literal(self) -> Self {
        ParamSpec { source: ParamSource::Literal, ..self }
    }

    /// Names what the action touches (W306 wants it bound by the event).
    pub const fn target(self) -> Self {
        ParamSpec { target: true, ..self }
    }

    pub const fn choices(self, choices: &'static [&'static str]) -> Self {
        ParamSpec { choices, ..self }
    }

    pub const fn range(self, min: f64, max: f64) -> Self {
        ParamSpec { range: Some((min, max)), ..self }
    }

    /// The kind of text a value from the event is made into (escaped, or refused).
    pub const fn text(self, text: text::TextKind) -> Self {
        ParamSpec { text, ..self }
    }
}

/// How many things one run of an action touches, for `guard blast_radius`.
#[derive(Debug)]
pub struct Radius {
    pub count: RadiusCount,
    /// The count in words, for the reference.
    pub doc: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub enum RadiusCount {
    Fixed(u64),
    /// The absolute value of an integer parameter (always a literal: see `ParamSpec::literal`).
    Param(&'static str),
}

/// The metadata of one action.
#[derive(Debug)]
pub struct ActionSpec {
    /// `k8s.delete_pod`.
    pub name: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    /// Whether it changes the world (every action but notifications).
    pub mutating: bool,
    /// Whether applying the same plan twice does what applying it once does (a delete, a
    /// restart stamped with the execution's start). Only these are retried after a
    /// transient error: a timeout may come after the other side acted.
    pub idempotent: bool,
    /// How its blast radius (for `guard blast_radius`) is counted.
    pub blast_radius: Radius,
    pub params: &'static [ParamSpec],
    /// Calls as a playbook writes them.
    pub examples: &'static [&'static str],
    /// Which integration carries it out (`kubernetes`, `redis`, `http`, `slack`, `command`).
    pub integration: &'static str,
    pub plan: PlanFn,
    pub apply: ApplyFn,
}

impl ActionSpec {
    /// The plan for `args`, checked against this action's parameters first.
    pub fn plan(&self, args: &Args) -> Result<Plan, PlanError> {
        (self.plan)(args)
    }
}

/// A string argument; `None` when absent or not a string.
pub fn arg_str<'a>(args: &'a Args, name: &str) -> Option<&'a str> {
    args.get(name).and_then(|v| v.as_str())
}

/// A required, non-blank string argument: an empty selector takes no action.
pub fn required_str<'a>(args: &'a Args, name: &str, action: &str) -> Result<&'a str, PlanError> {
    match arg_str(args, name) {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(PlanError(format!("{action}: `{name}` is empty, so there is nothing to act on"))),
        None => Err(PlanError(format!("{action}: `{name}` is missing"))),
    }
}

/// An integer argument; `None` when absent.
pub fn arg_i64(args: &Args, name: &str) -> Option<i64> {
    args.get(name).and_then(|v| v.as_i64())
}

/// Every action, sorted by name.
pub fn all() -> &'static [&'static ActionSpec] {
    static ALL: [&ActionSpec; 10] = [
        &command::SPEC,
        &http_request::SPEC,
        &k8s_delete_pod::SPEC,
        &k8s_evict_pod::SPEC,
        &k8s_rollout_restart::SPEC,
        &k8s_scale::SPEC,
        &notify_slack::SPEC,
        &notify_token_owners::SPEC,
        &redis_delete_keys::SPEC,
        &redis_flush::SPEC,
    ];
    &ALL
}

/// The action called `name`.
pub fn find(name: &str) -> Option<&'static ActionSpec> {
    all().iter().copied().find(|a| a.name == name)
}

/// The plan as one execution applies it: an action that writes the current time (a rollout
/// restart's `restartedAt`) gets the execution's start instead, so that a retried apply of
/// the same execution writes the same value and finds it already done; an action that
/// raises incidents of its own (`notify.token_owners`) gets the run it belongs to (`run`:
/// [`clients::RunRef`]), whose playbook's `l3` settings they take.
pub fn for_execution(plan: &Plan, started_at: chrono::DateTime<chrono::Utc>, run: &clients::RunRef) -> Plan {
    let mut plan = plan.clone();
    if plan.action == k8s_rollout_restart::NAME && !plan.args.contains_key("restarted_at") {
        let at = started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        plan.args.insert("restarted_at".into(), serde_json::Value::String(at));
    }
    if plan.action == notify_token_owners::NAME {
        plan.args.insert("run".into(), serde_json::json!(run));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_sorted_unique_and_documented() {
        let names: Vec<_> = all().iter().map(|a| a.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        for a in all() {
            assert!(!a.summary.is_empty() && !a.examples.is_empty(), "{}", a.name);
            assert!(a.params.iter().all(|p| !p.doc.is_empty()), "{}", a.name);
        }
    }

    #[test]
    fn a_restart_is_stamped_with_the_execution_start_and_other_plans_are_left_alone() {
        let args = |pairs: &[(&str, &str)]| -> Args {
            pairs.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect()
        };
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-29T03:00:00.250Z").unwrap().to_utc();
        let restart =
            find("k8s.rollout_restart").unwrap().plan(&args(&[("namespace", "prod"), ("name", "web")])).unwrap();
        let run = clients::RunRef { playbook: "PB-001".into(), execution: "ex-1".into() };
        let stamped = for_execution(&restart, start, &run);
        assert_eq!(stamped.args["restarted_at"], "2026-11-29T03:00:00Z");
        // Twice the same: a retry writes the same annotation.
        assert_eq!(for_execution(&restart, start, &run), stamped);
        let given = args(&[("namespace", "prod"), ("name", "web"), ("restarted_at", "2024-05-01T03:00:00Z")]);
        let given = find("k8s.rollout_restart").unwrap().plan(&given).unwrap();
        assert_eq!(for_execution(&given, start, &run).args["restarted_at"], "2024-05-01T03:00:00Z");
        let delete = find("k8s.delete_pod").unwrap().plan(&args(&[("namespace", "prod"), ("pod", "web-1")])).unwrap();
        assert_eq!(for_execution(&delete, start, &run), delete);
    }
}
