//! Claim, apply, record: one execution from `queued` (or `approved`) to `verifying` or a
//! final state.

use super::{Engine, ms};
use crate::actions::{ApplyError, Mode};
use crate::store::{Claim, Demotion, Execution, Limits, StoreError};
use chrono::Utc;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

impl Engine {
    /// Whether `e` runs in dry-run mode: when any of its actions' integrations is in dry-run,
    /// none is applied (never half a plan).
    pub fn dry_run(&self, e: &Execution) -> bool {
        e.plans.iter().any(|p| self.clients.config.mode(&p.integration, self.global_mode) == Mode::DryRun)
    }

    /// Claims `id` (guards re-checked); returns the execution when it is to be applied.
    pub(super) async fn claim(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        let now = Utc::now();
        let Some(e) = self.store.execution(id).await? else { return Ok(None) };
        let limits = Limits {
            per_target: self.config.per_target(),
            budget: self.config.budget(),
            freeze: self.config.frozen(now),
            dry_run: self.dry_run(&e),
        };
        match self.store.claim(id, &limits, now).await? {
            Claim::Ready(e, _) => Ok(Some(e)),
            Claim::Refused(e, check) => {
                tracing::warn!(
                    execution = %e.id,
                    playbook = %e.playbook,
                    guard = %check.guard,
                    figure = %check.figure,
                    limit = %check.limit,
                    "refused at execution time; escalated"
                );
                self.observer.finished(&e.playbook, "refused", e.dry_run);
                Ok(None)
            }
            Claim::Skipped(e, why) => {
                tracing::info!(execution = %e.id, playbook = %e.playbook, "{why}");
                self.observer.finished(&e.playbook, "skipped", e.dry_run);
                Ok(None)
            }
            Claim::Gone => Ok(None),
        }
    }

    /// Applies a claimed execution's actions in order (or records what dry-run would do), then
    /// records the result. The first action that fails stops the rest.
    pub(super) async fn apply(self: Arc<Self>, e: Execution) {
        let mut results: Vec<Value> = Vec::new();
        let mut failure: Option<(bool, String)> = None;
        for plan in &e.plans {
            if e.dry_run {
                results.push(json!({ "action": plan.action, "target": plan.target, "applied": false,
                                     "summary": format!("dry-run: not applied ({})", plan.steps.join("; ")) }));
                continue;
            }
            let run = crate::actions::clients::RunRef { playbook: e.playbook.clone(), execution: e.id.clone() };
            let plan = crate::actions::for_execution(plan, e.started_at.unwrap_or_else(Utc::now), &run);
            match self.apply_one(&plan).await {
                Ok((applied, attempts)) => results.push(json!({
                    "action": plan.action, "target": plan.target, "applied": true,
                    "summary": applied.summary, "details": applied.details, "attempts": attempts,
                })),
                Err((err, attempts)) => {
                    let refused = matches!(err, ApplyError::Refused(_));
                    results.push(json!({ "action": plan.action, "target": plan.target, "applied": false,
                                         "error": err.to_string(), "attempts": attempts }));
                    failure = Some((refused, format!("{}: {err}", plan.action)));
                    break;
                }
            }
        }
        // What was applied must be recorded: a store that is briefly busy is asked again
        // (the execution stays `applying`, its target in flight, until this commits).
        let results = Value::Array(results);
        let mut recorded =
            self.store.applied(&e, results.clone(), failure.clone(), self.config.breaker_failures, Utc::now()).await;
        for wait in [1u64, 2, 4, 8, 15, 30, 30, 30, 30, 30] {
            let Err(err) = &recorded else { break };
            tracing::warn!(execution = %e.id, error = %err, "cannot record the result of an applied execution yet; trying again in {wait}s");
            tokio::time::sleep(Duration::from_secs(wait)).await;
            recorded = self
                .store
                .applied(&e, results.clone(), failure.clone(), self.config.breaker_failures, Utc::now())
                .await;
        }
        match recorded {
            Ok((state, demotion)) => {
                match &failure {
                    Some((_, why)) => {
                        tracing::warn!(execution = %e.id, playbook = %e.playbook, error = %why, "the action did not succeed; escalated")
                    }
                    None => {
                        tracing::info!(execution = %e.id, playbook = %e.playbook, dry_run = e.dry_run, state, "applied")
                    }
                }
                // `recorded`: an earlier attempt had committed after all; reported then.
                if state != "verifying" && state != "recorded" {
                    self.observer.finished(&e.playbook, state, e.dry_run);
                }
                if let Some(d) = demotion {
                    self.demoted(&d).await;
                }
            }
            Err(err) => tracing::error!(
                execution = %e.id, error = %err,
                "cannot record the result of an applied execution after 3 minutes of trying; it stays `applying` (never applied again) and is reported `interrupted` at the next start"
            ),
        }
    }

    /// One action, with a timeout per attempt and retries of transient errors; the error
    /// comes with the number of attempts made.
    async fn apply_one(
        &self,
        plan: &crate::actions::Plan,
    ) -> Result<(crate::actions::Applied, u32), (ApplyError, u32)> {
        let Some(spec) = crate::actions::find(&plan.action) else {
            return Err((ApplyError::Failed(format!("no action `{}` in this version of Sparky", plan.action)), 0));
        };
        let timeout = Duration::from_millis(ms(&self.config.apply_timeout).max(1));
        let mut backoff = Duration::from_millis(ms(&self.config.retry_backoff));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match tokio::time::timeout(timeout, (spec.apply)(plan, &self.clients)).await {
                Ok(r) => r,
                Err(_) => Err(ApplyError::Transient(format!(
                    "no answer within {} (engine.apply_timeout)",
                    crate::dsl::ast::Duration { millis: timeout.as_millis() as u64 }
                ))),
            };
            match result {
                Ok(applied) => return Ok((applied, attempt)),
                Err(ApplyError::Transient(why)) if spec.idempotent && attempt <= self.config.retries => {
                    tracing::info!(action = %plan.action, target = %plan.target, attempt, error = %why, "transient error; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => return Err((e, attempt)),
            }
        }
    }

    /// A playbook was demoted: its owner hears it (Slack, when `engine.notify_channel` is set).
    pub(super) async fn demoted(&self, d: &Demotion) {
        let owner = self.observer.owner(&d.playbook).unwrap_or_else(|| "its owner".into());
        tracing::error!(playbook = %d.playbook, owner = %owner, "{}", d.reason);
        let Some(channel) = &self.config.notify_channel else { return };
        if self.clients.config.mode("slack", self.global_mode) == Mode::DryRun {
            tracing::info!(channel = %channel, "dry-run: the demotion notice is not sent");
            return;
        }
        let text = format!("Sparky demoted {} to L3 ({owner}): {}", d.playbook, d.reason);
        let sent = match self.clients.slack_webhook(channel) {
            Ok(url) => self
                .clients
                .http
                .post(url)
                .json(&json!({ "text": text }))
                .send()
                .await
                .map_err(|e| e.without_url().to_string()),
            Err(e) => Err(e),
        };
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::error!(channel = %channel, status = r.status().as_u16(), "the demotion notice was not accepted")
            }
            Err(e) => tracing::error!(channel = %channel, error = %e, "the demotion notice could not be sent"),
        }
    }
}
