//! Grafana's webhook contact point, in its two shapes:
//!
//! - **unified alerting** (Grafana 8 and later): an Alertmanager-like group, one event per
//!   alert in `alerts`, with Grafana's extras (`silenceURL`, `dashboardURL`, `panelURL`,
//!   `valueString`);
//! - **legacy dashboard alerting** (before Grafana 11): one rule per delivery (`ruleId`,
//!   `ruleName`, `state`, `evalMatches`).
//!
//! The shape tells which: a body with `alerts` is unified, one with `ruleId`, `ruleName` or
//! `evalMatches` is legacy. Documented in `docs/sources/grafana.md`.

use super::alertmanager::infer_service;
use super::{Batch, Headers, IngestError, parse_json};
use crate::event::{Event, Kind, Link, Severity, Status, stable_id};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const SOURCE: &str = "grafana";

/// Severity of an alert whose `severity` label (or legacy tag) is absent or unrecognised: a
/// warning, as for Alertmanager, so it is neither lost nor paged for.
const DEFAULT_SEVERITY: Severity = Severity::Warning;

fn shape(path: impl Into<String>, reason: impl Into<String>) -> IngestError {
    IngestError::Shape { source: "Grafana", path: path.into(), reason: reason.into() }
}

/// Normalizes one Grafana webhook delivery, unified or legacy. Grafana sets no header this
/// reads (its signature is checked before, by `auth`).
pub fn normalize(_headers: &Headers, body: &[u8], received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    let mut root = parse_json(body)?;
    let obj = root.as_object_mut().ok_or_else(|| shape("$", "must be an object"))?;
    if obj.contains_key("alerts") {
        return unified(obj, received_at);
    }
    if ["ruleId", "ruleName", "evalMatches"].iter().any(|k| obj.contains_key(*k)) {
        return legacy(root, received_at);
    }
    Err(shape(
        "alerts",
        "is missing: a unified alerting payload has `alerts`, a legacy one `ruleId`, `ruleName` and `state`",
    ))
}

/// `path` names the value in errors; it is only built when there is one.
fn string_map(v: Option<&Value>, path: &dyn Fn() -> String) -> Result<BTreeMap<String, String>, IngestError> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(obj)) => obj
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(shape(format!("{}.{k}", path()), "must be a string")),
            })
            .collect(),
        Some(_) => Err(shape(path(), "must be an object of strings")),
    }
}

fn time(v: Option<&Value>, path: &dyn Fn() -> String) -> Result<Option<DateTime<Utc>>, IngestError> {
    match v.and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(t) => {
            let parsed = DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    shape(path(), format!("must be an RFC 3339 time such as `2026-03-10T08:41:10Z`, not `{t}`"))
                })?
                .with_timezone(&Utc);
            // Go's zero time (`0001-01-01T00:00:00Z`) means "not set".
            Ok((parsed.timestamp() > 0).then_some(parsed))
        }
    }
}

fn push_link(links: &mut Vec<Link>, rel: &str, url: Option<&str>) {
    if let Some(url) = url.map(str::trim).filter(|u| u.starts_with("http"))
        && !links.iter().any(|l| l.url == url)
    {
        links.push(Link { rel: rel.into(), url: url.into() });
    }
}

fn unified(obj: &mut Map<String, Value>, received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    // Each alert becomes its event's payload: moved out, not copied.
    let alerts = match obj.get_mut("alerts") {
        Some(Value::Array(alerts)) => std::mem::take(alerts),
        _ => return Err(shape("alerts", "must be an array of alerts")),
    };
    let obj = &*obj;
    let mut notes = Vec::new();
    if let Some(v) = obj.get("version").and_then(Value::as_str).filter(|v| *v != "1") {
        notes.push(format!("webhook version `{v}`; Sparky reads version 1"));
    }
    if let Some(n) = obj.get("truncatedAlerts").and_then(Value::as_u64).filter(|n| *n > 0) {
        notes.push(format!(
            "Grafana left out {n} alert(s) of this group (the contact point's `max_alerts`); they were not seen"
        ));
    }
    let external = obj.get("externalURL").and_then(Value::as_str);

    let mut events = Vec::with_capacity(alerts.len());
    for (i, alert) in alerts.into_iter().enumerate() {
        let at = |field: &str| format!("alerts[{i}].{field}");
        let a = alert.as_object().ok_or_else(|| shape(format!("alerts[{i}]"), "must be an object"))?;
        let labels = string_map(a.get("labels"), &|| at("labels"))?;
        let mut annotations = string_map(a.get("annotations"), &|| at("annotations"))?;
        let status = match a.get("status").and_then(Value::as_str) {
            Some("firing") => Status::Firing,
            Some("resolved") => Status::Resolved,
            Some(other) => return Err(shape(at("status"), format!("must be `firing` or `resolved`, not `{other}`"))),
            None => return Err(shape(at("status"), "is missing")),
        };
        let starts_at = time(a.get("startsAt"), &|| at("startsAt"))?;
        let ends_at = time(a.get("endsAt"), &|| at("endsAt"))?;
        let occurred = match status {
            Status::Resolved => ends_at.or(starts_at),
            _ => starts_at,
        };
        if occurred.is_none() {
            notes.push(format!("`{}` is not set; the time of receipt stands in", at("startsAt")));
        }
        let fingerprint = match a.get("fingerprint").and_then(Value::as_str).filter(|f| !f.is_empty()) {
            Some(f) => f.to_string(),
            None => {
                let flat: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                stable_id(&flat.iter().map(String::as_str).collect::<Vec<_>>())
            }
        };
        // The evaluated values, as Grafana prints them: `[ var='A' labels={...} value=1 ]`.
        if let Some(v) = a.get("valueString").and_then(Value::as_str).filter(|v| !v.is_empty()) {
            annotations.entry("valueString".into()).or_insert_with(|| v.to_string());
        }
        let severity = labels.get("severity").and_then(|s| Severity::parse_loose(s)).unwrap_or(DEFAULT_SEVERITY);
        let alertname = labels.get("alertname").cloned().unwrap_or_else(|| "unnamed alert".into());
        let summary = annotations
            .get("summary")
            .or_else(|| annotations.get("message"))
            .or_else(|| annotations.get("description"))
            .map(|s| format!("{alertname}: {s}"))
            .unwrap_or_else(|| alertname.clone());
        let mut links = Vec::new();
        let field = |k: &str| a.get(k).and_then(Value::as_str);
        push_link(&mut links, "source", field("generatorURL"));
        push_link(&mut links, "runbook", annotations.get("runbook_url").map(String::as_str));
        push_link(&mut links, "dashboard", field("dashboardURL"));
        push_link(&mut links, "panel", field("panelURL"));
        push_link(&mut links, "silence", field("silenceURL"));
        push_link(&mut links, "image", field("imageURL"));
        push_link(&mut links, "grafana", external);
        let starts = starts_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        events.push(Event {
            id: stable_id(&[SOURCE, &fingerprint, &starts, status.as_str()]),
            source: SOURCE.into(),
            kind: Kind::Alert,
            status,
            fingerprint: format!("{SOURCE}/{fingerprint}"),
            service: infer_service(&labels),
            severity,
            summary,
            labels,
            annotations,
            links,
            occurred_at: occurred.unwrap_or(received_at),
            received_at,
            // Grafana sends no delivery id (`groupKey` is shared by a group's notifications).
            delivery_id: None,
            payload: alert,
        });
    }
    Ok(Batch { events, notes })
}

/// A number or a string of one, as text: legacy Grafana sent ids as numbers, proxies and
/// templates sometimes as strings.
fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

fn legacy(root: Value, received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    let obj = root.as_object().ok_or_else(|| shape("$", "must be an object"))?;
    let state = match obj.get("state") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(shape("state", "must be a string")),
        None => return Err(shape("state", "is missing")),
    };
    // `pending` (the condition holds, not yet for long enough) and `paused` (nobody evaluates
    // the rule) announce no problem; `no_data` does: nothing reports at all.
    let status = match state {
        "alerting" | "no_data" => Status::Firing,
        "ok" => Status::Resolved,
        "pending" | "paused" => Status::Info,
        other => {
            return Err(shape(
                "state",
                format!("must be `alerting`, `ok`, `no_data`, `pending` or `paused`, not `{other}`"),
            ));
        }
    };
    let mut notes = vec!["legacy Grafana alerting sends no time; the time of receipt stands in".to_string()];
    let rule_id = id_text(obj.get("ruleId"));
    let rule_name = obj.get("ruleName").and_then(Value::as_str).filter(|s| !s.is_empty());
    let org_id = id_text(obj.get("orgId"));
    let fingerprint = match (&rule_id, rule_name) {
        (Some(id), _) => match &org_id {
            Some(org) => format!("legacy/{org}/{id}"),
            None => format!("legacy/{id}"),
        },
        (None, Some(name)) => {
            notes.push("no `ruleId`; the rule is told by its name".into());
            format!("legacy/{}", stable_id(&[name]))
        }
        (None, None) => return Err(shape("ruleId", "is missing (and so is `ruleName`)")),
    };
    let mut labels = BTreeMap::new();
    if let Some(tags) = obj.get("tags") {
        match tags {
            Value::Null => {}
            Value::Object(tags) => {
                for (k, v) in tags {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    labels.insert(k.clone(), v);
                }
            }
            _ => return Err(shape("tags", "must be an object")),
        }
    }
    let mut annotations = BTreeMap::new();
    for key in ["title", "message"] {
        if let Some(v) = obj.get(key).and_then(Value::as_str).filter(|v| !v.is_empty()) {
            annotations.insert(key.to_string(), v.to_string());
        }
    }
    let matches = match obj.get("evalMatches") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(m)) => m
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let m = m.as_object().ok_or_else(|| shape(format!("evalMatches[{i}]"), "must be an object"))?;
                let metric = m.get("metric").and_then(Value::as_str).unwrap_or("value");
                let value = match m.get("value") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "null".into(),
                };
                Ok(format!("{metric}={value}"))
            })
            .collect::<Result<Vec<_>, IngestError>>()?,
        Some(_) => return Err(shape("evalMatches", "must be an array")),
    };
    let value_string = matches.join(", ");
    if !value_string.is_empty() {
        annotations.insert("valueString".into(), value_string.clone());
    }
    labels.entry("state".into()).or_insert_with(|| state.to_string());
    let severity = labels.get("severity").and_then(|s| Severity::parse_loose(s)).unwrap_or(DEFAULT_SEVERITY);
    let name = rule_name.map(str::to_string).unwrap_or_else(|| format!("rule {}", rule_id.as_deref().unwrap_or("")));
    let first_line = |s: &str| s.lines().next().unwrap_or("").trim().to_string();
    let summary = match annotations.get("message").map(|m| first_line(m)).filter(|m| !m.is_empty()) {
        Some(m) => format!("{name}: {m}"),
        None => annotations.get("title").map(|t| first_line(t)).unwrap_or(name),
    };
    let mut links = Vec::new();
    push_link(&mut links, "source", obj.get("ruleUrl").and_then(Value::as_str));
    push_link(&mut links, "image", obj.get("imageUrl").and_then(Value::as_str));
    Ok(Batch {
        events: vec![Event {
            // No time to tell two occurrences apart: the values are the next best thing.
            id: stable_id(&[SOURCE, &fingerprint, state, &value_string]),
            source: SOURCE.into(),
            kind: Kind::Alert,
            status,
            fingerprint: format!("{SOURCE}/{fingerprint}"),
            service: infer_service(&labels),
            severity,
            summary,
            labels,
            annotations,
            links,
            occurred_at: received_at,
            received_at,
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
    fn bad_payloads_say_what_is_wrong() {
        let now = Utc::now();
        let e = normalize(&Headers::none(), b"[]", now).unwrap_err().to_string();
        assert_eq!(e, "not a valid Grafana payload: `$` must be an object");
        let e = normalize(&Headers::none(), br#"{"title": "x"}"#, now).unwrap_err().to_string();
        assert!(e.starts_with("not a valid Grafana payload: `alerts` is missing"), "{e}");
        let e = normalize(&Headers::none(), br#"{"alerts": [{"status": "pending"}]}"#, now).unwrap_err().to_string();
        assert!(e.contains("`alerts[0].status` must be `firing` or `resolved`, not `pending`"), "{e}");
        let e = normalize(&Headers::none(), br#"{"ruleId": 1, "state": "exploded"}"#, now).unwrap_err().to_string();
        assert!(e.contains("`state` must be `alerting`, `ok`"), "{e}");
        let e = normalize(&Headers::none(), br#"{"alerts": [{"status": "firing", "labels": {"a": 1}}]}"#, now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`alerts[0].labels.a` must be a string"), "{e}");
    }

    #[test]
    fn legacy_states_map_onto_statuses() {
        let now = Utc::now();
        let status = |state: &str| {
            let body = format!(r#"{{"ruleId": "7", "ruleName": "r", "state": "{state}"}}"#);
            normalize(&Headers::none(), body.as_bytes(), now).unwrap().events[0].status
        };
        assert_eq!(status("alerting"), Status::Firing);
        assert_eq!(status("no_data"), Status::Firing);
        assert_eq!(status("ok"), Status::Resolved);
        assert_eq!(status("pending"), Status::Info);
        assert_eq!(status("paused"), Status::Info);
    }
}
