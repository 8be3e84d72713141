//! PagerDuty's webhooks: v3 (one `event` per delivery) and the legacy v2 extension (a
//! `messages` array, one event per message).
//!
//! Incident events become `incident` events whose status follows the incident (triggered →
//! firing, acknowledged, resolved); other resources (a service updated) become `change`
//! events. The Events API v2 bodies Sparky *sends* to PagerDuty are not webhooks and are
//! refused here. Documented in `docs/sources/pagerduty.md`.

use super::{Batch, Headers, IngestError, parse_json};
use crate::event::{Event, Kind, Link, Severity, Status, stable_id};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const SOURCE: &str = "pagerduty";

/// Severity of an incident with neither a priority Sparky can read nor an urgency.
const DEFAULT_SEVERITY: Severity = Severity::Warning;

fn shape(path: impl Into<String>, reason: impl Into<String>) -> IngestError {
    IngestError::Shape { source: "PagerDuty", path: path.into(), reason: reason.into() }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn time(v: Option<&Value>, path: &str) -> Result<Option<DateTime<Utc>>, IngestError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => DateTime::parse_from_rfc3339(t.trim())
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| shape(path, format!("must be an ISO 8601 time such as `2020-04-09T15:16:27Z`, not `{t}`"))),
        Some(_) => Err(shape(path, "must be an ISO 8601 time as a string")),
    }
}

fn push_link(links: &mut Vec<Link>, rel: &str, url: Option<&str>) {
    if let Some(url) = url.map(str::trim).filter(|u| u.starts_with("http"))
        && !links.iter().any(|l| l.url == url)
    {
        links.push(Link { rel: rel.into(), url: url.into() });
    }
}

/// Normalizes one PagerDuty webhook delivery (v3 or legacy v2).
pub fn normalize(headers: &Headers, body: &[u8], received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    let root = parse_json(body)?;
    let obj = root.as_object().ok_or_else(|| shape("$", "must be an object"))?;
    // Retries of a v3 delivery repeat it; v2 webhooks send none.
    let delivery_id = headers.get("x-webhook-id").map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    if obj.contains_key("event") {
        return v3(root, delivery_id, received_at);
    }
    if obj.contains_key("messages") {
        return v2(root, delivery_id, received_at);
    }
    if obj.contains_key("event_action") || obj.contains_key("routing_key") {
        return Err(shape(
            "event",
            "is missing: this is an Events API v2 event (what is sent to PagerDuty), not a webhook from it",
        ));
    }
    Err(shape("event", "is missing: a v3 webhook has `event`, a legacy v2 one `messages`"))
}

/// What v2 and v3 incident objects both say, under their two spellings.
struct Incident {
    id: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    links: Vec<Link>,
    service: Option<String>,
    severity: Severity,
    /// `[#2] A little bump in the road`
    title: String,
    status: Option<Status>,
}

fn status_of_incident(s: &str) -> Option<Status> {
    match s {
        "triggered" => Some(Status::Firing),
        "acknowledged" => Some(Status::Acknowledged),
        "resolved" => Some(Status::Resolved),
        _ => None,
    }
}

/// Reads an incident (or an incident reference: only the id and summary are then known).
fn read_incident(inc: &Value, path: &str) -> Result<Incident, IngestError> {
    if !inc.is_object() {
        return Err(shape(path, "must be an object"));
    }
    let id = str_at(inc, &["id"]).ok_or_else(|| shape(format!("{path}.id"), "is missing"))?.to_string();
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    let mut links = Vec::new();
    labels.insert("incident_id".into(), id.clone());
    let number = text_of(inc.get("number")).or_else(|| text_of(inc.get("incident_number")));
    if let Some(n) = &number {
        labels.insert("incident_number".into(), n.clone());
    }
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            labels.insert(key.into(), v.to_string());
        }
    };
    put("incident_key", str_at(inc, &["incident_key"]));
    put("urgency", str_at(inc, &["urgency"]));
    let priority = str_at(inc, &["priority", "summary"]).or_else(|| str_at(inc, &["priority", "name"]));
    put("priority", priority);
    put("service_id", str_at(inc, &["service", "id"]));
    put("escalation_policy", str_at(inc, &["escalation_policy", "summary"]));
    put("incident_type", str_at(inc, &["incident_type", "name"]));
    put("resolve_reason", str_at(inc, &["resolve_reason", "type"]));
    if let Some(Value::Array(teams)) = inc.get("teams") {
        let names: Vec<&str> = teams.iter().filter_map(|t| str_at(t, &["summary"])).collect();
        if !names.is_empty() {
            labels.insert("team".into(), names.join(","));
        }
    }
    let service =
        str_at(inc, &["service", "summary"]).or_else(|| str_at(inc, &["service", "name"])).map(str::to_string);
    let title_text = str_at(inc, &["title"]).or_else(|| str_at(inc, &["summary"])).unwrap_or("untitled incident");
    if let Some(t) = str_at(inc, &["title"]) {
        annotations.insert("summary".into(), t.to_string());
    }
    if let Some(d) = str_at(inc, &["description"]).filter(|d| Some(*d) != str_at(inc, &["title"])) {
        annotations.insert("description".into(), d.to_string());
    }
    // v3 titles come bare, v2 summaries already read `[#33] title`.
    let title = match &number {
        Some(n) if !title_text.starts_with('[') => format!("[#{n}] {title_text}"),
        _ => title_text.to_string(),
    };
    push_link(&mut links, "incident", str_at(inc, &["html_url"]));
    push_link(&mut links, "service", str_at(inc, &["service", "html_url"]));
    push_link(&mut links, "conference", str_at(inc, &["conference_bridge", "conference_url"]));
    if let Some(Value::Array(refs)) = inc.get("external_references") {
        for r in refs {
            let rel = str_at(r, &["summary"]).map(str::to_ascii_lowercase).unwrap_or_else(|| "external".into());
            push_link(&mut links, &rel, str_at(r, &["external_url"]));
        }
    }
    let severity = priority
        .and_then(Severity::parse_loose)
        .or_else(|| match str_at(inc, &["urgency"]) {
            Some("high") => Some(Severity::High),
            Some("low") => Some(Severity::Warning),
            _ => None,
        })
        .unwrap_or(DEFAULT_SEVERITY);
    Ok(Incident {
        id,
        labels,
        annotations,
        links,
        service,
        severity,
        title,
        status: str_at(inc, &["status"]).and_then(status_of_incident),
    })
}

fn v3(root: Value, delivery_id: Option<String>, received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    let Some(event) = root.get("event").filter(|e| e.is_object()) else {
        return Err(shape("event", "must be an object"));
    };
    let event_type = match event.get("event_type") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.trim(),
        Some(_) => return Err(shape("event.event_type", "must be a non-empty string")),
        None => return Err(shape("event.event_type", "is missing")),
    };
    if event_type == "pagey.ping" {
        return Ok(Batch {
            events: Vec::new(),
            notes: vec!["PagerDuty test event (`pagey.ping`): the subscription works; no event".into()],
        });
    }
    let mut notes = Vec::new();
    let occurred = time(event.get("occurred_at"), "event.occurred_at")?;
    if occurred.is_none() {
        notes.push("no `event.occurred_at`; the time of receipt stands in".into());
    }
    let occurred_at = occurred.unwrap_or(received_at);
    let data = event.get("data").filter(|d| d.is_object()).ok_or_else(|| shape("event.data", "must be an object"))?;
    let event_id = str_at(event, &["id"]).unwrap_or("");
    let agent = str_at(event, &["agent", "summary"]);
    let (resource, verb) = event_type.split_once('.').unwrap_or((event_type, ""));
    let resource = str_at(event, &["resource_type"]).unwrap_or(resource);

    let event = if resource == "incident" {
        // `data` is the incident, or (a note, a responder, a status update) names it.
        let is_incident = str_at(data, &["type"]).is_none_or(|t| t == "incident") && data.get("incident").is_none();
        let mut inc = if is_incident {
            read_incident(data, "event.data")?
        } else {
            read_incident(data.get("incident").unwrap_or(&Value::Null), "event.data.incident")?
        };
        let status = match verb {
            "triggered" | "unacknowledged" | "reopened" => Status::Firing,
            "acknowledged" => Status::Acknowledged,
            "resolved" => Status::Resolved,
            // An annotation, a reassignment, a new priority: the incident's own status when
            // the data carries it, else news without a life cycle.
            _ => inc.status.unwrap_or(Status::Info),
        };
        inc.labels.insert("event_type".into(), event_type.to_string());
        if let Some(a) = agent {
            inc.labels.insert("agent".into(), a.to_string());
        }
        for (key, field) in [("note", "content"), ("message", "message")] {
            if !is_incident && let Some(v) = str_at(data, &[field]) {
                inc.annotations.insert(key.into(), v.to_string());
            }
        }
        let what = verb.replace(['_', '.'], " ");
        let summary = match agent {
            Some(a) => format!("{}: {what} by {a}", inc.title),
            None => format!("{}: {what}", inc.title),
        };
        let fingerprint = format!("{SOURCE}/{}", inc.id);
        Event {
            id: stable_id(&[SOURCE, &fingerprint, status.as_str(), event_id, event_type]),
            source: SOURCE.into(),
            kind: Kind::Incident,
            status,
            fingerprint,
            service: inc.service,
            severity: inc.severity,
            summary,
            labels: inc.labels,
            annotations: inc.annotations,
            links: inc.links,
            occurred_at,
            received_at,
            delivery_id,
            payload: event.clone(),
        }
    } else {
        let mut labels = BTreeMap::new();
        labels.insert("event_type".into(), event_type.to_string());
        labels.insert("resource_type".into(), resource.to_string());
        let id = str_at(data, &["id"]);
        if let Some(id) = id {
            labels.insert(format!("{resource}_id"), id.to_string());
        }
        if let Some(a) = agent {
            labels.insert("agent".into(), a.to_string());
        }
        if let Some(Value::Array(teams)) = data.get("teams") {
            let names: Vec<&str> = teams.iter().filter_map(|t| str_at(t, &["summary"])).collect();
            if !names.is_empty() {
                labels.insert("team".into(), names.join(","));
            }
        }
        let name = str_at(data, &["summary"]).or_else(|| str_at(data, &["name"]));
        let fingerprint = match id {
            Some(id) => format!("{SOURCE}/{resource}/{id}"),
            None => {
                notes.push("`event.data.id` is missing; the event type stands in".into());
                format!("{SOURCE}/{event_type}")
            }
        };
        let mut links = Vec::new();
        push_link(&mut links, resource, str_at(data, &["html_url"]));
        let summary = match (name, agent) {
            (Some(n), Some(a)) => format!("{event_type}: {n} (by {a})"),
            (Some(n), None) => format!("{event_type}: {n}"),
            (None, _) => event_type.to_string(),
        };
        Event {
            id: stable_id(&[SOURCE, &fingerprint, Status::Info.as_str(), event_id, event_type]),
            source: SOURCE.into(),
            kind: Kind::Change,
            status: Status::Info,
            fingerprint,
            service: if resource == "service" { name.map(str::to_string) } else { None },
            severity: Severity::Info,
            summary,
            labels,
            annotations: BTreeMap::new(),
            links,
            occurred_at,
            received_at,
            delivery_id,
            payload: event.clone(),
        }
    };
    Ok(Batch { events: vec![event], notes })
}

fn v2(mut root: Value, delivery_id: Option<String>, received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    // Each message becomes its event's payload: moved out, not copied.
    let messages = match root.get_mut("messages") {
        Some(Value::Array(m)) => std::mem::take(m),
        _ => return Err(shape("messages", "must be an array of messages")),
    };
    let mut notes = Vec::new();
    let mut events = Vec::with_capacity(messages.len());
    for (i, message) in messages.into_iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].{field}");
        let m: &Map<String, Value> =
            message.as_object().ok_or_else(|| shape(format!("messages[{i}]"), "must be an object"))?;
        let event_type = match m.get("event") {
            Some(Value::String(t)) => t.trim().to_string(),
            Some(_) => return Err(shape(at("event"), "must be a string such as `incident.trigger`")),
            None if m.contains_key("type") && m.contains_key("data") => {
                return Err(shape(
                    at("event"),
                    "is missing: this looks like a v1 webhook, which PagerDuty retired in 2022; use a v3 webhook subscription",
                ));
            }
            None => return Err(shape(at("event"), "is missing")),
        };
        let mut inc = read_incident(m.get("incident").unwrap_or(&Value::Null), &at("incident"))?;
        let verb = event_type.strip_prefix("incident.").unwrap_or(&event_type);
        let status = match verb {
            "trigger" | "unacknowledge" => Status::Firing,
            "acknowledge" => Status::Acknowledged,
            "resolve" => Status::Resolved,
            _ => inc.status.unwrap_or(Status::Info),
        };
        let entry = m.get("log_entries").and_then(|l| l.get(0));
        let occurred = match time(m.get("created_on"), &at("created_on"))? {
            Some(t) => Some(t),
            None => entry.map(|e| time(e.get("created_at"), &at("log_entries[0].created_at"))).transpose()?.flatten(),
        };
        if occurred.is_none() {
            notes.push(format!("no `{}`; the time of receipt stands in", at("created_on")));
        }
        inc.labels.insert("event_type".into(), event_type.clone());
        let agent = entry.and_then(|e| str_at(e, &["agent", "summary"]));
        if let Some(a) = agent {
            inc.labels.insert("agent".into(), a.to_string());
        }
        let summary = match entry.and_then(|e| str_at(e, &["summary"])) {
            Some(what) => format!("{}: {what}", inc.title),
            None => format!("{}: {verb}", inc.title),
        };
        let fingerprint = format!("{SOURCE}/{}", inc.id);
        let message_id = str_at(&message, &["id"]).unwrap_or("").to_string();
        events.push(Event {
            id: stable_id(&[SOURCE, &fingerprint, status.as_str(), &message_id, &event_type]),
            source: SOURCE.into(),
            kind: Kind::Incident,
            status,
            fingerprint,
            service: inc.service,
            severity: inc.severity,
            summary,
            labels: inc.labels,
            annotations: inc.annotations,
            links: inc.links,
            occurred_at: occurred.unwrap_or(received_at),
            received_at,
            delivery_id: delivery_id.clone(),
            payload: message,
        });
    }
    if events.is_empty() {
        notes.push("the v2 webhook held no messages".into());
    }
    Ok(Batch { events, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str) -> Result<Batch, IngestError> {
        normalize(&Headers::none(), body.as_bytes(), Utc::now())
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        let e = run("{}").unwrap_err().to_string();
        assert_eq!(
            e,
            "not a valid PagerDuty payload: `event` is missing: a v3 webhook has `event`, a legacy v2 one `messages`"
        );
        let e = run(r#"{"event": {"event_type": "incident.triggered"}}"#).unwrap_err().to_string();
        assert_eq!(e, "not a valid PagerDuty payload: `event.data` must be an object");
        let e = run(r#"{"event": {"event_type": "incident.triggered", "data": {"type": "incident"}}}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "not a valid PagerDuty payload: `event.data.id` is missing");
        let e = run(r#"{"routing_key": "x", "event_action": "trigger"}"#).unwrap_err().to_string();
        assert!(e.contains("Events API v2 event"), "{e}");
        let e = run(r#"{"messages": [{"type": "incident.trigger", "data": {}}]}"#).unwrap_err().to_string();
        assert!(e.contains("`messages[0].event` is missing: this looks like a v1 webhook"), "{e}");
        let e = run(r#"{"event": {"event_type": "incident.resolved", "occurred_at": "soon", "data": {"id": "P1"}}}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "not a valid PagerDuty payload: `event.occurred_at` must be an ISO 8601 time such as `2020-04-09T15:16:27Z`, not `soon`"
        );
    }

    #[test]
    fn notes_and_updates_keep_the_incident_but_claim_no_status() {
        let body = r#"{"event": {"id": "E1", "event_type": "incident.annotated", "resource_type": "incident",
            "occurred_at": "2020-04-09T15:20:00Z",
            "data": {"incident": {"id": "PGR0VU2", "summary": "A little bump", "type": "incident_reference",
                     "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2"},
                     "id": "N1", "content": "rolled back", "type": "incident_note"}}}"#;
        let e = run(body).unwrap().events.remove(0);
        assert_eq!((e.kind, e.status), (Kind::Incident, Status::Info));
        assert_eq!(e.fingerprint, "pagerduty/PGR0VU2");
        assert_eq!(e.annotations["note"], "rolled back");
        let body = r#"{"event": {"id": "E2", "event_type": "incident.priority_updated", "resource_type": "incident",
            "data": {"id": "PGR0VU2", "type": "incident", "status": "acknowledged", "title": "t",
                     "priority": {"summary": "P2"}, "urgency": "low"}}}"#;
        let e = run(body).unwrap().events.remove(0);
        assert_eq!((e.status, e.severity), (Status::Acknowledged, Severity::High));
    }

    #[test]
    fn a_ping_is_no_event() {
        let body = r#"{"event": {"id": "01FK", "event_type": "pagey.ping", "resource_type": "pagey",
            "occurred_at": "2025-04-07T03:00:55.532Z", "data": {"message": "Hello", "type": "ping"}}}"#;
        let batch = run(body).unwrap();
        assert!(batch.events.is_empty());
        assert!(batch.notes[0].contains("pagey.ping"), "{:?}", batch.notes);
    }
}
