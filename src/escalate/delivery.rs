//! The delivery worker: sends what the outbox holds to Jira, PagerDuty and Slack, one loop
//! per destination (a Jira outage never holds a page back), in order per incident, with
//! retries until the destination takes the message or refuses it for good.
//!
//! Exactly once per incident key, whatever the retries and restarts: the outbox has one
//! `open` row per incident and destination; the Jira issue is searched for by its
//! incident-key label before one is created (a create whose answer was lost, or a daemon
//! killed mid-delivery, finds its issue on the next attempt); PagerDuty folds events with
//! the same `dedup_key` into one alert. A page waits a little (`escalation.link_wait`) for
//! its Jira issue so that it can link to it, and goes out without the link after that.
//! Slack messages are at least once: a message whose answer was lost is posted again.

use super::http::{DeliveryError, backoff};
use super::jira::{Jira, JiraConfig};
use super::pagerduty::{PagerDuty, PagerDutyConfig};
use super::{EscalationPackage, IssueLink, Note, slack};
use crate::actions::clients::SlackConfig;
use crate::actions::{Mode, Secret};
use crate::store::{Destinations, OutboxCount, OutboxRow, RemoteLink, Store, StoreError};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify};

/// Rows taken per round and destination.
const BATCH: i64 = 32;

/// `escalation:` in the configuration: how escalations are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    /// The Slack webhook (a name of `integrations.slack.webhooks`) escalations are posted
    /// to; none: no Slack messages.
    pub slack_channel: Option<String>,
    /// How long a page and a Slack message wait for the incident's Jira issue, to link it.
    pub link_wait: String,
    /// At most one Jira comment this often for the repeats of an escalated alert (`0s`: none).
    pub repeat_comment_every: String,
    /// The longest pause between two attempts of one delivery.
    pub max_backoff: String,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            slack_channel: None,
            link_wait: "2m".into(),
            repeat_comment_every: "1h".into(),
            max_backoff: "5m".into(),
        }
    }
}

fn millis(text: &str) -> u64 {
    crate::dsl::parse_duration(text).unwrap_or(0)
}

impl EscalationConfig {
    /// Checks durations and the Slack channel; the message names the key.
    pub fn validate(&self, slack: &SlackConfig) -> Result<(), String> {
        for (key, value) in [
            ("link_wait", &self.link_wait),
            ("repeat_comment_every", &self.repeat_comment_every),
            ("max_backoff", &self.max_backoff),
        ] {
            if crate::dsl::parse_duration(value).is_none() {
                return Err(format!("`escalation.{key}`: `{value}` is not a duration; write e.g. `2m`"));
            }
        }
        if let Some(c) = &self.slack_channel
            && !slack.webhooks.contains_key(c)
        {
            let known: Vec<&str> = slack.webhooks.keys().map(String::as_str).collect();
            return Err(format!(
                "`escalation.slack_channel`: `{c}` is not a webhook of `integrations.slack.webhooks` (known: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ));
        }
        Ok(())
    }
}

/// What the delivery worker reports: metrics.
pub trait Observer: Send + Sync {
    /// One attempt ended: `delivered`, `dry_run`, `retry`, `failed`.
    fn attempted(&self, destination: &str, action: &str, outcome: &str);
    /// The outbox by destination and state.
    fn outbox(&self, counts: &[OutboxCount]);
}

/// Finds the PagerDuty integration key of a service in the catalog in force.
pub type RoutingKeys = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Everything the worker delivers with.
pub struct Delivery {
    store: Store,
    config: EscalationConfig,
    jira: Option<(Jira, Mode)>,
    pagerduty: Option<(PagerDuty, Mode)>,
    slack: Option<(Secret, Mode)>,
    http: reqwest::Client,
    routing_keys: RoutingKeys,
    observer: Arc<dyn Observer>,
    /// When each routing key last sent an event (by a hash of the key, never the key).
    last_page: Mutex<HashMap<u64, Instant>>,
    pub wake: Notify,
}

/// The integrations escalations use, as configured.
pub struct Integrations<'a> {
    pub mode: Mode,
    pub jira: &'a JiraConfig,
    pub pagerduty: &'a PagerDutyConfig,
    pub slack: &'a SlackConfig,
}

/// What one attempt came to.
enum Done {
    Delivered(Option<RemoteLink>),
    DryRun(Value),
    /// Not yet: something it depends on is not delivered.
    Wait(Duration),
}

impl Delivery {
    pub fn new(
        store: Store,
        config: EscalationConfig,
        integrations: Integrations<'_>,
        routing_keys: RoutingKeys,
        observer: Arc<dyn Observer>,
    ) -> Delivery {
        let global = integrations.mode;
        let jira = integrations
            .jira
            .enabled()
            .then(|| (Jira::new(integrations.jira.clone()), integrations.jira.mode.unwrap_or(global)));
        let pagerduty = integrations
            .pagerduty
            .enabled
            .then(|| (PagerDuty::new(integrations.pagerduty.clone()), integrations.pagerduty.mode.unwrap_or(global)));
        let slack = config
            .slack_channel
            .as_ref()
            .and_then(|c| integrations.slack.webhooks.get(c))
            .map(|url| (url.clone(), integrations.slack.mode.unwrap_or(global)));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sparky/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Delivery {
            store,
            config,
            jira,
            pagerduty,
            slack,
            http,
            routing_keys,
            observer,
            last_page: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    /// Where decisions and the engine write escalations for.
    pub fn destinations(&self) -> Destinations {
        Destinations {
            jira: self.jira.is_some(),
            pagerduty: self.pagerduty.is_some(),
            slack: self.slack.is_some(),
            acknowledge: self.pagerduty.as_ref().is_some_and(|(p, _)| p.config().acknowledge),
            repeat_every_ms: millis(&self.config.repeat_comment_every),
        }
    }

    /// Each destination's mode (`live`, `dry-run`), for the status API.
    pub fn modes(&self) -> Value {
        json!({
            "jira": self.jira.as_ref().map(|(_, m)| m.as_str()),
            "pagerduty": self.pagerduty.as_ref().map(|(_, m)| m.as_str()),
            "slack": self.slack.as_ref().map(|(_, m)| m.as_str()),
        })
    }

    /// Runs one loop per configured destination until `stop` is set. An attempt under way
    /// when it is set finishes first (each is bounded by its timeout).
    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        let mut loops = Vec::new();
        for (destination, configured) in
            [("jira", self.jira.is_some()), ("pagerduty", self.pagerduty.is_some()), ("slack", self.slack.is_some())]
        {
            if configured {
                let me = self.clone();
                let stop = stop.clone();
                loops.push(tokio::spawn(async move { me.run_one(destination, stop).await }));
            }
        }
        let me = self.clone();
        let gauges = tokio::spawn(async move {
            loop {
                if let Ok(counts) = me.store.outbox_counts().await {
                    me.observer.outbox(&counts);
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        for l in loops {
            let _ = l.await;
        }
        gauges.abort();
    }

    async fn run_one(&self, destination: &'static str, stop: Arc<AtomicBool>) {
        let mut backoff = Duration::from_millis(200);
        while !stop.load(Ordering::SeqCst) {
            match self.deliver_due(destination).await {
                Ok(0) => {
                    backoff = Duration::from_millis(200);
                    let _ = tokio::time::timeout(Duration::from_millis(500), self.wake.notified()).await;
                }
                Ok(_) => backoff = Duration::from_millis(200),
                Err(e) => {
                    tracing::error!(destination, error = %e, "the delivery worker cannot reach the store; escalations wait in the outbox");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Attempts every row of `destination` that is due; returns how many were attempted.
    pub async fn deliver_due(&self, destination: &str) -> Result<usize, StoreError> {
        let rows = self.store.outbox_due(destination, Utc::now(), BATCH).await?;
        for row in &rows {
            self.deliver(row).await?;
        }
        Ok(rows.len())
    }

    async fn deliver(&self, row: &OutboxRow) -> Result<(), StoreError> {
        let result = self.attempt(row).await;
        let now = Utc::now();
        let outcome = match result {
            Ok(Done::Delivered(link)) => {
                self.store.outbox_delivered(row, "delivered", link.as_ref(), None, now).await?;
                tracing::info!(
                    incident = %row.incident_key, destination = %row.destination, action = %row.action,
                    remote = link.as_ref().map_or("-", |l| l.remote.as_str()), attempts = row.attempts + 1,
                    "escalation delivered"
                );
                "delivered"
            }
            Ok(Done::DryRun(request)) => {
                self.store.outbox_delivered(row, "dry_run", None, Some(&request), now).await?;
                tracing::info!(incident = %row.incident_key, destination = %row.destination, action = %row.action, "escalation recorded, not sent (dry-run)");
                "dry_run"
            }
            Ok(Done::Wait(d)) => {
                let wait = chrono::Duration::from_std(d).unwrap_or_default();
                self.store.outbox_postpone(row.id, now + wait).await?;
                return Ok(());
            }
            Err(DeliveryError::Retry { reason, after }) => {
                let max = Duration::from_millis(millis(&self.config.max_backoff).max(1000));
                let pause = backoff(row.attempts, after, max, row.id as u64);
                let next = now + chrono::Duration::from_std(pause).unwrap_or_default();
                self.store.outbox_retry(row.id, &reason, next, now).await?;
                tracing::warn!(
                    incident = %row.incident_key, destination = %row.destination, action = %row.action,
                    attempts = row.attempts + 1, retry_in_s = pause.as_secs(), error = %reason,
                    "escalation not delivered yet; it stays in the outbox and is retried"
                );
                "retry"
            }
            Err(DeliveryError::Permanent(reason)) => {
                self.store.outbox_failed(row.id, &reason, now).await?;
                tracing::error!(
                    incident = %row.incident_key, destination = %row.destination, action = %row.action, error = %reason,
                    "the destination refused the escalation for good; fix the cause, then `POST /api/v1/outbox/{}/retry`", row.id
                );
                "failed"
            }
        };
        self.observer.attempted(&row.destination, &row.action, outcome);
        Ok(())
    }

    async fn attempt(&self, row: &OutboxRow) -> Result<Done, DeliveryError> {
        match row.destination.as_str() {
            "jira" => self.jira(row).await,
            "pagerduty" => self.pagerduty(row).await,
            "slack" => self.slack(row).await,
            other => Err(DeliveryError::Permanent(format!("`{other}` is not a destination this Sparky knows"))),
        }
    }

    /// The Jira issue of the incident, once it exists; `Err(Done)` says what to do meanwhile
    /// (wait for it, or record a dry-run).
    async fn issue(&self, row: &OutboxRow, waited: bool) -> Result<Option<IssueLink>, DeliveryError> {
        let found = self.store.escalation_link(&row.incident_key, "jira").await.map_err(store_error)?;
        if let Some(l) = found {
            return Ok(Some(IssueLink { key: l.remote, url: l.url.unwrap_or_default() }));
        }
        let state = self.store.outbox_state(&row.incident_key, "jira", "open").await.map_err(store_error)?;
        let link_wait = chrono::Duration::milliseconds(millis(&self.config.link_wait) as i64);
        if state.as_deref() == Some("pending") && !waited && Utc::now() < row.created_at + link_wait {
            return Err(DeliveryError::Retry { reason: WAITING.into(), after: None });
        }
        Ok(None)
    }

    async fn jira(&self, row: &OutboxRow) -> Result<Done, DeliveryError> {
        let Some((jira, mode)) = &self.jira else { return Err(not_configured("jira")) };
        if row.action == "open" {
            let p = package(row)?;
            if *mode == Mode::DryRun {
                return Ok(Done::DryRun(
                    json!({ "method": "POST", "path": "/issue", "body": jira.create_request(&p)? }),
                ));
            }
            let link = jira.open(&p).await?;
            return Ok(Done::Delivered(Some(RemoteLink { remote: link.key, url: Some(link.url) })));
        }
        let note = note(row)?;
        if *mode == Mode::DryRun {
            return Ok(Done::DryRun(
                json!({ "method": "POST", "path": "/issue/{key}/comment", "body": jira.comment_request(&note) }),
            ));
        }
        let Some(issue) = self.store.escalation_link(&row.incident_key, "jira").await.map_err(store_error)? else {
            let open = self.store.outbox_state(&row.incident_key, "jira", "open").await.map_err(store_error)?;
            return match open.as_deref() {
                Some("pending") => Ok(Done::Wait(Duration::from_secs(2))),
                _ => Err(DeliveryError::Permanent(format!(
                    "incident {} has no Jira issue to {} (its issue was not filed: {})",
                    row.incident_key,
                    if row.action == "resolve" { "resolve" } else { "comment on" },
                    open.as_deref().unwrap_or("never escalated to Jira")
                ))),
            };
        };
        match row.action.as_str() {
            "resolve" => jira.resolve(&issue.remote, &note).await?,
            _ => jira.comment(&issue.remote, &note).await?,
        }
        Ok(Done::Delivered(None))
    }

    async fn pagerduty(&self, row: &OutboxRow) -> Result<Done, DeliveryError> {
        let Some((pd, mode)) = &self.pagerduty else { return Err(not_configured("pagerduty")) };
        let (event, service) = if row.action == "open" {
            let p = package(row)?;
            let jira = match self.issue(row, false).await {
                Err(DeliveryError::Retry { reason, .. }) if reason == WAITING => {
                    return Ok(Done::Wait(Duration::from_secs(1)));
                }
                other => other?,
            };
            (pd.trigger_event(&p, jira.as_ref()), p.service().map(str::to_string))
        } else {
            let n = note(row)?;
            (
                pd.state_event(&row.action, &n),
                self.store.incident_service(&row.incident_key).await.map_err(store_error)?,
            )
        };
        if *mode == Mode::DryRun {
            return Ok(Done::DryRun(event));
        }
        let key = pd.routing_key(service.as_deref().and_then(|s| (self.routing_keys)(s)))?;
        self.pace(&key, pd.config().min_interval()).await;
        pd.send(&key, &event).await?;
        Ok(Done::Delivered(Some(RemoteLink { remote: row.incident_key.clone(), url: None })))
    }

    /// Keeps events of one routing key at least `min` apart.
    async fn pace(&self, key: &Secret, min: Duration) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.expose().hash(&mut h);
        let id = h.finish();
        let mut last = self.last_page.lock().await;
        if let Some(at) = last.get(&id) {
            let since = at.elapsed();
            if since < min {
                tokio::time::sleep(min - since).await;
            }
        }
        last.insert(id, Instant::now());
    }

    async fn slack(&self, row: &OutboxRow) -> Result<Done, DeliveryError> {
        let Some((url, mode)) = &self.slack else { return Err(not_configured("slack")) };
        let jira = match self.issue(row, row.action != "open").await {
            Err(DeliveryError::Retry { reason, .. }) if reason == WAITING => {
                return Ok(Done::Wait(Duration::from_secs(1)));
            }
            other => other?,
        };
        let message = if row.action == "open" {
            slack::message(&package(row)?, jira.as_ref())
        } else {
            slack::note(&note(row)?, jira.as_ref())
        };
        if *mode == Mode::DryRun {
            return Ok(Done::DryRun(message));
        }
        super::http::send(self.http.post(url.expose()).json(&message), "Slack").await?;
        Ok(Done::Delivered(None))
    }
}

/// The marker of "wait for the Jira issue" between `issue()` and its callers.
const WAITING: &str = "waiting for the Jira issue";

fn package(row: &OutboxRow) -> Result<EscalationPackage, DeliveryError> {
    serde_json::from_value(row.body.clone()).map_err(|e| {
        DeliveryError::Permanent(format!("outbox row {} does not hold an escalation package: {e}", row.id))
    })
}

fn note(row: &OutboxRow) -> Result<Note, DeliveryError> {
    serde_json::from_value(row.body.clone())
        .map_err(|e| DeliveryError::Permanent(format!("outbox row {} does not hold a note: {e}", row.id)))
}

fn not_configured(destination: &str) -> DeliveryError {
    DeliveryError::retry(format!(
        "`{destination}` is not configured any more; the row waits until it is (or is left to expire by hand)"
    ))
}

fn store_error(e: StoreError) -> DeliveryError {
    DeliveryError::retry(e.to_string())
}
