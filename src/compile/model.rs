//! Compiled playbooks: names resolved, values typed, regexes and conditions compiled. This is
//! what the rule graph is built from.

use crate::actions::ActionSpec;
use crate::diagnostics::{SourceFile, Span};
use crate::dsl::ast::{self, Duration};
use crate::fix::GeneratorSpec;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Lifecycle of a playbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Decides and acts.
    Active,
    /// Decides; its L1 is planned and recorded, never applied.
    Draft,
    /// Ignored by triage; still checked.
    Disabled,
}

impl Status {
    pub const NAMES: [&'static str; 3] = ["active", "draft", "disabled"];

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "active" => Some(Status::Active),
            "draft" => Some(Status::Draft),
            "disabled" => Some(Status::Disabled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Status::NAMES[self as usize]
    }
}

/// A field of the normalized event, as matchers, guards and arguments name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// A top-level field: `service`, `severity`, `status`, ...
    Top(&'static str),
    Label(String),
    Annotation(String),
    /// A path into the original payload: `payload.commonLabels.team`.
    Payload(Vec<String>),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = |prefix: &str, segs: &[String]| {
            let mut out = prefix.to_string();
            for s in segs {
                if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !s.is_empty() {
                    out.push('.');
                    out.push_str(s);
                } else {
                    out.push_str(&format!("[{s:?}]"));
                }
            }
            out
        };
        match self {
            Field::Top(name) => f.write_str(name),
            Field::Label(k) => f.write_str(&path("labels", std::slice::from_ref(k))),
            Field::Annotation(k) => f.write_str(&path("annotations", std::slice::from_ref(k))),
            Field::Payload(p) => f.write_str(&path("payload", p)),
        }
    }
}

/// A literal value a field is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// What a matcher checks.
#[derive(Debug, Clone)]
pub enum Test {
    Eq(Scalar),
    Ne(Scalar),
    /// Any of the values (a list literal or a named list, expanded).
    In(Vec<Scalar>),
    NotIn(Vec<Scalar>),
    Matches(regex::Regex),
    NotMatches(regex::Regex),
    /// Numeric comparison; the field's text is read as a number.
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    Exists,
    Missing,
}

#[derive(Debug, Clone)]
pub struct CompiledMatcher {
    pub field: Field,
    pub test: Test,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum CompiledTrigger {
    /// `kind: None` for `on any`; `source: None` when no `from`.
    Event {
        kind: Option<String>,
        source: Option<String>,
        matchers: Vec<CompiledMatcher>,
        span: Span,
    },
    Every {
        period: Duration,
        span: Span,
    },
    Cron {
        expr: String,
        tz: String,
        span: Span,
    },
}

/// A compiled rhai condition.
#[derive(Clone)]
pub struct Condition {
    pub ast: Arc<rhai::AST>,
    pub source: ast::RhaiSource,
    /// The fields of `event` the condition may read: only those are made for rhai.
    pub reads: crate::script::event::Reads,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition").field("source", &self.source.text).finish()
    }
}

/// One piece of a template string: literal text or an event field.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    Text(String),
    Field(Field),
}

/// A typed argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    /// A string, possibly with `{field}` placeholders.
    Template(Vec<TemplatePart>),
    Field(Field),
    Int(i64),
    Float(f64),
    Bool(bool),
    Duration(Duration),
    List(Vec<ArgValue>),
}

impl ArgValue {
    /// Whether the value depends on the event (a field, or a template with a field in it).
    pub fn is_bound_by_event(&self) -> bool {
        match self {
            ArgValue::Field(_) => true,
            ArgValue::Template(parts) => parts.iter().any(|p| matches!(p, TemplatePart::Field(_))),
            ArgValue::List(items) => !items.is_empty() && items.iter().all(ArgValue::is_bound_by_event),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ActionCall {
    pub action: &'static ActionSpec,
    pub args: BTreeMap<String, ArgValue>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct FixCall {
    pub generator: &'static GeneratorSpec,
    pub args: BTreeMap<String, ArgValue>,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct Guards {
    /// `(minimum percent, window, minimum runs)`.
    pub success_rate: Option<(f64, Duration, u64)>,
    pub blast_radius: Option<u64>,
    /// `(period, per key)`; no key means per playbook.
    pub cooldowns: Vec<(Duration, Option<Field>)>,
    /// `(count, window)`.
    pub at_most: Vec<(u64, Duration)>,
    /// `guard when { ... }`: conditions that must hold for the L1 to run.
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub enum VerifyStep {
    Resolved { within: Duration },
    Delivered,
    When { condition: Condition, within: Duration },
    Probe { url: String, status: u16, within: Duration },
}

#[derive(Debug, Clone)]
pub struct L1Response {
    pub title: Option<String>,
    pub guards: Guards,
    pub actions: Vec<ActionCall>,
    pub verify: Vec<VerifyStep>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct L2Response {
    pub title: Option<String>,
    pub fixes: Vec<FixCall>,
    /// Percent, 0..=100.
    pub min_confidence: f64,
    pub span: Span,
}

/// L3 settings; every playbook has them (defaults when there is no `l3` statement).
#[derive(Debug, Clone, PartialEq)]
pub struct L3Response {
    /// 1..=4.
    pub priority: u8,
    pub jira_project: Option<String>,
    pub page: bool,
    pub span: Option<Span>,
}

impl Default for L3Response {
    fn default() -> Self {
        L3Response { priority: 3, jira_project: None, page: true, span: None }
    }
}

/// A playbook ready for the rule graph.
#[derive(Debug, Clone)]
pub struct CompiledPlaybook {
    pub id: String,
    pub title: String,
    pub docs: String,
    pub status: Status,
    pub owner: String,
    /// Higher first among playbooks matching the same event.
    pub priority: i64,
    pub tags: Vec<String>,
    pub triggers: Vec<CompiledTrigger>,
    pub condition: Option<Condition>,
    pub l1: Option<L1Response>,
    pub l2: Option<L2Response>,
    pub l3: L3Response,
    pub file: Arc<SourceFile>,
    /// The playbook as written, for spans and lints.
    pub ast: ast::Playbook,
}
