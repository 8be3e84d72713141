//! Datadog's webhook integration: one monitor notification per delivery, one event.
//!
//! Datadog has no fixed body: its default template (`title`, `body`, `date`, `event_type`,
//! `id`, `org`, ...) or whatever template the team wrote, filled with Datadog's `$VARIABLES`,
//! every value a string (epoch-millisecond dates too). So this reader looks for the documented
//! variables under their usual key names, takes any value as text, and writes in the notes
//! what it had to guess. With "Encode as form" the same fields arrive form-encoded.
//! Documented in `docs/sources/datadog.md`.

use super::alertmanager::infer_service;
use super::{Batch, Headers, IngestError, parse_json};
use crate::event::{Event, Kind, Link, Severity, Status, stable_id};
use chrono::{DateTime, TimeZone, Utc};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

const SOURCE: &str = "datadog";

/// Severity when nothing in the notification names one (no priority, no alert type): a
/// warning, as for the other sources.
const DEFAULT_SEVERITY: Severity = Severity::Warning;

fn shape(path: impl Into<String>, reason: impl Into<String>) -> IngestError {
    IngestError::Shape { source: "Datadog", path: path.into(), reason: reason.into() }
}

// The key names each documented variable usually gets in a custom template, in order of
// preference; the default template's own names come first.
const TITLE: &[&str] = &["title", "alert_title", "event_title", "alert_name", "monitor_name"];
const BODY: &[&str] = &["body", "event_msg", "message", "text_only_msg"];
const TEXT_ONLY: &[&str] = &["text_only_msg"];
const TRANSITION: &[&str] = &["alert_transition", "transition", "status", "state"];
const ALERT_TYPE: &[&str] = &["alert_type"];
const MONITOR_ID: &[&str] = &["alert_id", "monitor_id"];
const EVENT_ID: &[&str] = &["id", "event_id", "alert_instance_id"];
const SCOPE: &[&str] = &["alert_scope", "scope"];
const TAGS: &[&str] = &["tags"];
const HOST: &[&str] = &["hostname", "host"];
const LINK: &[&str] = &["link", "url", "alert_url", "monitor_url", "event_url"];
const SNAPSHOT: &[&str] = &["snapshot"];
const AGGREGATION: &[&str] = &["aggreg_key", "aggregate", "aggregation_key", "aggreg"];
const CYCLE: &[&str] = &["alert_cycle_key", "cycle_key"];
const PRIORITY: &[&str] = &["alert_priority", "priority", "severity"];
const DATE: &[&str] = &["date", "last_updated", "date_posix", "timestamp", "alert_time"];
const EVENT_TYPE: &[&str] = &["event_type"];
/// Kept as annotations under their own names when present.
const KEPT: &[&str] = &["alert_status", "alert_metric", "alert_query"];

/// The fields that make a body recognisably Datadog's.
const ANY_OF: &[&[&str]] = &[TITLE, BODY, TRANSITION, MONITOR_ID, EVENT_TYPE, AGGREGATION, CYCLE];

static MONITOR_URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"/monitors[/#](\d+)(?:\?([^)\s#]*))?").expect("a valid pattern"));
static MARKDOWN_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[([^\[\]]+)\]\((https?://[^)\s]+)\)").expect("a valid pattern"));

/// The fields of the notification as text, whatever their JSON type.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    /// The first of `keys` holding a value. A variable Datadog could not fill stays `$NAME` or
    /// empty; both count as absent.
    fn get(&self, keys: &[&str]) -> Option<(String, String)> {
        keys.iter().find_map(|k| {
            let text = match self.0.get(*k)? {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            let unfilled = text.starts_with('$') && text[1..].chars().all(|c| c.is_ascii_uppercase() || c == '_');
            (!text.is_empty() && !unfilled).then(|| (k.to_string(), text))
        })
    }

    fn text(&self, keys: &[&str]) -> Option<String> {
        self.get(keys).map(|(_, v)| v)
    }

    /// The first of `keys` whose value `read` understands: a custom template may put free
    /// text under a name another template uses for the variable.
    fn first_read<T>(&self, keys: &[&str], read: impl Fn(&str) -> Option<T>) -> Option<(String, T)> {
        keys.iter().find_map(|k| self.text(&[k]).and_then(|v| read(&v).map(|r| (v, r))))
    }
}

/// Reads the body: JSON, or the form Datadog sends with "Encode as form".
fn parse_body(headers: &Headers, body: &[u8]) -> Result<Value, IngestError> {
    let declared_form = headers
        .get("content-type")
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    // Without a content type (a payload read from a file), a body that starts like
    // `key=value` is a form.
    let looks_like_form = headers.get("content-type").is_none() && {
        let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
        let rest = &body[start..];
        let key_len = rest.iter().take_while(|b| b.is_ascii_alphanumeric() || b"_.%-".contains(b)).count();
        key_len > 0 && rest.get(key_len) == Some(&b'=')
    };
    if declared_form || looks_like_form {
        let fields: Map<String, Value> =
            form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect();
        return Ok(Value::Object(fields));
    }
    parse_json(body)
}

/// Datadog's `$ALERT_TRANSITION` (and what custom templates put in `status`), read loosely.
fn status_of_transition(t: &str) -> Option<Status> {
    let t = t.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    let t = t.strip_prefix("re-").unwrap_or(&t);
    Some(match t {
        "triggered" | "alert" | "renotify" | "warn" | "warning" | "no-data" | "nodata" | "firing" => Status::Firing,
        "recovered" | "resolved" | "ok" | "success" => Status::Resolved,
        _ => return None,
    })
}

/// What the default template's title says before the monitor's name: `[P1] [Triggered on
/// {service:api}] name` gives the priority, the transition, the scope and the name.
#[derive(Default)]
struct Title {
    priority: Option<String>,
    transition: Option<String>,
    scope: Option<String>,
    name: String,
}

fn parse_title(title: &str) -> Title {
    let mut out = Title::default();
    let mut rest = title.trim();
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(end) = inner.find(']') else { break };
        let part = inner[..end].trim();
        rest = inner[end + 1..].trim_start();
        let (head, scope) = match part.split_once(" on ") {
            Some((h, s)) => (h.trim(), Some(s.trim())),
            None => (part, None),
        };
        if status_of_transition(head).is_some() {
            out.transition = Some(head.to_string());
            out.scope = scope.map(|s| s.trim_start_matches('{').trim_end_matches('}').to_string());
        } else if Severity::parse_loose(part).is_some() {
            out.priority = Some(part.to_string());
        }
    }
    out.name = rest.to_string();
    out
}

/// `service:api,env:prod,monitor` → labels; a tag without a value gets an empty one, and a
/// key given several values keeps them all, comma-separated.
fn add_tags(labels: &mut BTreeMap<String, String>, tags: &str, overwrite: bool) {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for tag in tags.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (k, v) = tag.split_once(':').map(|(k, v)| (k.trim(), v.trim())).unwrap_or((tag, ""));
        if !k.is_empty() {
            seen.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    for (k, vs) in seen {
        if overwrite || !labels.contains_key(&k) {
            labels.insert(k, vs.join(","));
        }
    }
}

fn tags_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")),
        _ => None,
    }
}

/// Epoch milliseconds (Datadog's `$DATE`), epoch seconds, or RFC 3339.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(n) = text.parse::<i64>() {
        // Anything past the year 5138 in seconds is milliseconds.
        let t = if n.unsigned_abs() >= 100_000_000_000 { Utc.timestamp_millis_opt(n) } else { Utc.timestamp_opt(n, 0) };
        return t.single();
    }
    if let Ok(f) = text.parse::<f64>() {
        return Utc.timestamp_millis_opt((f * 1000.0) as i64).single();
    }
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

fn push_link(links: &mut Vec<Link>, rel: &str, url: &str) {
    let url = url.trim();
    if url.starts_with("http") && !links.iter().any(|l| l.url == url) {
        links.push(Link { rel: rel.into(), url: url.into() });
    }
}

/// Normalizes one Datadog webhook delivery.
pub fn normalize(headers: &Headers, body: &[u8], received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    let root = parse_body(headers, body)?;
    let obj = root.as_object().ok_or_else(|| shape("$", "must be an object"))?;
    let f = Fields(obj);
    if !ANY_OF.iter().any(|keys| f.get(keys).is_some()) {
        return Err(shape(
            "title",
            "is missing, and so are `body`, `alert_transition`, `alert_id`, `event_type` and `aggreg_key`: \
             this is not a Datadog notification",
        ));
    }
    let mut notes = Vec::new();
    let raw_title = f.text(TITLE);
    let title = raw_title.as_deref().map(parse_title).unwrap_or_default();
    // The default template wraps the message in `%%%` markdown fences.
    let body_text = f.text(BODY).map(|b| {
        let b = b.strip_prefix("%%%").unwrap_or(&b);
        b.strip_suffix("%%%").unwrap_or(b).trim().to_string()
    });

    // Links first: the monitor's status page also names the monitor and the group.
    let mut links = Vec::new();
    if let Some(url) = f.text(LINK) {
        push_link(&mut links, "source", &url);
    }
    if let Some(body) = &body_text {
        for m in MARKDOWN_LINK.captures_iter(body) {
            let text = m[1].trim().to_ascii_lowercase();
            let rel = if text.contains("runbook") {
                "runbook"
            } else if text.contains("dashboard") {
                "dashboard"
            } else if text == "monitor status" {
                if links.iter().any(|l| l.rel == "source") { "monitor" } else { "source" }
            } else if text.starts_with("edit") {
                "edit"
            } else {
                "related"
            };
            push_link(&mut links, rel, &m[2]);
        }
    }
    if let Some(url) = f.text(SNAPSHOT) {
        push_link(&mut links, "image", &url);
    }
    let (linked_monitor, linked_group) = links
        .iter()
        .find_map(|l| MONITOR_URL.captures(&l.url))
        .map(|c| {
            let group = c.get(2).and_then(|q| {
                form_urlencoded::parse(q.as_str().as_bytes())
                    .find(|(k, _)| k == "group")
                    .map(|(_, v)| v.into_owned())
                    .filter(|v| !v.is_empty())
            });
            (Some(c[1].to_string()), group)
        })
        .unwrap_or((None, None));

    let mut labels = BTreeMap::new();
    if let Some(tags) = TAGS.iter().find_map(|k| tags_text(obj.get(*k))) {
        add_tags(&mut labels, &tags, true);
    }
    let scope = f.text(SCOPE).or_else(|| title.scope.clone());
    if let Some(scope) = &scope {
        add_tags(&mut labels, scope.trim_start_matches('{').trim_end_matches('}'), false);
    }
    if let Some(host) = f.text(HOST) {
        labels.entry("host".into()).or_insert(host);
    }
    let monitor_id = f.text(MONITOR_ID).or(linked_monitor);
    if let Some(id) = &monitor_id {
        labels.insert("monitor_id".into(), id.clone());
    }
    if let Some(t) = f.text(&["alert_transition"]).filter(|t| status_of_transition(t).is_none()) {
        notes.push(format!("`alert_transition` is `{t}`, not a transition Sparky knows"));
    }
    let transition =
        f.first_read(TRANSITION, status_of_transition).map(|(t, _)| t).or_else(|| title.transition.clone());
    if let Some(t) = &transition {
        labels.insert("transition".into(), t.clone());
    }
    if let Some(t) = f.text(EVENT_TYPE) {
        labels.insert("event_type".into(), t);
    }
    let alert_type = f.text(ALERT_TYPE);
    if let Some(t) = &alert_type {
        labels.insert("alert_type".into(), t.clone());
    }
    let priority = f.first_read(PRIORITY, Severity::parse_loose).or_else(|| {
        let p = title.priority.clone()?;
        Severity::parse_loose(&p).map(|s| (p, s))
    });
    if let Some((p, _)) = &priority {
        labels.insert("priority".into(), p.clone());
    }

    let mut annotations = BTreeMap::new();
    if let Some(t) = &raw_title {
        annotations.insert("summary".into(), t.clone());
    }
    if let Some(d) = f.text(TEXT_ONLY).or_else(|| body_text.clone()) {
        annotations.insert("description".into(), d);
    }
    for key in KEPT {
        if let Some(v) = f.text(&[key]) {
            annotations.insert(key.to_string(), v);
        }
    }

    let alert_type_lc = alert_type.as_deref().map(str::to_ascii_lowercase);
    let status = match transition.as_deref().and_then(status_of_transition) {
        Some(s) => s,
        None => match alert_type_lc.as_deref() {
            Some("success") => Status::Resolved,
            Some("error" | "warning") => Status::Firing,
            _ => {
                notes.push(
                    "no alert transition (`alert_transition`, or `[Triggered]`/`[Recovered]` in the title); taken as firing"
                        .into(),
                );
                Status::Firing
            }
        },
    };
    let is_warn = transition.as_deref().is_some_and(|t| t.to_ascii_lowercase().contains("warn"));
    let severity = priority
        .map(|(_, s)| s)
        .or_else(|| alert_type.as_deref().and_then(Severity::parse_loose))
        .or_else(|| is_warn.then_some(Severity::Warning))
        .unwrap_or(DEFAULT_SEVERITY);

    let group = linked_group.or_else(|| scope.map(|s| s.trim_start_matches('{').trim_end_matches('}').to_string()));
    let fingerprint = if let Some(k) = f.text(AGGREGATION) {
        k
    } else if let Some(k) = f.text(CYCLE) {
        k
    } else if let Some(id) = &monitor_id {
        match &group {
            Some(g) => format!("{id}/{g}"),
            None => id.clone(),
        }
    } else if !title.name.is_empty() {
        notes.push("no aggregation key and no monitor id; the monitor is told by its name and scope".into());
        stable_id(&[&title.name, group.as_deref().unwrap_or("")])
    } else if let Some(id) = f.text(EVENT_ID) {
        notes.push("no aggregation key, monitor id or title; each notification is its own problem".into());
        id
    } else {
        return Err(shape("alert_id", "is missing, and so are `aggreg_key`, `alert_cycle_key`, `title` and `id`"));
    };

    let date = f.get(DATE);
    let occurred_at = match &date {
        Some((key, text)) => parse_time(text).or_else(|| {
            notes.push(format!("`{key}` is `{text}`, not a time; the time of receipt stands in"));
            None
        }),
        None => {
            notes.push("no `date`; the time of receipt stands in".into());
            None
        }
    }
    .unwrap_or(received_at);
    let event_id = f.text(EVENT_ID);
    let when = event_id.clone().or_else(|| date.map(|(_, t)| t)).unwrap_or_default();

    let summary = raw_title
        .as_deref()
        .and_then(|t| t.lines().next())
        .map(str::to_string)
        .or_else(|| body_text.as_deref().and_then(|b| b.lines().find(|l| !l.trim().is_empty())).map(str::to_string))
        .unwrap_or_else(|| format!("Datadog monitor {}", monitor_id.as_deref().unwrap_or(&fingerprint)));
    let service = infer_service(&labels);
    Ok(Batch {
        events: vec![Event {
            id: stable_id(&[SOURCE, &fingerprint, status.as_str(), &when]),
            source: SOURCE.into(),
            kind: Kind::Alert,
            status,
            fingerprint: format!("{SOURCE}/{fingerprint}"),
            service,
            severity,
            summary,
            labels,
            annotations,
            links,
            occurred_at,
            received_at,
            // `$ID` comes from the payload template, which may leave it out or fix it: not a
            // delivery id Datadog promises.
            delivery_id: None,
            payload: root,
        }],
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_give_transition_scope_and_priority() {
        let t = parse_title("[P1] [Triggered on {service:api,env:prod}] api latency high");
        assert_eq!(t.priority.as_deref(), Some("P1"));
        assert_eq!(t.transition.as_deref(), Some("Triggered"));
        assert_eq!(t.scope.as_deref(), Some("service:api,env:prod"));
        assert_eq!(t.name, "api latency high");
        let t = parse_title("[Recovered] disk full");
        assert_eq!(t.transition.as_deref(), Some("Recovered"));
        assert_eq!(t.scope, None);
        let t = parse_title("plain title");
        assert_eq!((t.transition, t.name.as_str()), (None, "plain title"));
    }

    #[test]
    fn transitions_read_loosely() {
        assert_eq!(status_of_transition("Re-Triggered"), Some(Status::Firing));
        assert_eq!(status_of_transition("No Data"), Some(Status::Firing));
        assert_eq!(status_of_transition("Re-Warn"), Some(Status::Firing));
        assert_eq!(status_of_transition("Recovered"), Some(Status::Resolved));
        assert_eq!(status_of_transition("Exploded"), None);
    }

    #[test]
    fn times_in_milliseconds_seconds_or_rfc3339() {
        let ms = parse_time("1773134500000").unwrap();
        assert_eq!(parse_time("1773134500").unwrap(), ms);
        assert_eq!(parse_time("2026-03-10T09:21:40Z").unwrap(), ms);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn tags_become_labels() {
        let mut labels = BTreeMap::new();
        add_tags(&mut labels, "service:api, env:prod,team:a,team:b,monitor", true);
        assert_eq!(labels["service"], "api");
        assert_eq!(labels["team"], "a,b");
        assert_eq!(labels["monitor"], "");
        add_tags(&mut labels, "service:other", false);
        assert_eq!(labels["service"], "api");
    }
}
