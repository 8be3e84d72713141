//! Past incidents, for "has this happened before?": what was decided, what was done, and
//! whether it worked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One incident Sparky opened, open or closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastIncident {
    /// The incident key (`SPK-…`).
    pub key: String,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub opened_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// The level that opened it (`L1`, `L2`, `L3`).
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(default)]
    pub summary: String,
    /// The actions an L1 planned (`k8s.delete_pod`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// The fix generator an L2 used (`revert`, `memory_limit`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// How it ended: `success` (verified, or a fix merged), `failure`, or `None` while unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Opened while its alert flapped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flapping: bool,
}

impl PastIncident {
    /// Whether what was done worked.
    pub fn worked(&self) -> bool {
        self.outcome.as_deref() == Some("success")
    }

    /// The map `kg::history` returns.
    pub fn to_map(&self) -> rhai::Map {
        let mut m = rhai::Map::new();
        let text = |v: &Option<String>| v.clone().unwrap_or_default().into();
        m.insert("key".into(), self.key.clone().into());
        m.insert("fingerprint".into(), self.fingerprint.clone().into());
        m.insert("service".into(), text(&self.service));
        m.insert("at".into(), self.opened_at.to_rfc3339().into());
        m.insert("closed_at".into(), self.closed_at.map(|c| c.to_rfc3339()).unwrap_or_default().into());
        m.insert("level".into(), self.level.clone().into());
        m.insert("playbook".into(), text(&self.playbook));
        m.insert("summary".into(), self.summary.clone().into());
        let actions: rhai::Array = self.actions.iter().map(|a| a.clone().into()).collect();
        m.insert("actions".into(), actions.into());
        m.insert("fix".into(), text(&self.fix));
        m.insert("outcome".into(), text(&self.outcome));
        m.insert("worked".into(), self.worked().into());
        m.insert("flapping".into(), self.flapping.into());
        m
    }
}
