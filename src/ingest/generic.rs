//! A configurable JSON source, for senders with no built-in normalizer (Argo CD
//! notifications, a home-grown monitor, a CI system): a [`Mapping`] in the daemon's
//! configuration says where each event field is in the sender's JSON.
//!
//! Mapped values are read with a small JSON path reader (`$.alert.name`, `$.items[0]`,
//! `$["app.kubernetes.io/name"]`), or written as literals (`= "deploy"`) that may quote paths
//! in braces (`= "{$.app} synced"`). A missing summary refuses the delivery, naming the
//! path; any other missing or unreadable value gets its default and a note. Documented in
//! `docs/sources/generic.md`.

use super::{Batch, Headers, IngestError, parse_json};
use super::{quote, scalar_text};
use crate::event::{Event, Kind, Link, Severity, Status, stable_id};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

/// Where each event field is in a sender's JSON. Every field except `events`, `status_map`,
/// `severity_map` and `delivery_header` is an *expression*: a path (`$.alert.name`) or a
/// literal (`= "deploy"`, which may quote paths in braces: `= "{$.app} synced"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// A path to an array in the body: one event per element, and every other path is read
    /// from the element. Absent: the whole body is one event.
    #[serde(default)]
    pub events: Option<String>,
    /// `alert`, `incident`, `deploy`, `change` or `k8s_event`. Default: `alert`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The sender's status, through `status_map`, else read as Sparky's (`firing`,
    /// `acknowledged`, `resolved`, `info`, and a few common spellings). Not mapped: `firing`
    /// for alerts and incidents, `info` for other kinds. Mapped but absent or unreadable:
    /// `info` and a note (an unreadable status never claims `firing`).
    #[serde(default)]
    pub status: Option<String>,
    /// The sender's level, through `severity_map`, else read loosely (`P1`, `error`, `warn`,
    /// ...). Default: `warning` for alerts and incidents, `info` for other kinds.
    #[serde(default)]
    pub severity: Option<String>,
    /// One line for people. Required: a delivery without it is refused.
    pub summary: String,
    /// What makes two events the same problem, prefixed with the source's name. Default: a
    /// hash of the labels (of the kind and summary when there are no labels).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The service concerned, as the catalog names it. Default: none.
    #[serde(default)]
    pub service: Option<String>,
    /// When it happened: an RFC 3339 time, or Unix seconds or milliseconds. Default: the time
    /// of receipt.
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// A path to an object (or to an array of `key:value` strings), or a map of label name
    /// to expression.
    #[serde(default)]
    pub labels: Option<Fields>,
    /// As `labels`.
    #[serde(default)]
    pub annotations: Option<Fields>,
    /// A map of link name (`dashboard`, `runbook`, ...) to an expression giving its URL, or a
    /// path to a URL (named `source`) or to an array of URLs or `{rel, url}` objects.
    #[serde(default)]
    pub links: Option<Fields>,
    /// The sender's status values to Sparky's: `{ok: resolved, alerting: firing}`.
    #[serde(default)]
    pub status_map: BTreeMap<String, String>,
    /// The sender's levels to Sparky's: `{"#E96D76": warning, Sev0: critical}`.
    #[serde(default)]
    pub severity_map: BTreeMap<String, String>,
    /// The header holding the sender's delivery id (repeated by its retries). Default:
    /// `webhook-id` (Standard Webhooks).
    #[serde(default)]
    pub delivery_header: Option<String>,
    /// The parsed form, built on first use.
    #[serde(skip)]
    compiled: OnceLock<Result<Compiled, MappingError>>,
}

/// A field that maps several values: a path to them, or one expression per name.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    Path(String),
    Each(BTreeMap<String, String>),
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path such as `$.tags`, or a map of names to paths or literals")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Fields, E> {
                Ok(Fields::Path(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.insert(k, v);
                }
                Ok(Fields::Each(out))
            }
        }
        deserializer.deserialize_any(FieldsVisitor)
    }
}

/// What is wrong with a mapping: every problem, each naming its key.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MappingError {
    pub problems: Vec<String>,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("; "))
    }
}

impl std::error::Error for MappingError {}

impl Mapping {
    /// Checks every path, literal and map value; the error lists each problem with its key
    /// (`` `summary`: `$.a..b` is not a path: ... ``).
    pub fn validate(&self) -> Result<(), MappingError> {
        self.compiled().as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn compiled(&self) -> &Result<Compiled, MappingError> {
        self.compiled.get_or_init(|| compile(self))
    }
}

// ---------------------------------------------------------------------------------------
// The path reader.

/// One step of a path: a member name or an array index (negative: from the end).
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
}

/// A simple JSON path: `$`, then `.name`, `[0]`, `[-1]`, `["name.with.dots"]` or
/// `."name.with.dots"` steps.
#[derive(Debug, Clone, PartialEq)]
struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A quoted name starting at `chars[i]` (a `"` or `'`): the name and the index after it.
fn quoted_name(chars: &[char], i: usize) -> Result<(String, usize), String> {
    let quote = chars[i];
    let mut name = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' if j + 1 < chars.len() => {
                name.push(chars[j + 1]);
                j += 2;
            }
            c if c == quote => return Ok((name, j + 1)),
            c => {
                name.push(c);
                j += 1;
            }
        }
    }
    Err(format!("the quote at column {} is not closed", i + 2))
}

impl JsonPath {
    fn parse(text: &str) -> Result<JsonPath, String> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix('$') else {
            return Err("a path starts with `$`, as in `$.alert.name`".into());
        };
        let chars: Vec<char> = rest.chars().collect();
        // Column of `chars[i]` in `text`, counting from 1 (the `$` is column 1).
        let col = |i: usize| i + 2;
        let mut steps = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    if matches!(chars.get(i), Some('"' | '\'')) {
                        let (name, next) = quoted_name(&chars, i)?;
                        steps.push(Step::Key(name));
                        i = next;
                        continue;
                    }
                    let start = i;
                    while i < chars.len()
                        && !matches!(chars[i], '.' | '[' | ']' | '"' | '\'')
                        && !chars[i].is_whitespace()
                    {
                        i += 1;
                    }
                    if i == start {
                        return Err(format!("a name is missing after the `.` at column {}", col(start - 1)));
                    }
                    steps.push(Step::Key(chars[start..i].iter().collect()));
                }
                '[' => {
                    let open = i;
                    i += 1;
                    if matches!(chars.get(i), Some('"' | '\'')) {
                        let (name, next) = quoted_name(&chars, i)?;
                        steps.push(Step::Key(name));
                        i = next;
                    } else {
                        let start = i;
                        while i < chars.len() && (chars[i].is_ascii_digit() || (i == start && chars[i] == '-')) {
                            i += 1;
                        }
                        let digits: String = chars[start..i].iter().collect();
                        let n = digits.parse::<i64>().map_err(|_| {
                            format!(
                                "the `[` at column {} holds neither an index (`[0]`, `[-1]` for the last) nor a quoted name (`[\"a.b\"]`)",
                                col(open)
                            )
                        })?;
                        steps.push(Step::Index(n));
                    }
                    if chars.get(i) != Some(&']') {
                        return Err(format!("the `[` at column {} is not closed by `]`", col(open)));
                    }
                    i += 1;
                }
                c => {
                    return Err(format!(
                        "unexpected `{c}` at column {}; steps are `.name`, `[0]` or `[\"name\"]`",
                        col(i)
                    ));
                }
            }
        }
        Ok(JsonPath { text: text.to_string(), steps })
    }

    /// The value at this path, if there is one (`null` counts as none).
    fn read<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        let mut cur = v;
        for step in &self.steps {
            cur = match (step, cur) {
                (Step::Key(k), Value::Object(o)) => o.get(k)?,
                (Step::Index(n), Value::Array(a)) => a.get(index(*n, a.len())?)?,
                _ => return None,
            };
        }
        (!cur.is_null()).then_some(cur)
    }

    /// Moves the value at this path out of `v`.
    fn take(&self, v: &mut Value) -> Option<Value> {
        let mut cur = v;
        for step in &self.steps {
            cur = match (step, cur) {
                (Step::Key(k), Value::Object(o)) => o.get_mut(k)?,
                (Step::Index(n), Value::Array(a)) => {
                    let i = index(*n, a.len())?;
                    a.get_mut(i)?
                }
                _ => return None,
            };
        }
        (!cur.is_null()).then(|| std::mem::take(cur))
    }
}

fn index(n: i64, len: usize) -> Option<usize> {
    if n < 0 { len.checked_sub(usize::try_from(n.unsigned_abs()).ok()?) } else { usize::try_from(n).ok() }
}

// ---------------------------------------------------------------------------------------
// Expressions.

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Path(JsonPath),
}

/// A mapped value: a path, or a literal whose pieces may be paths.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Path(JsonPath),
    Literal(Vec<Piece>),
}

impl Expr {
    fn parse(text: &str) -> Result<Expr, String> {
        let t = text.trim();
        if t.starts_with('$') {
            return JsonPath::parse(t).map(Expr::Path).map_err(|e| format!("`{t}` is not a path: {e}"));
        }
        let Some(lit) = t.strip_prefix('=') else {
            return Err(format!(
                "`{t}` is neither a path (`$.field`) nor a literal; write `= \"{}\"` for the text itself",
                t.replace('"', "\\\"")
            ));
        };
        let lit = lit.trim();
        let lit = if lit.starts_with('"') {
            serde_json::from_str::<String>(lit).map_err(|_| {
                format!("`{t}`: the quoted text after `=` must be one JSON string, as in `= \"deploy\"`")
            })?
        } else {
            lit.to_string()
        };
        pieces(&lit).map(Expr::Literal).map_err(|e| format!("`{t}`: {e}"))
    }

    /// The literal's text when it quotes no path.
    fn constant(&self) -> Option<String> {
        match self {
            Expr::Literal(p) => p.iter().try_fold(String::new(), |mut s, piece| match piece {
                Piece::Text(t) => {
                    s.push_str(t);
                    Some(s)
                }
                Piece::Path(_) => None,
            }),
            Expr::Path(_) => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Expr::Path(p) => p.text.clone(),
            Expr::Literal(pieces) => {
                let mut s = String::from("= \"");
                for p in pieces {
                    match p {
                        Piece::Text(t) => s.push_str(&t.replace('{', "{{").replace('}', "}}")),
                        Piece::Path(p) => {
                            s.push('{');
                            s.push_str(&p.text);
                            s.push('}');
                        }
                    }
                }
                s.push('"');
                s
            }
        }
    }
}

/// Splits literal text into text and `{$.path}` pieces; `{{` and `}}` stand for braces.
fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") || rest.starts_with("}}") {
            buf.push(c);
            rest = &rest[2..];
        } else if rest.starts_with("{$") {
            let end = rest.find('}').ok_or_else(|| "a `{` that opens a path is not closed by `}`".to_string())?;
            let path = JsonPath::parse(&rest[1..end]).map_err(|e| format!("`{}` is not a path: {e}", &rest[1..end]))?;
            if !buf.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut buf)));
            }
            out.push(Piece::Path(path));
            rest = &rest[end + 1..];
        } else {
            buf.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !buf.is_empty() || out.is_empty() {
        out.push(Piece::Text(buf));
    }
    Ok(out)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What an expression gave for one event.
enum Got {
    Text(String),
    /// The path (or a path of the literal) is absent; its text.
    Missing(String),
    /// The path holds an object or an array: its text and what it holds.
    NotText(String, &'static str),
}

fn eval(expr: &Expr, elem: &Value, notes: &mut Notes, key: &str) -> Got {
    match expr {
        Expr::Path(p) => match p.read(elem) {
            None => Got::Missing(p.text.clone()),
            Some(v) => scalar_text(v).map_or_else(|| Got::NotText(p.text.clone(), type_name(v)), Got::Text),
        },
        Expr::Literal(pieces) => {
            let mut s = String::new();
            for piece in pieces {
                match piece {
                    Piece::Text(t) => s.push_str(t),
                    Piece::Path(p) => match p.read(elem) {
                        Some(v) => s.push_str(&scalar_text(v).unwrap_or_else(|| v.to_string())),
                        None => notes.add(format!("`{}` is missing; `{key}` reads it as empty", p.text)),
                    },
                }
            }
            Got::Text(s)
        }
    }
}

// ---------------------------------------------------------------------------------------
// The compiled mapping.

#[derive(Debug, Clone)]
enum CompiledFields {
    Path(JsonPath),
    Each(Vec<(String, Expr)>),
}

#[derive(Debug, Clone)]
struct Compiled {
    events: Option<JsonPath>,
    kind: Option<Expr>,
    status: Option<Expr>,
    severity: Option<Expr>,
    summary: Expr,
    fingerprint: Option<Expr>,
    service: Option<Expr>,
    occurred_at: Option<Expr>,
    labels: Option<CompiledFields>,
    annotations: Option<CompiledFields>,
    links: Option<CompiledFields>,
    status_map: Vec<(String, Status)>,
    severity_map: Vec<(String, Severity)>,
    delivery_header: String,
}

const KINDS: &str = "`alert`, `incident`, `deploy`, `change` or `k8s_event`";

/// A kind a generic source may send. `schedule` events are Sparky's own: a sender that could
/// raise them could start a scheduled playbook.
fn parse_kind(text: &str) -> Result<Kind, String> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "alert" => Kind::Alert,
        "incident" => Kind::Incident,
        "deploy" => Kind::Deploy,
        "change" => Kind::Change,
        "k8s_event" => Kind::K8sEvent,
        "schedule" => {
            return Err(format!(
                "`schedule` events are raised by Sparky's own schedules, never by a source; use {KINDS}"
            ));
        }
        _ => return Err(format!("`{}` is not a kind; use {KINDS}", text.trim())),
    })
}

fn parse_status_name(text: &str) -> Option<Status> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "firing" | "triggered" | "alerting" | "active" | "open" | "problem" => Status::Firing,
        "acknowledged" | "ack" => Status::Acknowledged,
        "resolved" | "ok" | "closed" | "recovered" | "normal" => Status::Resolved,
        "info" => Status::Info,
        _ => return None,
    })
}

fn lookup<T: Copy>(map: &[(String, T)], text: &str) -> Option<T> {
    let t = text.trim();
    map.iter().find(|(k, _)| k == t).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(t))).map(|(_, v)| *v)
}

fn compile(m: &Mapping) -> Result<Compiled, MappingError> {
    let mut problems = Vec::new();
    let expr = |problems: &mut Vec<String>, key: &str, text: Option<&String>| -> Option<Expr> {
        let text = text?;
        Expr::parse(text).map_err(|e| problems.push(format!("`{key}`: {e}"))).ok()
    };
    let events = m.events.as_ref().and_then(|t| match Expr::parse(t) {
        Ok(Expr::Path(p)) => Some(p),
        Ok(Expr::Literal(_)) => {
            problems.push(format!("`events`: must be a path to an array, such as `$.items`, not `{}`", t.trim()));
            None
        }
        Err(e) => {
            problems.push(format!("`events`: {e}"));
            None
        }
    });
    let kind = expr(&mut problems, "kind", m.kind.as_ref());
    let status = expr(&mut problems, "status", m.status.as_ref());
    let severity = expr(&mut problems, "severity", m.severity.as_ref());
    let summary = expr(&mut problems, "summary", Some(&m.summary));
    let fingerprint = expr(&mut problems, "fingerprint", m.fingerprint.as_ref());
    let service = expr(&mut problems, "service", m.service.as_ref());
    let occurred_at = expr(&mut problems, "occurred_at", m.occurred_at.as_ref());
    let fields = |problems: &mut Vec<String>, key: &str, f: Option<&Fields>| -> Option<CompiledFields> {
        match f? {
            Fields::Path(t) => match Expr::parse(t) {
                Ok(Expr::Path(p)) => Some(CompiledFields::Path(p)),
                Ok(Expr::Literal(_)) => {
                    problems.push(format!(
                        "`{key}`: a literal gives no names; write a path such as `$.tags`, or a map of names to values"
                    ));
                    None
                }
                Err(e) => {
                    problems.push(format!("`{key}`: {e}"));
                    None
                }
            },
            Fields::Each(each) => {
                let mut out = Vec::new();
                for (name, t) in each {
                    if name.trim().is_empty() {
                        problems.push(format!("`{key}`: a name is empty"));
                    }
                    if let Some(e) = expr(problems, &format!("{key}.{name}"), Some(t)) {
                        out.push((name.clone(), e));
                    }
                }
                Some(CompiledFields::Each(out))
            }
        }
    };
    let labels = fields(&mut problems, "labels", m.labels.as_ref());
    let annotations = fields(&mut problems, "annotations", m.annotations.as_ref());
    let links = fields(&mut problems, "links", m.links.as_ref());

    let mut status_map = Vec::new();
    for (from, to) in &m.status_map {
        match to.trim() {
            "firing" => status_map.push((from.clone(), Status::Firing)),
            "acknowledged" => status_map.push((from.clone(), Status::Acknowledged)),
            "resolved" => status_map.push((from.clone(), Status::Resolved)),
            "info" => status_map.push((from.clone(), Status::Info)),
            other => problems.push(format!(
                "`status_map`: `{from}` maps to `{other}`, which is not a status; use `firing`, `acknowledged`, `resolved` or `info`"
            )),
        }
    }
    let mut severity_map = Vec::new();
    for (from, to) in &m.severity_map {
        match to.trim() {
            "critical" => severity_map.push((from.clone(), Severity::Critical)),
            "high" => severity_map.push((from.clone(), Severity::High)),
            "warning" => severity_map.push((from.clone(), Severity::Warning)),
            "info" => severity_map.push((from.clone(), Severity::Info)),
            other => problems.push(format!(
                "`severity_map`: `{from}` maps to `{other}`, which is not a severity; use `critical`, `high`, `warning` or `info`"
            )),
        }
    }
    // Literals are known now: say what is wrong before the first delivery does.
    if let Some(text) = kind.as_ref().and_then(Expr::constant)
        && let Err(e) = parse_kind(&text)
    {
        problems.push(format!("`kind`: {e}"));
    }
    if let Some(text) = status.as_ref().and_then(Expr::constant)
        && lookup(&status_map, &text).or_else(|| parse_status_name(&text)).is_none()
    {
        problems.push(format!(
            "`status`: `{text}` is not a status; use `firing`, `acknowledged`, `resolved` or `info`, or add it to `status_map`"
        ));
    }
    if let Some(text) = severity.as_ref().and_then(Expr::constant)
        && lookup(&severity_map, &text).or_else(|| Severity::parse_loose(&text)).is_none()
    {
        problems.push(format!(
            "`severity`: `{text}` is not a severity; use `critical`, `high`, `warning` or `info`, or add it to `severity_map`"
        ));
    }
    if summary.as_ref().and_then(Expr::constant).is_some_and(|s| s.trim().is_empty()) {
        problems.push("`summary`: must not be empty".into());
    }
    let delivery_header = m.delivery_header.as_deref().unwrap_or("webhook-id").trim().to_ascii_lowercase();
    if delivery_header.is_empty() || delivery_header.contains(|c: char| c.is_whitespace() || c == ':') {
        problems.push(format!("`delivery_header`: `{delivery_header}` is not a header name"));
    }
    match summary {
        Some(summary) if problems.is_empty() => Ok(Compiled {
            events,
            kind,
            status,
            severity,
            summary,
            fingerprint,
            service,
            occurred_at,
            labels,
            annotations,
            links,
            status_map,
            severity_map,
            delivery_header,
        }),
        _ => Err(MappingError { problems }),
    }
}

// ---------------------------------------------------------------------------------------
// Normalizing.

/// Notes of a delivery, each said once with the number of events it concerns.
#[derive(Default)]
struct Notes(Vec<(String, usize)>);

impl Notes {
    fn add(&mut self, note: String) {
        match self.0.iter_mut().find(|(n, _)| *n == note) {
            Some((_, count)) => *count += 1,
            None => self.0.push((note, 1)),
        }
    }

    fn finish(self, events: usize) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(n, count)| if events > 1 { format!("{n} ({count} of {events} events)") } else { n })
            .collect()
    }
}

/// A time as senders write it: RFC 3339, or Unix seconds, or milliseconds (numbers from
/// 10^11 on, which as seconds would be past the year 5000).
fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let number = match v {
        Value::String(s) => match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) => return Some(t.with_timezone(&Utc)),
            Err(_) => s.trim().parse::<f64>().ok()?,
        },
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    if !number.is_finite() {
        return None;
    }
    let millis = if number.abs() >= 1e11 { number } else { number * 1000.0 };
    // Out-of-range values saturate in the cast and are then refused by chrono.
    DateTime::from_timestamp_millis(millis as i64)
}

fn read_fields(
    fields: &CompiledFields,
    elem: &Value,
    key: &str,
    out: &mut BTreeMap<String, String>,
    notes: &mut Notes,
) {
    match fields {
        CompiledFields::Path(p) => match p.read(elem) {
            None => notes.add(format!("`{p}` is missing; no {key}")),
            Some(Value::Object(o)) => {
                for (k, v) in o {
                    match scalar_text(v) {
                        Some(t) => {
                            out.insert(k.clone(), t);
                        }
                        None if v.is_null() => {}
                        None => notes.add(format!("`{p}.{k}` is {}, not text; left out of {key}", type_name(v))),
                    }
                }
            }
            Some(Value::Array(items)) => {
                for item in items {
                    match item.as_str() {
                        Some(s) => {
                            let (k, v) = s.split_once([':', '=']).unwrap_or((s, ""));
                            out.insert(k.trim().to_string(), v.trim().to_string());
                        }
                        None => {
                            notes.add(format!("`{p}` holds {}, not a `key:value` string; left out", type_name(item)))
                        }
                    }
                }
            }
            Some(v) => notes
                .add(format!("`{p}` is {}, not an object or an array of `key:value` strings; no {key}", type_name(v))),
        },
        CompiledFields::Each(each) => {
            for (name, e) in each {
                match eval(e, elem, notes, &format!("{key}.{name}")) {
                    Got::Text(t) => {
                        out.insert(name.clone(), t);
                    }
                    Got::Missing(path) => notes.add(format!("`{path}` is missing; `{key}.{name}` is left out")),
                    Got::NotText(path, what) => {
                        notes.add(format!("`{path}` is {what}, not text; `{key}.{name}` is left out"))
                    }
                }
            }
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn read_links(fields: &CompiledFields, elem: &Value, notes: &mut Notes) -> Vec<Link> {
    let mut links = Vec::new();
    let mut push = |rel: &str, url: &str, notes: &mut Notes| {
        let url = url.trim();
        if is_url(url) {
            links.push(Link { rel: rel.to_string(), url: url.to_string() });
        } else {
            notes.add(format!("link `{rel}`: `{}` is not an http(s) URL; left out", quote(url)));
        }
    };
    match fields {
        CompiledFields::Each(each) => {
            for (rel, e) in each {
                match eval(e, elem, notes, &format!("links.{rel}")) {
                    Got::Text(url) => push(rel, &url, notes),
                    Got::Missing(path) => notes.add(format!("`{path}` is missing; no `{rel}` link")),
                    Got::NotText(path, what) => notes.add(format!("`{path}` is {what}, not a URL; no `{rel}` link")),
                }
            }
        }
        CompiledFields::Path(p) => match p.read(elem) {
            None => notes.add(format!("`{p}` is missing; no links")),
            Some(Value::String(url)) => push("source", url, notes),
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(url) => push("link", url, notes),
                        Value::Object(o) => {
                            let url = o.get("url").or_else(|| o.get("href")).and_then(Value::as_str);
                            let rel = ["rel", "name", "title"]
                                .iter()
                                .find_map(|k| o.get(*k).and_then(Value::as_str))
                                .unwrap_or("link");
                            match url {
                                Some(url) => push(rel, url, notes),
                                None => notes.add(format!("`{p}` holds an object without `url` or `href`; left out")),
                            }
                        }
                        other => notes.add(format!("`{p}` holds {}, not a URL; left out", type_name(other))),
                    }
                }
            }
            Some(v) => notes.add(format!("`{p}` is {}, not a URL or an array of them; no links", type_name(v))),
        },
    }
    links
}

/// Normalizes one delivery of the generic source `name` (its name in the configuration and
/// URL: the events' `source` and their fingerprints' prefix) with its `mapping`.
pub fn normalize(
    mapping: &Mapping,
    name: &str,
    headers: &Headers,
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Batch, IngestError> {
    let shape = |path: String, reason: String| IngestError::Shape { source: "generic", path, reason };
    let c = mapping
        .compiled()
        .as_ref()
        .map_err(|e| shape("mapping".into(), format!("of source `{name}` is not valid: {e}")))?;
    let mut root = parse_json(body)?;
    let elements = match &c.events {
        None => vec![root],
        Some(p) => match p.take(&mut root) {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(shape(
                    p.text.clone(),
                    format!("is {}, not an array; source `{name}` reads its events there", type_name(&other)),
                ));
            }
            None => return Err(shape(p.text.clone(), format!("is missing; source `{name}` reads its events there"))),
        },
    };
    // Where an event's path is in the body, for errors: `$.items[2].message`.
    let in_body = |i: usize, path: &str| match &c.events {
        None => path.to_string(),
        Some(events) => format!("{}[{i}]{}", events.text, path.strip_prefix('$').unwrap_or(path)),
    };
    let delivery_id = headers.get(&c.delivery_header).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let mut notes = Notes::default();
    if elements.is_empty() {
        notes.add("no events: the array of events is empty".into());
    }
    let count = elements.len();
    let mut events = Vec::with_capacity(count);
    for (i, elem) in elements.into_iter().enumerate() {
        let notes = &mut notes;
        let summary = match eval(&c.summary, &elem, notes, "summary") {
            Got::Text(s) if !s.trim().is_empty() => s.trim().to_string(),
            Got::Text(_) => {
                return Err(shape(
                    in_body(i, &c.summary.describe()),
                    format!("gives an empty summary; source `{name}` maps `summary` to it"),
                ));
            }
            Got::Missing(path) => {
                return Err(shape(in_body(i, &path), format!("is missing; source `{name}` maps `summary` to it")));
            }
            Got::NotText(path, what) => {
                return Err(shape(
                    in_body(i, &path),
                    format!("is {what}, not text; source `{name}` maps `summary` to it"),
                ));
            }
        };
        // An optional value: its text, or `None` and a note saying what stands in.
        let optional = |e: Option<&Expr>, key: &str, default: &str, notes: &mut Notes| -> Option<String> {
            match eval(e?, &elem, notes, key) {
                Got::Text(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
                Got::Text(_) => {
                    notes.add(format!("`{key}` is empty; {default}"));
                    None
                }
                Got::Missing(path) => {
                    notes.add(format!("`{path}` is missing; {default}"));
                    None
                }
                Got::NotText(path, what) => {
                    notes.add(format!("`{path}` is {what}, not text; {default}"));
                    None
                }
            }
        };
        let kind = match optional(c.kind.as_ref(), "kind", "`alert` is used", notes) {
            None => Kind::Alert,
            Some(text) => parse_kind(&text).unwrap_or_else(|e| {
                notes.add(format!("`kind`: {e}; `alert` is used"));
                Kind::Alert
            }),
        };
        let lively = matches!(kind, Kind::Alert | Kind::Incident);
        let status = match &c.status {
            None if lively => Status::Firing,
            None => Status::Info,
            Some(e) => match optional(Some(e), "status", "`info` is used", notes) {
                None => Status::Info,
                Some(text) => lookup(&c.status_map, &text).or_else(|| parse_status_name(&text)).unwrap_or_else(|| {
                    notes.add(format!(
                        "`{}`: `{}` is not a status Sparky reads; `info` is used (add it to `status_map`)",
                        e.describe(),
                        quote(&text)
                    ));
                    Status::Info
                }),
            },
        };
        let default_severity = if lively { Severity::Warning } else { Severity::Info };
        let severity = match c.severity.as_ref() {
            None => default_severity,
            Some(e) => {
                match optional(Some(e), "severity", &format!("`{}` is used", default_severity.as_str()), notes) {
                    None => default_severity,
                    Some(text) => {
                        lookup(&c.severity_map, &text).or_else(|| Severity::parse_loose(&text)).unwrap_or_else(|| {
                            notes.add(format!(
                                "`{}`: `{}` is not a severity Sparky reads; `{}` is used (add it to `severity_map`)",
                                e.describe(),
                                quote(&text),
                                default_severity.as_str()
                            ));
                            default_severity
                        })
                    }
                }
            }
        };
        let service = optional(c.service.as_ref(), "service", "no service", notes);
        let mut labels = BTreeMap::new();
        if let Some(f) = &c.labels {
            read_fields(f, &elem, "labels", &mut labels, notes);
        }
        let mut annotations = BTreeMap::new();
        if let Some(f) = &c.annotations {
            read_fields(f, &elem, "annotations", &mut annotations, notes);
        }
        let links = c.links.as_ref().map(|f| read_links(f, &elem, notes)).unwrap_or_default();
        let fingerprint = optional(c.fingerprint.as_ref(), "fingerprint", "a hash of the labels is used", notes)
            .unwrap_or_else(|| {
                if labels.is_empty() {
                    stable_id(&[kind.as_str(), &summary])
                } else {
                    let flat: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    stable_id(&flat.iter().map(String::as_str).collect::<Vec<_>>())
                }
            });
        let occurred = c.occurred_at.as_ref().and_then(|e| match e {
            Expr::Path(p) => match p.read(&elem) {
                None => {
                    notes.add(format!("`{p}` is missing; the time of receipt stands in"));
                    None
                }
                Some(v) => parse_time(v).or_else(|| {
                    notes.add(format!(
                        "`{p}` is not a time (RFC 3339, or Unix seconds or milliseconds); the time of receipt stands in"
                    ));
                    None
                }),
            },
            Expr::Literal(_) => {
                let text = optional(Some(e), "occurred_at", "the time of receipt stands in", notes)?;
                parse_time(&Value::String(text.clone())).or_else(|| {
                    notes
                        .add(format!("`occurred_at`: `{}` is not a time; the time of receipt stands in", quote(&text)));
                    None
                })
            }
        });
        // Without a time of its own, the event's content identifies it, so that a redelivery
        // keeps its id.
        let when = match occurred {
            Some(t) => t.to_rfc3339(),
            None => elem.to_string(),
        };
        let fingerprint = format!("{name}/{fingerprint}");
        events.push(Event {
            id: stable_id(&[name, &fingerprint, status.as_str(), &when]),
            source: name.to_string(),
            kind,
            status,
            fingerprint,
            service,
            severity,
            summary,
            labels,
            annotations,
            links,
            occurred_at: occurred.unwrap_or(received_at),
            received_at,
            delivery_id: delivery_id.clone(),
            payload: elem,
        });
    }
    Ok(Batch { events, notes: notes.finish(count) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn path(text: &str) -> JsonPath {
        JsonPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn mapping(yaml: &str) -> Mapping {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn paths_read_names_indexes_and_quoted_names() {
        let doc = json!({
            "alert": {"name": "HighLatency", "tags": ["a", "b", "c"]},
            "labels": {"app.kubernetes.io/name": "payments-api", "it's": 1},
            "items": [{"id": 1}, {"id": 2}],
            "none": null
        });
        assert_eq!(path("$").read(&doc), Some(&doc));
        assert_eq!(path("$.alert.name").read(&doc), Some(&json!("HighLatency")));
        assert_eq!(path("$.alert.tags[1]").read(&doc), Some(&json!("b")));
        assert_eq!(path("$.alert.tags[-1]").read(&doc), Some(&json!("c")));
        assert_eq!(path("$.items[1].id").read(&doc), Some(&json!(2)));
        assert_eq!(path(r#"$.labels["app.kubernetes.io/name"]"#).read(&doc), Some(&json!("payments-api")));
        assert_eq!(path(r#"$.labels."app.kubernetes.io/name""#).read(&doc), Some(&json!("payments-api")));
        assert_eq!(path(r#"$.labels['it\'s']"#).read(&doc), Some(&json!(1)));
        assert_eq!(path(" $.alert.name ").read(&doc), Some(&json!("HighLatency")));
        // Absent, null, out of range, or the wrong type of step: nothing, never a panic.
        assert_eq!(path("$.nope").read(&doc), None);
        assert_eq!(path("$.none").read(&doc), None);
        assert_eq!(path("$.items[2]").read(&doc), None);
        assert_eq!(path("$.items[-3]").read(&doc), None);
        assert_eq!(path("$.items[-9223372036854775808]").read(&doc), None);
        assert_eq!(path("$.alert[0]").read(&doc), None);
        assert_eq!(path("$.items.id").read(&doc), None);
    }

    #[test]
    fn bad_paths_say_where() {
        let err = |t: &str| JsonPath::parse(t).unwrap_err();
        assert_eq!(err("alert.name"), "a path starts with `$`, as in `$.alert.name`");
        assert_eq!(err("$.alert..name"), "a name is missing after the `.` at column 8");
        assert_eq!(err("$.alert."), "a name is missing after the `.` at column 8");
        assert_eq!(err("$.items[0"), "the `[` at column 8 is not closed by `]`");
        assert_eq!(
            err("$.items[x]"),
            "the `[` at column 8 holds neither an index (`[0]`, `[-1]` for the last) nor a quoted name (`[\"a.b\"]`)"
        );
        assert!(err("$.items[99999999999999999999]").contains("holds neither an index"));
        assert_eq!(err(r#"$["a.b]"#), "the quote at column 3 is not closed");
        assert_eq!(err("$alert"), "unexpected `a` at column 2; steps are `.name`, `[0]` or `[\"name\"]`");
    }

    #[test]
    fn literals_and_templates() {
        let e = Expr::parse(r#"= "deploy""#).unwrap();
        assert_eq!(e.constant().as_deref(), Some("deploy"));
        assert_eq!(Expr::parse("= deploy").unwrap().constant().as_deref(), Some("deploy"));
        let t = Expr::parse(r#"= "{$.app} synced {{ok}}""#).unwrap();
        assert_eq!(t.constant(), None);
        let mut notes = Notes::default();
        match eval(&t, &json!({"app": "payments-api"}), &mut notes, "summary") {
            Got::Text(s) => assert_eq!(s, "payments-api synced {ok}"),
            _ => panic!("a template gives text"),
        }
        assert_eq!(t.describe(), r#"= "{$.app} synced {{ok}}""#);
        assert!(Expr::parse("deploy").unwrap_err().contains("write `= \"deploy\"`"));
        assert!(Expr::parse(r#"= "{$.app""#).unwrap_err().contains("not closed by `}`"));
    }

    #[test]
    fn validation_reports_every_problem_with_its_key() {
        let m = mapping(
            r#"
events: '= "items"'
kind: '= "schedule"'
summary: $.alert..name
status: $.state
status_map: {done: closed}
severity_map: {red: purple}
labels: {team: '$.owner['}
"#,
        );
        let e = m.validate().unwrap_err();
        assert_eq!(
            e.problems,
            [
                "`events`: must be a path to an array, such as `$.items`, not `= \"items\"`",
                "`summary`: `$.alert..name` is not a path: a name is missing after the `.` at column 8",
                "`labels.team`: `$.owner[` is not a path: the `[` at column 8 holds neither an index (`[0]`, `[-1]` for the last) nor a quoted name (`[\"a.b\"]`)",
                "`status_map`: `done` maps to `closed`, which is not a status; use `firing`, `acknowledged`, `resolved` or `info`",
                "`severity_map`: `red` maps to `purple`, which is not a severity; use `critical`, `high`, `warning` or `info`",
                "`kind`: `schedule` events are raised by Sparky's own schedules, never by a source; use `alert`, `incident`, `deploy`, `change` or `k8s_event`",
            ]
        );
        let m = mapping("summary: $.title\nstatus: '= \"done\"'\nseverity: '= \"purple\"'\nkind: '= \"deployment\"'");
        let e = m.validate().unwrap_err().to_string();
        assert!(e.contains("`kind`: `deployment` is not a kind"), "{e}");
        assert!(e.contains("`status`: `done` is not a status"), "{e}");
        assert!(e.contains("`severity`: `purple` is not a severity"), "{e}");
        let unknown = serde_yaml::from_str::<Mapping>("summary: $.title\nsumary: $.x").unwrap_err().to_string();
        assert!(unknown.starts_with("unknown field `sumary`"), "{unknown}");
        assert!(mapping("summary: $.title\nstatus: '= \"ok\"'").validate().is_ok());
    }

    #[test]
    fn missing_and_unreadable_values() {
        let m = mapping(
            r#"
events: $.items
summary: '= "{$.name}: {$.text}"'
status: $.state
status_map: {OK: resolved}
severity: $.level
service: $.svc
occurred_at: $.at
labels: $.tags
"#,
        );
        m.validate().unwrap();
        let now = Utc::now();
        let body = json!({"items": [
            {"name": "disk", "text": "full", "state": "ok", "level": "P1", "svc": "db", "at": 1700000000, "tags": {"host": "a"}},
            {"name": "disk", "state": "weird", "level": "purple", "at": "yesterday", "tags": ["env:prod", "team=sre"]}
        ]});
        let b = normalize(&m, "monitor", &Headers::none(), body.to_string().as_bytes(), now).unwrap();
        let [a, z] = &b.events[..] else { panic!("two events") };
        assert_eq!((a.status, a.severity, a.service.as_deref()), (Status::Resolved, Severity::Critical, Some("db")));
        assert_eq!(a.occurred_at.timestamp(), 1_700_000_000);
        assert_eq!(a.summary, "disk: full");
        assert_eq!(a.fingerprint, format!("monitor/{}", stable_id(&["host=a"])));
        assert_eq!(a.source, "monitor");
        assert_eq!((z.status, z.severity, z.service.as_deref()), (Status::Info, Severity::Warning, None));
        assert_eq!(z.occurred_at, now);
        assert_eq!(z.summary, "disk:");
        assert_eq!(z.labels["env"], "prod");
        assert_eq!(z.labels["team"], "sre");
        assert_eq!(
            b.notes,
            [
                "`$.text` is missing; `summary` reads it as empty (1 of 2 events)",
                "`$.state`: `weird` is not a status Sparky reads; `info` is used (add it to `status_map`) (1 of 2 events)",
                "`$.level`: `purple` is not a severity Sparky reads; `warning` is used (add it to `severity_map`) (1 of 2 events)",
                "`$.svc` is missing; no service (1 of 2 events)",
                "`$.at` is not a time (RFC 3339, or Unix seconds or milliseconds); the time of receipt stands in (1 of 2 events)",
            ]
        );
    }

    #[test]
    fn errors_name_the_path_in_the_body() {
        let m = mapping("events: $.items\nsummary: $.message");
        let err = |body: &str| {
            normalize(&m, "argocd", &Headers::none(), body.as_bytes(), Utc::now()).unwrap_err().to_string()
        };
        assert_eq!(
            err(r#"{"items": [{"message": "ok"}, {"msg": "x"}]}"#),
            "not a valid generic payload: `$.items[1].message` is missing; source `argocd` maps `summary` to it"
        );
        assert_eq!(
            err(r#"{"items": [{"message": {"a": 1}}]}"#),
            "not a valid generic payload: `$.items[0].message` is an object, not text; source `argocd` maps `summary` to it"
        );
        assert_eq!(
            err(r#"{"items": {"message": "x"}}"#),
            "not a valid generic payload: `$.items` is an object, not an array; source `argocd` reads its events there"
        );
        assert_eq!(
            err(r#"{"things": []}"#),
            "not a valid generic payload: `$.items` is missing; source `argocd` reads its events there"
        );
        assert!(err("{").starts_with("the body is not valid JSON"));
        let bad = mapping("summary: $..x");
        let e = normalize(&bad, "argocd", &Headers::none(), b"{}", Utc::now()).unwrap_err().to_string();
        assert!(
            e.starts_with("not a valid generic payload: `mapping` of source `argocd` is not valid: `summary`"),
            "{e}"
        );
    }

    #[test]
    fn redeliveries_keep_their_ids_and_delivery_ids() {
        let m = mapping("summary: $.title\nkind: '= \"deploy\"'");
        let h = Headers::from_pairs([("Webhook-Id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")]);
        let body = br#"{"title": "payments-api synced"}"#;
        let a = normalize(&m, "argocd", &h, body, Utc::now()).unwrap().events.remove(0);
        let b = normalize(&m, "argocd", &h, body, Utc::now() + chrono::Duration::hours(1)).unwrap().events.remove(0);
        assert_eq!(a.id, b.id);
        assert_eq!(a.delivery_id.as_deref(), Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"));
        assert_eq!((a.kind, a.status, a.severity), (Kind::Deploy, Status::Info, Severity::Info));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
            "[a-z$#:=.\\[\\]{}0-9 -]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-e]", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn paths_and_expressions_never_panic(text in "[$.\\[\\]\"'{}=a-c0-9 -]{0,16}|\\PC{0,16}", doc in json_value()) {
            if let Ok(p) = JsonPath::parse(&text) {
                let _ = p.read(&doc);
                let _ = p.take(&mut doc.clone());
            }
            if let Ok(e) = Expr::parse(&text) {
                let _ = eval(&e, &doc, &mut Notes::default(), "summary");
            }
        }

        #[test]
        fn normalizing_never_panics(doc in json_value()) {
            let body = doc.to_string();
            for m in [
                "summary: $.b\nkind: $.c\nstatus: $.d\nseverity: $.e\noccurred_at: $.a\nlabels: $.b\nlinks: $.c",
                "events: $.a\nsummary: '= \"{$.b}/{$.c[0]}\"'\nfingerprint: $.d\nservice: $.e\nannotations: $\nlinks: {x: $.b}",
                "events: $.a[-1]\nsummary: $.b.c\nlabels: {k: $.c}\noccurred_at: '= \"{$.d}\"'\nstatus_map: {a: resolved}",
            ] {
                let m = mapping(m);
                m.validate().unwrap();
                let _ = normalize(&m, "x", &Headers::none(), body.as_bytes(), Utc::now());
            }
        }
    }

    #[test]
    fn times_in_seconds_milliseconds_and_rfc3339() {
        let t = |v: Value| parse_time(&v).map(|t| t.timestamp_millis());
        assert_eq!(t(json!(1_700_000_000)), Some(1_700_000_000_000));
        assert_eq!(t(json!(1_700_000_000_123_i64)), Some(1_700_000_000_123));
        assert_eq!(t(json!("1700000000")), Some(1_700_000_000_000));
        assert_eq!(t(json!("2023-11-14T22:13:20Z")), Some(1_700_000_000_000));
        assert_eq!(t(json!(1e300)), None);
        assert_eq!(t(json!("soon")), None);
        assert_eq!(t(json!(true)), None);
    }
}
