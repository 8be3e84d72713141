//! The engine: carries L1 decisions out, and learns from what happened.
//!
//! For each L1 decision the worker records an execution in the decision's transaction
//! ([`new_execution`]): `queued` when every guard passed, `awaiting_approval` while the
//! playbook has not earned trust, `planned` for a draft. The engine then, one execution at
//! a time:
//!
//! 1. **claims** it: the guards that can change after the decision (pauses and the circuit
//!    breaker, freeze windows, whether the alert is still open, one action in flight per
//!    target, the per-target rate, the global budget) are re-checked in the transaction that
//!    marks it `applying` and writes its audit record; a refusal is audited with its figure
//!    and escalated;
//! 2. **applies** each action (live), with a timeout per attempt and bounded retries of
//!    transient errors, or records what it would do (dry-run, per integration or globally);
//! 3. **verifies**: the source alert resolves within the window (the worker marks it when the
//!    resolved webhook is recorded), or an HTTP probe answers, before the deadline;
//! 4. **learns**: the outcome sets the run's outcome (the success rate), a failure escalates
//!    with the attempt and counts toward the circuit breaker, which demotes the playbook to L3
//!    and notifies its owner.
//!
//! An execution claimed and not finished when the process stopped is never applied again
//! (`interrupted`): its verification decides, or it escalates.

mod executor;
mod freeze;
mod probe;

pub use freeze::FreezeWindow;

use crate::actions::{Clients, Mode};
use crate::compile::{L1Response, VerifyStep};
use crate::event::Event;
use crate::store::{NewExecution, Rate, Store, Verify};
use crate::triage::{Decision, L1Mode, Level};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// `engine:` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How long a plan waits for `sparky approve` before it expires.
    pub approval_ttl: String,
    /// Mutating executions started across every playbook, `20 per 1h`.
    pub budget: String,
    /// Executions started per target, `3 per 1h`.
    pub per_target: String,
    /// Consecutive failed verifications that demote a playbook to L3; 0 turns it off.
    pub breaker_failures: u64,
    /// Per attempt of one action.
    pub apply_timeout: String,
    /// Further attempts after a transient error.
    pub retries: u32,
    /// The first pause before a retry; doubled each time.
    pub retry_backoff: String,
    /// How often a probe is tried while an execution verifies.
    pub probe_interval: String,
    /// The Slack webhook (`integrations.slack.webhooks`) told when a playbook is demoted.
    pub notify_channel: Option<String>,
    /// Times no L1 runs, whatever the guards say.
    pub freeze: Vec<FreezeWindow>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            approval_ttl: "1h".into(),
            budget: "20 per 1h".into(),
            per_target: "3 per 1h".into(),
            breaker_failures: 3,
            apply_timeout: "60s".into(),
            retries: 2,
            retry_backoff: "1s".into(),
            probe_interval: "10s".into(),
            notify_channel: None,
            freeze: Vec::new(),
        }
    }
}

/// `20 per 1h`.
pub fn parse_rate(text: &str) -> Option<Rate> {
    let (count, window) = text.split_once(" per ")?;
    let count = count.trim().parse().ok()?;
    let window_ms = crate::dsl::parse_duration(window.trim())?;
    (window_ms > 0).then_some(Rate { count, window_ms })
}

fn ms(text: &str) -> u64 {
    crate::dsl::parse_duration(text).unwrap_or(0)
}

impl EngineConfig {
    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, text) in [
            ("approval_ttl", &self.approval_ttl),
            ("apply_timeout", &self.apply_timeout),
            ("retry_backoff", &self.retry_backoff),
            ("probe_interval", &self.probe_interval),
        ] {
            if crate::dsl::parse_duration(text).is_none() {
                return Err(format!("`engine.{key}`: `{text}` is not a duration; write e.g. `30s` or `1h`"));
            }
        }
        for (key, text) in [("budget", &self.budget), ("per_target", &self.per_target)] {
            if parse_rate(text).is_none() {
                return Err(format!("`engine.{key}`: `{text}` is not a rate; write e.g. `20 per 1h`"));
            }
        }
        if self.retries > 10 {
            return Err(format!(
                "`engine.retries`: {} is too many; at most 10 (each retry repeats the action after a transient error)",
                self.retries
            ));
        }
        if crate::dsl::parse_duration(&self.retry_backoff).is_some_and(|ms| ms > 3_600_000) {
            return Err(format!("`engine.retry_backoff`: `{}` is over an hour; write e.g. `1s`", self.retry_backoff));
        }
        for (i, f) in self.freeze.iter().enumerate() {
            f.validate().map_err(|e| format!("`engine.freeze[{i}]`: {e}"))?;
        }
        Ok(())
    }

    pub fn budget(&self) -> Rate {
        parse_rate(&self.budget).unwrap_or(Rate { count: 20, window_ms: 3_600_000 })
    }

    pub fn per_target(&self) -> Rate {
        parse_rate(&self.per_target).unwrap_or(Rate { count: 3, window_ms: 3_600_000 })
    }

    /// The freeze window in force at `now`, described.
    pub fn frozen(&self, now: DateTime<Utc>) -> Option<String> {
        self.freeze.iter().find_map(|f| f.in_force(now))
    }
}

/// The execution an L1 decision starts, made from the playbook that decided (`l1`), or
/// `None` when the decision is not an L1.
pub fn new_execution(
    seq: i64,
    event: &Event,
    decision: &Decision,
    l1: &L1Response,
    config: &EngineConfig,
    now: DateTime<Utc>,
) -> Option<NewExecution> {
    if decision.level != Level::L1 {
        return None;
    }
    let (state, expires_at) = match decision.mode? {
        L1Mode::Apply => ("queued", None),
        L1Mode::AwaitApproval => {
            ("awaiting_approval", Some(now + chrono::Duration::milliseconds(ms(&config.approval_ttl) as i64)))
        }
        L1Mode::PlanOnly => ("planned", None),
    };
    let verify = l1
        .verify
        .iter()
        .map(|v| match v {
            VerifyStep::Resolved { within } => Verify::Resolved { within_ms: within.millis },
            VerifyStep::Delivered => Verify::Delivered,
            VerifyStep::Probe { url, status, within } => {
                Verify::Probe { url: url.clone(), status: *status, within_ms: within.millis }
            }
            // The condition is checked against the alert's own resolution: the engine has no
            // fresh context to evaluate it with after the decision.
            VerifyStep::When { within, .. } => Verify::Resolved { within_ms: within.millis },
        })
        .collect();
    let guards = decision
        .playbook
        .as_ref()
        .and_then(|p| decision.trace.iter().find(|t| &t.playbook == p))
        .map(|t| serde_json::to_value(&t.guards).unwrap_or_default())
        .unwrap_or_default();
    Some(NewExecution {
        id: format!("act-{seq}"),
        state,
        plans: decision.actions.iter().map(|a| a.plan.clone()).collect(),
        verify,
        run_keys: crate::triage::run_keys(&l1.guards, event),
        guards,
        namespace: event.labels.get("namespace").cloned(),
        expires_at,
    })
}

/// What the daemon tells the engine about, and asks it to report.
pub trait Observer: Send + Sync {
    /// An execution ended (`succeeded`, `failed`, `refused`, `skipped`, `timed_out`, ...).
    fn finished(&self, playbook: &str, state: &str, dry_run: bool);
    /// The owner of a playbook (for demotion notices).
    fn owner(&self, playbook: &str) -> Option<String>;
}

/// The running engine.
pub struct Engine {
    pub store: Store,
    pub clients: Arc<Clients>,
    pub config: EngineConfig,
    /// `integrations.mode`: the mode of every integration without its own.
    pub global_mode: Mode,
    pub wake: Notify,
    observer: Arc<dyn Observer>,
}

impl Engine {
    pub fn new(
        store: Store,
        clients: Arc<Clients>,
        config: EngineConfig,
        global_mode: Mode,
        observer: Arc<dyn Observer>,
    ) -> Engine {
        Engine { store, clients, config, global_mode, wake: Notify::new(), observer }
    }

    /// Runs until `stop` says so; finishes the applies in flight before returning.
    pub async fn run(self: Arc<Self>, stop: Arc<std::sync::atomic::AtomicBool>) {
        self.take_over(true).await;
        let mut applies = tokio::task::JoinSet::new();
        let mut probes = probe::Probes::default();
        let tick = Duration::from_millis(250);
        let mut swept = std::time::Instant::now();
        loop {
            while applies.try_join_next().is_some() {}
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            if let Err(e) = self.round(&mut applies, &mut probes).await {
                tracing::error!(error = %e, "the engine cannot reach the store; executions wait");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if swept.elapsed() > Duration::from_secs(30) {
                self.take_over(false).await;
                swept = std::time::Instant::now();
            }
            let _ = tokio::time::timeout(tick, self.wake.notified()).await;
        }
        while applies.join_next().await.is_some() {}
    }

    /// Executions a stopped process left `applying`: this replica's before its restart
    /// (`starting`), or a gone replica's. Never applied again.
    async fn take_over(&self, starting: bool) {
        let now = Utc::now();
        let found = if starting { self.store.interrupted(now).await } else { self.store.orphaned(now).await };
        match found {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(
                    executions = %ids.join(", "),
                    "these executions were being applied by a Sparky that stopped; they are not applied again: their verification decides, or they are escalated"
                );
                for id in &ids {
                    if let Ok(Some(e)) = self.store.execution(id).await
                        && e.state == "interrupted"
                    {
                        self.observer.finished(&e.playbook, "interrupted", e.dry_run);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot check for interrupted executions"),
        }
    }

    async fn round(
        self: &Arc<Self>,
        applies: &mut tokio::task::JoinSet<()>,
        probes: &mut probe::Probes,
    ) -> Result<(), crate::store::StoreError> {
        let now = Utc::now();
        self.store.expire(now).await?;
        // Claims one at a time: each sees the one before it in flight.
        for id in self.store.claimable(32).await? {
            if let Some(e) = self.claim(&id).await? {
                let engine = self.clone();
                applies.spawn(async move { engine.apply(e).await });
            }
        }
        self.verify(probes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_values_say_which_key() {
        assert!(EngineConfig::default().validate().is_ok());
        let bad = |f: fn(&mut EngineConfig)| {
            let mut c = EngineConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.retries = 1000).contains("`engine.retries`: 1000 is too many"));
        assert!(bad(|c| c.retry_backoff = "2h".into()).contains("`engine.retry_backoff`"));
        assert!(bad(|c| c.budget = "lots".into()).contains("`engine.budget`: `lots` is not a rate"));
        assert!(bad(|c| c.apply_timeout = "soon".into()).contains("`engine.apply_timeout`"));
    }
}
