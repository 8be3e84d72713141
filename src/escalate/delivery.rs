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
//!
//! L2 fixes go the same way (destination `github`): the order an L2 decision wrote is carried
//! out by [`crate::fix::deliver`] — one at a time, so pushes and pull requests are serial —
//! and what came of it is recorded with what it tells the incident's other destinations.

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

/// How long a row is held for one attempt to Jira, PagerDuty or Slack: well past the longest
/// request with its retries of a connection.
const HOLD: Duration = Duration::from_secs(120);

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
            link_wait: "15s".into(),
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
    /// An L2 fix was carried out: `open`, `draft`, `refused`, `dry_run`, `merged`, `closed`.
    fn fixed(&self, generator: &str, state: &str) {
        let _ = (generator, state);
    }
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
    /// L2: fix branches and pull requests (`integrations.github`).
    github: Option<crate::fix::deliver::Pulls>,
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
    pub github: &'a crate::fix::github::GitHubConfig,
}

/// What one attempt came to.
enum Done {
    Delivered(Option<RemoteLink>),
    DryRun(Value),
    /// Not yet: something it depends on is not delivered.
    Wait(Duration),
    /// An L2 fix carried out (or refused, or rendered in dry-run).
    Fix(Box<crate::fix::deliver::FixResult>),
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
        let github = integrations.github.enabled.then(|| crate::fix::deliver::Pulls::new(integrations.github, global));
        let http = crate::escalate::http::client(Duration::from_secs(10));
        Delivery {
            store,
            config,
            jira,
            pagerduty,
            slack,
            github,
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
            github: self.github.is_some(),
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
            "github": self.github.as_ref().map(|p| p.mode().as_str()),
        })
    }

    /// Runs one loop per configured destination until `stop` is set. An attempt under way
    /// when it is set finishes first (each is bounded by its timeout); what is not delivered
    /// stays in the outbox for the next start.
    pub async fn run(self: Arc<Self>, stop: Arc<AtomicBool>) {
        match self.store.outbox_take_up(Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                rows = n,
                "escalations were being delivered when this replica stopped; each is attempted again now (an issue or pull request already made is found, not made twice)"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot take up the deliveries this replica had under way; they are attempted when their hold ends")
            }
        }
        let mut loops = Vec::new();
        for (destination, configured) in [
            ("jira", self.jira.is_some()),
            ("pagerduty", self.pagerduty.is_some()),
            ("slack", self.slack.is_some()),
            ("github", self.github.is_some()),
        ] {
            if configured {
                let me = self.clone();
                let stop = stop.clone();
                loops.push(tokio::spawn(async move { me.run_one(destination, stop).await }));
            }
        }
        let me = self.clone();
        let housekeeping = tokio::spawn(async move {
            let mut last_prune: Option<Instant> = None;
            loop {
                if let Ok(counts) = me.store.outbox_counts().await {
                    me.observer.outbox(&counts);
                }
                if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                    let before = Utc::now() - chrono::Duration::days(KEEP_DAYS);
                    match me.store.outbox_prune(before).await {
                        Ok(n) if n > 0 => {
                            tracing::info!(rows = n, days = KEEP_DAYS, "old delivered escalation messages pruned")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "pruning the outbox failed; it is tried again in an hour"),
                    }
                    last_prune = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        for l in loops {
            let _ = l.await;
        }
        housekeeping.abort();
    }

    async fn run_one(&self, destination: &'static str, stop: Arc<AtomicBool>) {
        let mut backoff = Duration::from_millis(200);
        while !stop.load(Ordering::SeqCst) {
            match self.deliver_due(destination, &stop).await {
                Ok(Round::Idle) => {
                    backoff = Duration::from_millis(200);
                    let _ = tokio::time::timeout(Duration::from_millis(500), self.wake.notified()).await;
                }
                Ok(Round::Busy) => backoff = Duration::from_millis(200),
                // The destination is throttling or failing: the rest of its rows wait for the
                // next round instead of piling on.
                Ok(Round::Backing(pause)) => {
                    let _ = tokio::time::timeout(pause.min(Duration::from_secs(5)), self.wake.notified()).await;
                }
                Err(e) => {
                    tracing::error!(destination, error = %e, "the delivery worker cannot reach the store; escalations wait in the outbox");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Attempts the rows of `destination` that are due, until one is refused for a reason
    /// that holds for the others too (a rate limit, a server error), or `stop` is set.
    async fn deliver_due(&self, destination: &str, stop: &AtomicBool) -> Result<Round, StoreError> {
        let rows = self.store.outbox_due(destination, Utc::now(), BATCH).await?;
        if rows.is_empty() {
            return Ok(Round::Idle);
        }
        for row in &rows {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            // Taken for the attempt, so that no other replica makes it too (a second Jira
            // issue); a replica that dies mid-attempt leaves the row due again at the end.
            let lease = match (destination, &self.github) {
                ("github", Some(pulls)) => pulls.longest_attempt() + HOLD,
                _ => HOLD,
            };
            let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
            if !self.store.outbox_take(row, until).await? {
                continue;
            }
            if let Some(pause) = self.deliver(row).await? {
                return Ok(Round::Backing(pause));
            }
        }
        Ok(Round::Busy)
    }

    /// One attempt of `row`, recorded; returns the pause the destination needs when it
    /// asked for one or is failing.
    async fn deliver(&self, row: &OutboxRow) -> Result<Option<Duration>, StoreError> {
        let mut result = self.attempt(row).await;
        if row.destination == "github" {
            result = self.fix_or_give_up(row, result);
        }
        let now = Utc::now();
        let mut pause = None;
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
            Ok(Done::Fix(result)) => {
                self.store.fix_attempted(row, &result, now).await?;
                let state = result.state();
                let generator = row.body.pointer("/fix/generator").and_then(Value::as_str).unwrap_or("-");
                self.observer.fixed(generator, state);
                match result.as_ref() {
                    crate::fix::deliver::FixResult::Refused { reason }
                    | crate::fix::deliver::FixResult::Failed { reason } => tracing::error!(
                        incident = %row.incident_key, generator, state, error = %reason,
                        "the L2 fix was not made; the incident is escalated with the attempt"
                    ),
                    crate::fix::deliver::FixResult::Opened { pull, created, .. } => tracing::info!(
                        incident = %row.incident_key, generator, state, pull = %pull.url, created,
                        "L2 pull request open for review"
                    ),
                    other => {
                        tracing::info!(incident = %row.incident_key, generator, state = other.state(), "L2 fix carried out")
                    }
                }
                match state {
                    "dry_run" => "dry_run",
                    "refused" | "failed" => "failed",
                    _ => "delivered",
                }
            }
            Ok(Done::Wait(d)) => {
                let wait = chrono::Duration::from_std(d).unwrap_or_default();
                self.store.outbox_postpone(row.id, now + wait).await?;
                return Ok(None);
            }
            Err(DeliveryError::Retry { reason, after, .. }) => {
                let max = Duration::from_millis(millis(&self.config.max_backoff).max(1000));
                let wait = backoff(row.attempts, after, max, row.id as u64);
                let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                self.store.outbox_retry(row.id, &reason, next, now).await?;
                tracing::warn!(
                    incident = %row.incident_key, destination = %row.destination, action = %row.action,
                    attempts = row.attempts + 1, retry_in_s = wait.as_secs(), error = %reason,
                    "escalation not delivered yet; it stays in the outbox and is retried"
                );
                pause = Some(after.unwrap_or(Duration::from_secs(1)));
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
        Ok(pause)
    }

    async fn attempt(&self, row: &OutboxRow) -> Result<Done, DeliveryError> {
        match row.destination.as_str() {
            "jira" => self.jira(row).await,
            "pagerduty" => self.pagerduty(row).await,
            "slack" => self.slack(row).await,
            "github" => self.fix(row).await,
            other => Err(DeliveryError::Permanent(format!("`{other}` is not a destination this Sparky knows"))),
        }
    }

    /// The Jira issue of the incident, or that the row should wait a little for it: a page or
    /// a message links to its issue when the issue is moments away (its first attempt is
    /// under way), never when Jira is failing or slow past `link_wait`.
    async fn issue(&self, row: &OutboxRow) -> Result<Linked, DeliveryError> {
        let found = self.store.escalation_link(&row.incident_key, "jira").await.map_err(store_error)?;
        if let Some(l) = found {
            return Ok(Linked::Issue(IssueLink { key: l.remote, url: l.url.unwrap_or_default() }));
        }
        if row.action != "open" {
            return Ok(Linked::None);
        }
        let open = self.store.outbox_state(&row.incident_key, "jira", "open").await.map_err(store_error)?;
        let link_wait = chrono::Duration::milliseconds(millis(&self.config.link_wait) as i64);
        match open {
            Some((state, attempts))
                if state == "pending" && attempts == 0 && Utc::now() < row.created_at + link_wait =>
            {
                Ok(Linked::Wait)
            }
            _ => Ok(Linked::None),
        }
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
            // Rows wait behind their `open` (pending or failed), so an issue that is missing
            // here was never filed: its `open` row was recorded in dry-run.
            return Err(DeliveryError::Permanent(format!(
                "incident {} has no Jira issue to {}: it was escalated while Jira was in dry-run",
                row.incident_key,
                if row.action == "resolve" { "resolve" } else { "comment on" },
            )));
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
            let jira = match self.issue(row).await? {
                Linked::Wait => return Ok(Done::Wait(Duration::from_secs(1))),
                Linked::Issue(l) => Some(l),
                Linked::None => None,
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

    /// Keeps events of one routing key at least `min` apart. The slot is taken under the
    /// lock and waited for outside it, so other keys are not held up.
    async fn pace(&self, key: &Secret, min: Duration) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.expose().hash(&mut h);
        let id = h.finish();
        let slot = {
            let mut last = self.last_page.lock().await;
            let now = Instant::now();
            let slot = last.get(&id).map_or(now, |at| (*at + min).max(now));
            last.insert(id, slot);
            slot
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(slot)).await;
    }

    /// An L2 fix that cannot come through — GitHub refused it for good, or it failed
    /// `integrations.github.max_attempts` times — is a [`FixResult::Failed`]: recorded, and
    /// the incident escalated with the attempt, rather than a row failing quietly or
    /// retried for ever.
    ///
    /// [`FixResult::Failed`]: crate::fix::deliver::FixResult::Failed
    fn fix_or_give_up(&self, row: &OutboxRow, result: Result<Done, DeliveryError>) -> Result<Done, DeliveryError> {
        let failed = |reason: String| Ok(Done::Fix(Box::new(crate::fix::deliver::FixResult::Failed { reason })));
        // Not configured (any more): the row waits until it is.
        let Some(pulls) = &self.github else { return result };
        let max = pulls.max_attempts() as i64;
        match result {
            Err(DeliveryError::Permanent(reason)) => failed(reason),
            Err(DeliveryError::Retry { reason, .. }) if row.attempts + 1 >= max => {
                failed(format!("Sparky gave up after {} attempts; the last: {reason}", row.attempts + 1))
            }
            other => other,
        }
    }

    /// An L2 order: the fix branch and its pull request.
    async fn fix(&self, row: &OutboxRow) -> Result<Done, DeliveryError> {
        let Some(pulls) = &self.github else { return Err(not_configured("github")) };
        if row.action != "open" {
            return Err(DeliveryError::Permanent(format!(
                "outbox row {} asks GitHub to `{}`; the `github` destination takes only L2 fix orders (`open`)",
                row.id, row.action
            )));
        }
        let order: crate::fix::order::FixOrder = serde_json::from_value(row.body.clone()).map_err(|e| {
            DeliveryError::Permanent(format!("outbox row {} does not hold an L2 fix order: {e}", row.id))
        })?;
        Ok(Done::Fix(Box::new(pulls.carry_out(&order).await?)))
    }

    async fn slack(&self, row: &OutboxRow) -> Result<Done, DeliveryError> {
        let Some((url, mode)) = &self.slack else { return Err(not_configured("slack")) };
        let jira = match self.issue(row).await? {
            Linked::Wait => return Ok(Done::Wait(Duration::from_secs(1))),
            Linked::Issue(l) => Some(l),
            Linked::None => None,
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

/// What a round of one destination came to.
enum Round {
    Idle,
    Busy,
    /// The destination asked for a pause (or is failing): this long.
    Backing(Duration),
}

/// The incident's Jira issue, as a page or a message links it.
enum Linked {
    Issue(IssueLink),
    /// Its first attempt is under way: worth a moment's wait.
    Wait,
    None,
}

/// Delivered messages (but the `open` rows, which keep an incident escalated once) are
/// kept this long.
const KEEP_DAYS: i64 = 30;

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
