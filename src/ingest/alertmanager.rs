//! Prometheus Alertmanager's webhook (`version: "4"`): one event per alert of the group.
//!
//! The group carries up to `max_alerts` alerts; `truncatedAlerts` says how many were left out,
//! and Sparky notes it rather than pretending it saw them all.

use super::{Batch, IngestError, parse_json};
use crate::event::{Event, Kind, Link, Severity, Status, stable_id};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

const SOURCE: &str = "alertmanager";

/// Severity of an alert whose `severity` label is absent or unrecognised: a warning, so it
/// is neither lost nor paged for.
const DEFAULT_SEVERITY: Severity = Severity::Warning;

fn shape(path: impl Into<String>, reason: impl Into<String>) -> IngestError {
    IngestError::Shape { source: "Alertmanager", path: path.into(), reason: reason.into() }
}

/// `path` names the value in errors; it is only built when there is one.
fn string_map(v: Option<&Value>, path: &dyn Fn() -> String) -> Result<BTreeMap<String, String>, IngestError> {
    let Some(v) = v else { return Ok(BTreeMap::new()) };
    if v.is_null() {
        return Ok(BTreeMap::new());
    }
    let obj = v.as_object().ok_or_else(|| shape(path(), "must be an object of strings"))?;
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(shape(format!("{}.{k}", path()), "must be a string")),
        })
        .collect()
}

fn time(v: Option<&Value>, path: &dyn Fn() -> String) -> Result<Option<DateTime<Utc>>, IngestError> {
    match v.and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(t) => {
            let parsed = DateTime::parse_from_rfc3339(t)
                .map_err(|e| shape(path(), format!("must be an RFC 3339 time, not `{t}` ({e})")))?
                .with_timezone(&Utc);
            // Go's zero time (`0001-01-01T00:00:00Z`) means "not set".
            Ok((parsed.timestamp() > 0).then_some(parsed))
        }
    }
}

/// The labels that name the Kubernetes object an alert is about, tried first: they name the
/// subject, while `service`, `job` and `app` on a kube-state-metrics alert often name the
/// exporter that reported it.
pub const WORKLOAD_LABELS: &[&str] = &["deployment", "statefulset", "daemonset", "horizontalpodautoscaler"];

/// The labels that may name the service, tried after the workload.
pub const SERVICE_LABELS: &[&str] = &["service", "app.kubernetes.io/name", "app"];

/// Every name the labels give for the service, in order: the workload behind `pod` (the pod
/// name without its ReplicaSet hash and random suffix), [`WORKLOAD_LABELS`], then
/// [`SERVICE_LABELS`]. Each comes with where it was read (`pod`, `app`, ...).
pub fn service_candidates(labels: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    if let Some(pod) = labels.get("pod").filter(|p| !p.is_empty()) {
        out.push(("pod", workload_of_pod(pod)));
    }
    out.extend(
        WORKLOAD_LABELS
            .iter()
            .chain(SERVICE_LABELS)
            .filter_map(|key| labels.get(*key).filter(|v| !v.is_empty()).map(|v| (*key, v.clone()))),
    );
    out
}

/// The service an alert is about without a catalog: the first of [`service_candidates`].
pub fn infer_service(labels: &BTreeMap<String, String>) -> Option<String> {
    service_candidates(labels).into_iter().next().map(|(_, v)| v)
}

/// `payments-api-7d9c8b6f5-x2x9q` → `payments-api`; `redis-0` → `redis`.
fn workload_of_pod(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    // Kubernetes writes generated names with an alphabet free of vowels (and of 0, 1, 3), so
    // `exporter` in `node-exporter-x7k2p` is never taken for a ReplicaSet hash.
    let generated = |s: &str| s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c));
    let is_suffix = |s: &str| s.len() == 5 && generated(s);
    let is_hash = |s: &str| (6..=10).contains(&s.len()) && generated(s);
    let is_ordinal = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match parts.as_slice() {
        [head @ .., hash, suffix] if !head.is_empty() && is_hash(hash) && is_suffix(suffix) => head.join("-"),
        [head @ .., ordinal] if !head.is_empty() && is_ordinal(ordinal) => head.join("-"),
        [head @ .., suffix] if !head.is_empty() && is_suffix(suffix) => head.join("-"),
        _ => pod.to_string(),
    }
}

/// Normalizes one Alertmanager notification.
pub fn normalize(body: &[u8], received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    let mut root = parse_json(body)?;
    let obj = root.as_object_mut().ok_or_else(|| shape("$", "must be an object"))?;
    // Each alert becomes its event's payload: moved out, not copied.
    let alerts = match obj.get_mut("alerts") {
        Some(Value::Array(alerts)) => std::mem::take(alerts),
        _ => return Err(shape("alerts", "must be an array of alerts")),
    };
    let obj = &*obj;
    let mut notes = Vec::new();
    if let Some(v) = obj.get("version").and_then(Value::as_str).filter(|v| *v != "4") {
        notes.push(format!("webhook version `{v}`; Sparky reads version 4"));
    }
    if let Some(n) = obj.get("truncatedAlerts").and_then(Value::as_u64).filter(|n| *n > 0) {
        notes.push(format!(
            "Alertmanager left out {n} alert(s) of this group (`max_alerts`); they arrive in later notifications or not at all"
        ));
    }
    let external = obj.get("externalURL").and_then(Value::as_str).unwrap_or("");

    let mut events = Vec::with_capacity(alerts.len());
    for (i, alert) in alerts.into_iter().enumerate() {
        let at = |field: &str| format!("alerts[{i}].{field}");
        let a = alert.as_object().ok_or_else(|| shape(format!("alerts[{i}]"), "must be an object"))?;
        let labels = string_map(a.get("labels"), &|| at("labels"))?;
        let annotations = string_map(a.get("annotations"), &|| at("annotations"))?;
        let status = match a.get("status").and_then(Value::as_str) {
            Some("firing") => Status::Firing,
            Some("resolved") => Status::Resolved,
            Some(other) => return Err(shape(at("status"), format!("must be `firing` or `resolved`, not `{other}`"))),
            None => return Err(shape(at("status"), "is missing")),
        };
        let starts_at = time(a.get("startsAt"), &|| at("startsAt"))?;
        let ends_at = time(a.get("endsAt"), &|| at("endsAt"))?;
        let occurred_at = match status {
            Status::Resolved => ends_at.or(starts_at),
            _ => starts_at,
        }
        .unwrap_or(received_at);
        let fingerprint = match a.get("fingerprint").and_then(Value::as_str).filter(|f| !f.is_empty()) {
            Some(f) => f.to_string(),
            // Older Alertmanagers send none: the label set identifies the alert.
            None => {
                let flat: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                stable_id(&flat.iter().map(String::as_str).collect::<Vec<_>>())
            }
        };
        let severity = labels.get("severity").and_then(|s| Severity::parse_loose(s)).unwrap_or(DEFAULT_SEVERITY);
        let alertname = labels.get("alertname").cloned().unwrap_or_else(|| "unnamed alert".into());
        let summary = annotations
            .get("summary")
            .or_else(|| annotations.get("message"))
            .or_else(|| annotations.get("description"))
            .map(|s| format!("{alertname}: {s}"))
            .unwrap_or_else(|| alertname.clone());
        let mut links = Vec::new();
        if let Some(url) = a.get("generatorURL").and_then(Value::as_str).filter(|u| !u.is_empty()) {
            links.push(Link { rel: "source".into(), url: url.into() });
        }
        for (key, rel) in [("runbook_url", "runbook"), ("dashboard_url", "dashboard"), ("dashboard", "dashboard")] {
            if let Some(url) = annotations.get(key).filter(|u| u.starts_with("http")) {
                links.push(Link { rel: rel.into(), url: url.clone() });
            }
        }
        if !external.is_empty() {
            links.push(Link { rel: "alertmanager".into(), url: external.to_string() });
        }
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
            occurred_at,
            received_at,
            // Alertmanager sends no delivery id: `groupKey` is shared by every notification
            // of a group, so it cannot tell a retry from the next notification.
            delivery_id: None,
            payload: alert,
        });
    }
    Ok(Batch { events, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_from_pod_names() {
        assert_eq!(workload_of_pod("payments-api-7d9c8b6f5-x2x9q"), "payments-api");
        assert_eq!(workload_of_pod("redis-0"), "redis");
        assert_eq!(workload_of_pod("node-exporter-x7k2p"), "node-exporter");
        assert_eq!(workload_of_pod("web-5d8f9c7b4d-zx9q2"), "web");
        assert_eq!(workload_of_pod("standalone"), "standalone");
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        let now = Utc::now();
        let e = normalize(b"{", now).unwrap_err().to_string();
        assert!(e.starts_with("the body is not valid JSON"), "{e}");
        let e = normalize(br#"{"alerts": 3}"#, now).unwrap_err().to_string();
        assert_eq!(e, "not a valid Alertmanager payload: `alerts` must be an array of alerts");
        let e = normalize(br#"{"alerts": [{"status": "pending"}]}"#, now).unwrap_err().to_string();
        assert!(e.contains("`alerts[0].status` must be `firing` or `resolved`, not `pending`"), "{e}");
    }
}
