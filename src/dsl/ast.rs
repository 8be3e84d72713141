//! The playbook AST: what the text says, with a span on every node. Nothing here is checked
//! beyond syntax; the compiler (`src/compile/`) resolves names and types.

use crate::diagnostics::Span;
use std::fmt;

/// A value with the span of the text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

/// A parsed `.sparky` file.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Playbook(Playbook),
    List(ListDef),
    Helper(HelperDef),
}

/// `///` documentation lines, without the `///` and one following space.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Docs {
    pub lines: Vec<String>,
    pub span: Span,
}

impl Docs {
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.trim().is_empty())
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// `list NAME = [ ... ]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListDef {
    pub docs: Docs,
    pub name: Spanned<String>,
    pub values: Vec<Value>,
    pub span: Span,
}

/// `fn NAME(params) { rhai }`; `source` is the whole definition as rhai reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct HelperDef {
    pub docs: Docs,
    pub name: Spanned<String>,
    pub params: Vec<Spanned<String>>,
    pub source: RhaiSource,
    pub span: Span,
}

/// Rhai text taken verbatim from the file, with the byte offset where it starts so that rhai's
/// line and column can be mapped back into the `.sparky` file.
#[derive(Debug, Clone, PartialEq)]
pub struct RhaiSource {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub docs: Docs,
    pub id: Spanned<String>,
    pub title: Spanned<String>,
    pub entries: Vec<Entry>,
    pub span: Span,
}

/// One statement directly inside a playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: EntryKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    Status(Spanned<String>),
    Owner(Spanned<String>),
    Priority(Spanned<i64>),
    Tags(Vec<Value>),
    Trigger(Trigger),
    When(RhaiSource),
    L1(L1Block),
    L2(L2Block),
    L3(L3Block),
}

impl EntryKind {
    /// The keyword that starts the statement, for messages.
    pub fn keyword(&self) -> &'static str {
        match self {
            EntryKind::Status(_) => "status",
            EntryKind::Owner(_) => "owner",
            EntryKind::Priority(_) => "priority",
            EntryKind::Tags(_) => "tags",
            EntryKind::Trigger(_) => "on",
            EntryKind::When(_) => "when",
            EntryKind::L1(_) => "l1",
            EntryKind::L2(_) => "l2",
            EntryKind::L3(_) => "l3",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// `on <kind> [from <source>] [{ matchers }]`.
    Event { kind: Spanned<String>, source: Option<Spanned<String>>, matchers: Vec<Matcher> },
    /// `on schedule every <duration>`.
    Every(Spanned<Duration>),
    /// `on schedule cron "<expr>" [tz "<zone>"]`.
    Cron { expr: Spanned<String>, tz: Option<Spanned<String>> },
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub field: FieldPath,
    pub op: Spanned<MatchOp>,
    /// Absent for `exists` and `missing`.
    pub value: Option<Value>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Eq,
    Ne,
    Matches,
    NotMatches,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Exists,
    Missing,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "==",
            MatchOp::Ne => "!=",
            MatchOp::Matches => "=~",
            MatchOp::NotMatches => "!~",
            MatchOp::Lt => "<",
            MatchOp::Le => "<=",
            MatchOp::Gt => ">",
            MatchOp::Ge => ">=",
            MatchOp::In => "in",
            MatchOp::NotIn => "not in",
            MatchOp::Exists => "exists",
            MatchOp::Missing => "missing",
        }
    }
}

/// `labels.pod`, `labels["app.kubernetes.io/name"]`, `severity`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    pub segments: Vec<String>,
    pub span: Span,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments.iter().enumerate() {
            let plain = !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            match (i, plain) {
                (0, _) => f.write_str(seg)?,
                (_, true) => write!(f, ".{seg}")?,
                (_, false) => write!(f, "[{seg:?}]")?,
            }
        }
        Ok(())
    }
}

/// A span of time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    pub millis: u64,
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Days at most: `30d` reads better than `4w2d`, and is how guards are usually written.
        const UNITS: [(u64, &str); 5] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms")];
        if self.millis == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.millis;
        for (size, unit) in UNITS {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    Str(String),
    Duration(Duration),
    /// `99%` is stored as `99.0`.
    Percent(f64),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Value>),
    /// A bare name or path: an event field, or the name of a list.
    Path(FieldPath),
}

impl ValueKind {
    /// What the value is, in words, for type errors.
    pub fn describe(&self) -> &'static str {
        match self {
            ValueKind::Str(_) => "a string",
            ValueKind::Duration(_) => "a duration",
            ValueKind::Percent(_) => "a percentage",
            ValueKind::Int(_) => "an integer",
            ValueKind::Float(_) => "a number",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::List(_) => "a list",
            ValueKind::Path(_) => "a name",
        }
    }
}

/// `l1 "title" { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct L1Block {
    pub title: Option<Spanned<String>>,
    pub guards: Vec<Guard>,
    pub actions: Vec<Call>,
    pub verify: Vec<Verify>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    pub kind: GuardKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GuardKind {
    /// `success_rate >= 99% over 30d min 20 runs`.
    SuccessRate { min_percent: Spanned<f64>, window: Spanned<Duration>, min_runs: Spanned<u64> },
    /// `blast_radius <= 1`.
    BlastRadius { max: Spanned<u64> },
    /// `cooldown 15m [per labels.pod]`.
    Cooldown { period: Spanned<Duration>, per: Option<FieldPath> },
    /// `at_most 5 per 1h`.
    AtMost { count: Spanned<u64>, window: Spanned<Duration> },
    /// `when { <rhai> }`.
    When { condition: RhaiSource },
}

/// `name(arg = value, ...)`: an action or a fix generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: Spanned<String>,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Spanned<String>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verify {
    pub kind: VerifyKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VerifyKind {
    /// The event's own resolution within the deadline proves the fix.
    Resolved { within: Spanned<Duration> },
    /// The action's own acknowledgement is the proof (notifications).
    Delivered,
    /// A condition over fresh context must hold within the deadline.
    When { condition: RhaiSource, within: Spanned<Duration> },
    /// An HTTP GET of the URL answers the status within the deadline.
    Probe { url: Spanned<String>, status: Option<Spanned<u64>>, within: Spanned<Duration> },
}

/// `l2 "title" { fix ...  min_confidence 80% }`.
#[derive(Debug, Clone, PartialEq)]
pub struct L2Block {
    pub title: Option<Spanned<String>>,
    pub fixes: Vec<Call>,
    pub min_confidence: Vec<Spanned<f64>>,
    pub span: Span,
}

/// `l3 priority P2` or `l3 { priority P1  jira "OPS"  page on }`.
#[derive(Debug, Clone, PartialEq)]
pub struct L3Block {
    pub priority: Vec<Spanned<String>>,
    pub jira: Vec<Spanned<String>>,
    pub page: Vec<Spanned<bool>>,
    pub span: Span,
}
