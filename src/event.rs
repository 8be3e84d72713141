//! The normalized event: what every webhook source is turned into, and what triage decides on.
//! Documented field by field in `docs/events.md`; keep the two in step.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// What kind of operational event this is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Alert,
    Incident,
    Deploy,
    Change,
    K8sEvent,
    Schedule,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Incident => "incident",
            Kind::Deploy => "deploy",
            Kind::Change => "change",
            Kind::K8sEvent => "k8s_event",
            Kind::Schedule => "schedule",
        }
    }
}

/// Where the event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The problem is happening (an alert firing, an incident triggered).
    Firing,
    /// Someone took it (an incident acknowledged).
    Acknowledged,
    /// It is over. Resolved events never start a remediation.
    Resolved,
    /// Neither: a deploy, a change, a schedule tick.
    Info,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
            Status::Info => "info",
        }
    }
}

/// How urgent the event is, on Sparky's own scale; each source's levels map onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Reads the many spellings senders use (`P1`, `error`, `sev2`, `major`, ...). `None` for
    /// text that names no level.
    pub fn parse_loose(text: &str) -> Option<Severity> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "fatal" | "emergency" | "emerg" | "alert" | "page" | "p1" | "sev1" | "sev-1"
            | "disaster" => Severity::Critical,
            "high" | "error" | "err" | "major" | "p2" | "sev2" | "sev-2" => Severity::High,
            "warning" | "warn" | "medium" | "minor" | "average" | "p3" | "sev3" | "sev-3" => Severity::Warning,
            "info" | "informational" | "information" | "low" | "none" | "notice" | "ok" | "debug" | "p4" | "p5"
            | "sev4" | "sev-4" | "sev5" => Severity::Info,
            _ => return None,
        })
    }
}

/// A link worth following from the event: the graph that fired, the runbook, the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// What it is: `source`, `runbook`, `dashboard`, `silence`, ...
    pub rel: String,
    pub url: String,
}

/// A normalized operational event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Sparky's id: stable for the same occurrence, so a repeated notification has the same id.
    pub id: String,
    /// The sender: `alertmanager`, `grafana`, `pagerduty`, ...
    pub source: String,
    pub kind: Kind,
    pub status: Status,
    /// What makes two events "the same problem" (dedup and incident key), prefixed with the
    /// source so that senders cannot collide.
    pub fingerprint: String,
    /// The service concerned, as the catalog names it, when it can be told.
    #[serde(default)]
    pub service: Option<String>,
    pub severity: Severity,
    /// One line for people.
    pub summary: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub links: Vec<Link>,
    /// When it happened, by the sender's clock.
    pub occurred_at: DateTime<Utc>,
    /// When Sparky received it, by Sparky's clock.
    pub received_at: DateTime<Utc>,
    /// The id the sender documents as its delivery's, repeated by its retries, as the source
    /// reads it (`X-GitHub-Delivery`, PagerDuty's `X-Webhook-Id`, a CloudEvent's `source` and
    /// `id`, a generic source's `delivery_header`, a signed Standard Webhooks `webhook-id`);
    /// none when the sender sends none. The inbox deduplicates by it (`ingest::delivery`).
    #[serde(default)]
    pub delivery_id: Option<String>,
    /// The part of the original payload this event came from, unchanged.
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl Event {
    /// The value of a top-level field as matchers and templates read it; borrowed where the
    /// event holds it as text, since matchers read fields for every candidate playbook.
    pub fn top_field(&self, name: &str) -> Option<Cow<'_, str>> {
        Some(match name {
            "id" => Cow::Borrowed(&self.id),
            "source" => Cow::Borrowed(&self.source),
            "kind" => Cow::Borrowed(self.kind.as_str()),
            "status" => Cow::Borrowed(self.status.as_str()),
            "fingerprint" => Cow::Borrowed(&self.fingerprint),
            "service" => Cow::Borrowed(self.service.as_deref()?),
            "severity" => Cow::Borrowed(self.severity.as_str()),
            "summary" => Cow::Borrowed(&self.summary),
            "occurred_at" => Cow::Owned(self.occurred_at.to_rfc3339()),
            "received_at" => Cow::Owned(self.received_at.to_rfc3339()),
            "delivery_id" => Cow::Borrowed(self.delivery_id.as_deref()?),
            _ => return None,
        })
    }
}

impl Event {
    /// The event a schedule fires for `playbook` at `at`: it names its playbook in
    /// `labels.playbook`, which is how triage finds the playbook it belongs to.
    pub fn schedule(playbook: &str, at: DateTime<Utc>) -> Event {
        let when = at.to_rfc3339();
        Event {
            id: stable_id(&["schedule", playbook, &when]),
            source: "sparky".into(),
            kind: Kind::Schedule,
            status: Status::Info,
            fingerprint: format!("schedule/{playbook}"),
            service: None,
            severity: Severity::Info,
            summary: format!("scheduled run of {playbook}"),
            labels: BTreeMap::from([("playbook".to_string(), playbook.to_string())]),
            annotations: BTreeMap::new(),
            links: Vec::new(),
            occurred_at: at,
            received_at: at,
            delivery_id: None,
            payload: serde_json::Value::Null,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} `{}`", self.source, self.kind.as_str(), self.status.as_str(), self.summary)
    }
}

/// A short, stable id from the parts that identify an occurrence.
pub fn stable_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(16);
    for b in digest.iter().take(8) {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_read_loosely() {
        assert_eq!(Severity::parse_loose("P1"), Some(Severity::Critical));
        assert_eq!(Severity::parse_loose(" Error "), Some(Severity::High));
        assert_eq!(Severity::parse_loose("warn"), Some(Severity::Warning));
        assert_eq!(Severity::parse_loose("none"), Some(Severity::Info));
        assert_eq!(Severity::parse_loose("purple"), None);
        assert!(Severity::Critical > Severity::Warning);
    }

    #[test]
    fn stable_ids_depend_on_every_part() {
        assert_eq!(stable_id(&["a", "b"]), stable_id(&["a", "b"]));
        assert_ne!(stable_id(&["a", "b"]), stable_id(&["ab", ""]));
        assert_eq!(stable_id(&["x"]).len(), 16);
    }
}
