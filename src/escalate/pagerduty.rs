//! PagerDuty Events API v2: `trigger` with the incident key as `dedup_key` (PagerDuty folds
//! a retry into the alert it already has, so a page is never doubled), `acknowledge` and
//! `resolve` with the same key. The routing key is the service's
//! (`pagerduty.com/integration-key` in the catalog) or the configured default; it is a secret
//! and is never logged or recorded.

use super::http::{DeliveryError, send};
use super::{EscalationPackage, IssueLink, Note};
use crate::actions::{Mode, Secret};
use crate::escalate::package::truncate;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// PagerDuty's limit on `payload.summary`.
const SUMMARY_MAX: usize = 1024;

/// `integrations.pagerduty`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerDutyConfig {
    /// Overrides `integrations.mode` for PagerDuty.
    pub mode: Option<Mode>,
    /// Whether escalations page at all.
    pub enabled: bool,
    /// The Events API host (`https://events.pagerduty.com`; `https://events.eu.pagerduty.com`
    /// for EU accounts).
    pub url: String,
    /// The integration key used when the service's catalog entry has none.
    pub routing_key: Option<Secret>,
    /// Send `acknowledge` when the source acknowledges the incident.
    pub acknowledge: bool,
    /// The least time between two events of one routing key (PagerDuty throttles a key that
    /// sends faster than about 120 events a minute): `500ms`.
    pub min_interval: String,
    /// Per request; `10s` when left out.
    pub timeout: Option<String>,
}

impl Default for PagerDutyConfig {
    fn default() -> Self {
        PagerDutyConfig {
            mode: None,
            enabled: false,
            url: "https://events.pagerduty.com".into(),
            routing_key: None,
            acknowledge: false,
            min_interval: "500ms".into(),
            timeout: None,
        }
    }
}

impl PagerDutyConfig {
    /// Checks the URL and durations; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return Err(format!("`integrations.pagerduty.url`: `{}` is not an http(s) URL", self.url)),
        }
        for (key, value) in [("min_interval", Some(&self.min_interval)), ("timeout", self.timeout.as_ref())] {
            if let Some(v) = value
                && crate::dsl::parse_duration(v).is_none()
            {
                return Err(format!("`integrations.pagerduty.{key}`: `{v}` is not a duration; write e.g. `500ms`"));
            }
        }
        Ok(())
    }

    pub fn min_interval(&self) -> Duration {
        Duration::from_millis(crate::dsl::parse_duration(&self.min_interval).unwrap_or(500))
    }
}

/// A PagerDuty Events API v2 client.
#[derive(Debug, Clone)]
pub struct PagerDuty {
    config: PagerDutyConfig,
    http: reqwest::Client,
}

/// Sparky's severity → PagerDuty's (`critical`, `error`, `warning`, `info`).
fn severity(sparky: &str) -> &'static str {
    match sparky {
        "critical" => "critical",
        "high" => "error",
        "warning" => "warning",
        _ => "info",
    }
}

impl PagerDuty {
    pub fn new(config: PagerDutyConfig) -> PagerDuty {
        let timeout = config.timeout.as_deref().and_then(crate::dsl::parse_duration).unwrap_or(10_000);
        let http = crate::escalate::http::client(Duration::from_millis(timeout));
        PagerDuty { config, http }
    }

    pub fn config(&self) -> &PagerDutyConfig {
        &self.config
    }

    /// The routing key: the service's, else the configured default.
    pub fn routing_key(&self, service_key: Option<String>) -> Result<Secret, DeliveryError> {
        service_key.filter(|k| !k.is_empty()).map(Secret).or_else(|| self.config.routing_key.clone()).ok_or_else(|| {
            DeliveryError::Permanent(
                "no PagerDuty routing key: set `pagerduty.com/integration-key` on the service in the catalog, or `integrations.pagerduty.routing_key`"
                    .into(),
            )
        })
    }

    /// The `trigger` event of `p`, the routing key left out (it is added when sent): what
    /// dry-run records.
    pub fn trigger_event(&self, p: &EscalationPackage, jira: Option<&IssueLink>) -> Value {
        let e = &p.package.event;
        let service = p.service();
        let mut links: Vec<Value> = Vec::new();
        if let Some(j) = jira {
            links.push(json!({ "href": j.url, "text": format!("Jira {}", j.key) }));
        }
        links.extend(p.package.links.iter().take(10).map(|l| json!({ "href": l.url, "text": l.rel })));
        let class = e.labels.get("alertname").cloned().unwrap_or_else(|| e.kind.clone());
        let mut payload = json!({
            "summary": truncate(&format!("[{}] {}", p.priority, p.title()), SUMMARY_MAX),
            "source": service.unwrap_or(&e.source),
            "severity": severity(&e.severity),
            "timestamp": e.occurred_at.to_rfc3339(),
            "class": class,
            "custom_details": custom_details(p, jira),
        });
        if let Some(s) = service {
            payload["component"] = json!(s);
        }
        if let Some(system) = p.package.service.as_ref().and_then(|s| s.catalog.as_ref()).and_then(|c| c.system.clone())
        {
            payload["group"] = json!(system);
        }
        json!({
            "event_action": "trigger",
            "dedup_key": p.incident_key,
            "payload": payload,
            "links": links,
            "client": "Sparky",
        })
    }

    /// An `acknowledge` or `resolve` event for `note`'s incident.
    pub fn state_event(&self, action: &str, note: &Note) -> Value {
        json!({ "event_action": action, "dedup_key": note.incident_key })
    }

    /// Sends `event` with `routing_key`.
    pub async fn send(&self, routing_key: &Secret, event: &Value) -> Result<(), DeliveryError> {
        let mut body = event.clone();
        body["routing_key"] = json!(routing_key.expose());
        let url = format!("{}/v2/enqueue", self.config.url.trim_end_matches('/'));
        let (_, answer) = send(self.http.post(url).json(&body), "PagerDuty").await?;
        match answer.get("status").and_then(Value::as_str) {
            Some("success") | None => Ok(()),
            Some(other) => Err(DeliveryError::retry(format!("PagerDuty answered `{other}`: {answer}"))),
        }
    }
}

/// What the responder sees under "custom details": the package in a few fields.
fn custom_details(p: &EscalationPackage, jira: Option<&IssueLink>) -> Value {
    let pkg = &p.package;
    let mut d = serde_json::Map::new();
    d.insert("incident".into(), json!(p.incident_key));
    d.insert("priority".into(), json!(p.priority));
    d.insert("why escalated".into(), json!(p.cause));
    if let Some(j) = jira {
        d.insert("jira".into(), json!(format!("{} {}", j.key, j.url)));
    }
    if let Some(a) = &p.attempt {
        d.insert("what Sparky tried".into(), json!(a.describe()));
        if !a.detail.is_null() {
            // Bounded: PagerDuty refuses an event over 512 KB, and a refused page is lost.
            d.insert("attempt detail".into(), json!(super::package::detail_json(&a.detail)));
        }
    }
    let e = &pkg.event;
    d.insert(
        "event".into(),
        json!(format!(
            "{} {} {} from {}, since {}",
            e.kind,
            e.status,
            e.severity,
            e.source,
            e.occurred_at.to_rfc3339()
        )),
    );
    d.insert("fingerprint".into(), json!(e.fingerprint));
    if !e.labels.is_empty() {
        let labels: serde_json::Map<String, Value> =
            e.labels.iter().take(50).map(|(k, v)| (k.clone(), json!(truncate(v, 500)))).collect();
        d.insert("labels".into(), Value::Object(labels));
    }
    if let Some(s) = &pkg.service {
        d.insert("service".into(), json!(s.name));
        if let Some(o) = &s.owner {
            d.insert("owner".into(), json!(super::package::owner_text(o)));
        }
        if let Some(on) = &s.oncall {
            d.insert("on call".into(), json!(on));
        }
        if let Some(r) = s.catalog.as_ref().and_then(|c| c.runbook.clone()) {
            d.insert("runbook".into(), json!(r));
        }
    }
    if !pkg.recent_deploys.is_empty() {
        let deploys: Vec<String> = pkg.recent_deploys.iter().take(5).map(super::package::deploy_text).collect();
        d.insert("recent deploys".into(), json!(deploys));
    }
    if !pkg.past_incidents.is_empty() {
        d.insert("past incidents (90 days)".into(), json!(pkg.past_incidents.len()));
    }
    if pkg.downstream_total > 0 {
        d.insert("downstream".into(), json!(super::package::downstream_text(pkg)));
    }
    if let Some(a) = &pkg.analysis {
        d.insert("analysis".into(), json!(a.summary));
        if let Some(rc) = &a.root_cause {
            d.insert("likely root cause".into(), json!(format!("{rc} ({:.0}%)", a.confidence)));
        }
    }
    if let Some(dec) = &pkg.decision {
        d.insert("decision".into(), json!(dec.reasons));
        if !dec.refused_guards.is_empty() {
            d.insert("refused guards".into(), json!(dec.refused_guards));
        }
    }
    Value::Object(d)
}
