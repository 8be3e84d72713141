//! Deploys, as the knowledge graph keeps them: read from every `deploy` event whatever its
//! sender (GitHub `deployment`, `deployment_status` and deploy workflows, CDEvents
//! `service.deployed` / `upgraded` / `rolledback`, a generic `deploy` event).
//!
//! One deploy is one row however many events tell of it: GitHub sends a `deployment` and
//! then a `deployment_status` per state change, all with the deployment's fingerprint. The
//! deploy keeps its first time (when it started) and its latest state.

use crate::event::{Event, Kind, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a deploy went, as far as Sparky heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployState {
    /// Requested or running.
    Started,
    Succeeded,
    Failed,
    /// The sender did not say.
    Unknown,
}

impl DeployState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployState::Started => "started",
            DeployState::Succeeded => "succeeded",
            DeployState::Failed => "failed",
            DeployState::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> DeployState {
        match text {
            "started" => DeployState::Started,
            "succeeded" => DeployState::Succeeded,
            "failed" => DeployState::Failed,
            _ => DeployState::Unknown,
        }
    }
}

/// One deploy of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    /// The deploy's identity: GitHub's deployment or run (its events merge), otherwise the
    /// event's own id.
    pub key: String,
    pub service: String,
    /// When it started (the earliest event about it).
    pub at: DateTime<Utc>,
    pub state: DeployState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// What was deployed: a version, a ref or an artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The commit, when the sender names one (what a `revert` fix reverts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The repository, `owner/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Who or what deployed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// A link to the deploy (its logs, its run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub source: String,
    pub summary: String,
}

impl Deploy {
    /// The map `kg::recent_deploys` returns.
    pub fn to_map(&self) -> rhai::Map {
        let mut m = rhai::Map::new();
        let text = |v: &Option<String>| v.clone().unwrap_or_default().into();
        m.insert("key".into(), self.key.clone().into());
        m.insert("service".into(), self.service.clone().into());
        m.insert("at".into(), self.at.to_rfc3339().into());
        m.insert("state".into(), self.state.as_str().into());
        m.insert("environment".into(), text(&self.environment));
        m.insert("version".into(), text(&self.version));
        m.insert("commit".into(), text(&self.commit));
        m.insert("repository".into(), text(&self.repository));
        m.insert("by".into(), text(&self.by));
        m.insert("url".into(), text(&self.url));
        m.insert("source".into(), self.source.clone().into());
        m.insert("summary".into(), self.summary.clone().into());
        m
    }

    /// Merges a later event about the same deploy: the start time stays the earliest, the
    /// state is the latest word (except that a deploy that finished never goes back to
    /// started: a late or redelivered `deployment` event), facts the first event left out are
    /// filled in, and the summary is the latest. The store's upsert follows the same rule.
    pub fn merge(&mut self, later: Deploy) {
        if later.at < self.at {
            self.at = later.at;
        }
        let finished = matches!(self.state, DeployState::Succeeded | DeployState::Failed);
        if later.state != DeployState::Unknown && !(finished && later.state == DeployState::Started) {
            self.state = later.state;
        }
        self.summary = later.summary;
        for (mine, theirs) in [
            (&mut self.environment, later.environment),
            (&mut self.version, later.version),
            (&mut self.commit, later.commit),
            (&mut self.repository, later.repository),
            (&mut self.by, later.by),
            (&mut self.url, later.url),
        ] {
            if mine.is_none() {
                *mine = theirs;
            }
        }
    }
}

/// The deploy an event tells of, when it is a deploy of a known service. `service` is the
/// service as the catalog names it (the event's own, or the one its repository maps to).
pub fn deploy_of(event: &Event, service: Option<&str>) -> Option<Deploy> {
    if event.kind != Kind::Deploy {
        return None;
    }
    let service = service.or(event.service.as_deref())?.to_string();
    let label = |keys: &[&str]| keys.iter().find_map(|k| event.labels.get(*k).filter(|v| !v.is_empty()).cloned());
    let state = match label(&["state", "conclusion", "status"]).as_deref() {
        // GitHub's `deployment` event: a deploy was asked for; its statuses follow.
        _ if event.labels.get("event").is_some_and(|e| e == "deployment") => DeployState::Started,
        Some("success" | "succeeded" | "completed" | "deployed" | "done") => DeployState::Succeeded,
        Some("failure" | "error" | "failed" | "timed_out" | "startup_failure" | "cancelled") => DeployState::Failed,
        Some("queued" | "pending" | "in_progress" | "requested" | "waiting" | "created" | "started") => {
            DeployState::Started
        }
        // A CDEvent `service.deployed` is sent once the service runs the new version.
        _ if event.labels.get("cdevent").is_some_and(|c| c.starts_with("service.")) => DeployState::Succeeded,
        _ if event.severity >= Severity::Warning => DeployState::Failed,
        _ => DeployState::Unknown,
    };
    let version = label(&["version", "artifact", "ref", "branch"]);
    let url = ["logs", "source", "environment", "deploy"]
        .iter()
        .find_map(|rel| event.links.iter().find(|l| l.rel == *rel))
        .map(|l| l.url.clone());
    // GitHub names the deployment (or the run) in the fingerprint, and sends an event per
    // state change: those merge. Other senders' fingerprints may name the service, not the
    // deploy (a CloudEvent's subject, a generic source's labels): each event is a deploy of
    // its own, or a new deploy would be merged into the first one and keep its time.
    let key = if event.source == "github" { event.fingerprint.clone() } else { event.id.clone() };
    Some(Deploy {
        key,
        service,
        at: event.occurred_at,
        state,
        environment: label(&["environment", "env"]),
        version,
        commit: label(&["sha", "commit", "revision"]),
        repository: label(&["repository", "repo"]),
        by: label(&["creator", "by", "actor", "sender"]),
        url,
        source: event.source.clone(),
        summary: event.summary.clone(),
    })
}
