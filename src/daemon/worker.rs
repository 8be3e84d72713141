//! The inbox worker: takes accepted events in arrival order, gathers their context, decides,
//! and records each decision with the incident change in one transaction. One worker per
//! daemon, so events of one fingerprint are decided in order and never concurrently.
//!
//! Nothing is lost on a crash: an event leaves the inbox only in the transaction that records
//! its decision, so the restarted daemon decides exactly the events that were not recorded.

use super::State;
use crate::event::{Event, Status};
use crate::script::StaticContext;
use crate::store::{LastDecision, Pending, Record, StoreError};
use crate::triage::{self, Decision, IncidentEffect, Level, MemoryContext, OpenIncident};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events taken from the inbox per round trip.
const BATCH: i64 = 64;

/// Runs until `state.shutdown` is set and the inbox is drained of what was taken.
pub async fn run(state: Arc<State>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if state.is_shutting_down() {
            return;
        }
        match round(&state).await {
            Ok(0) => {
                backoff = Duration::from_millis(100);
                // Woken by the webhook handler; the timeout is a safety net.
                let _ = tokio::time::timeout(Duration::from_secs(1), state.wake.notified()).await;
            }
            Ok(_) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "the inbox worker cannot reach the store; events wait in the inbox");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Decides one batch and records it in one transaction; returns how many events were
/// handled. The batch's context is read in two queries, and each decision's effect (an
/// incident opened or closed, a decision made) is applied to it before the next event of
/// the batch is decided, exactly as if they were decided one at a time.
async fn round(state: &State) -> Result<usize, StoreError> {
    let pending = state.store.pending(BATCH).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let started = Instant::now();
    // The graph in force when the batch is taken; a reload meanwhile does not affect it.
    let loaded = state.ruleset.load_full();
    let graph = &loaded.graph;
    let fingerprints: Vec<&str> = {
        let mut f: Vec<&str> = pending.iter().map(|p| p.event.fingerprint.as_str()).collect();
        f.sort_unstable();
        f.dedup();
        f
    };
    let mut open = state.store.open_incidents(&fingerprints).await?;
    let mut last = state.store.last_decisions(&fingerprints).await?;
    let mut decided = Vec::with_capacity(pending.len());
    for Pending { seq, event } in &pending {
        let now = Utc::now();
        let decision = decide_one(state, event, graph, now, &open, &last);
        if let Some(change) = &decision.incident {
            match change.effect {
                IncidentEffect::Open => {
                    open.insert(
                        event.fingerprint.clone(),
                        OpenIncident {
                            key: change.key.clone(),
                            fingerprint: event.fingerprint.clone(),
                            opened_at: now,
                            level: decision.level.as_str().to_string(),
                            playbook: decision.playbook.clone(),
                        },
                    );
                }
                IncidentEffect::Close => {
                    open.remove(&event.fingerprint);
                }
                IncidentEffect::Update => {}
            }
        }
        if decision.level != Level::Suppressed {
            last.insert(
                event.fingerprint.clone(),
                LastDecision {
                    level: decision.level.as_str().to_string(),
                    playbook: decision.playbook.clone(),
                    at: now,
                },
            );
        }
        decided.push((*seq, event, decision));
    }
    let records: Vec<Record<'_>> = decided
        .iter()
        .map(|(seq, event, decision)| Record {
            seq: *seq,
            event,
            decision,
            json: decision.explained(event).to_string(),
        })
        .collect();
    state.store.record_all(&records).await?;
    let per_event = started.elapsed().as_secs_f64() / decided.len() as f64;
    for (seq, event, decision) in &decided {
        state.metrics.decided(decision.level.as_str(), decision.playbook.as_deref(), per_event);
        tracing::info!(
            seq,
            event = %event.id,
            source = %event.source,
            fingerprint = %event.fingerprint,
            level = decision.level.as_str(),
            playbook = decision.playbook.as_deref().unwrap_or("-"),
            incident = decision.incident.as_ref().map_or("-", |i| i.key.as_str()),
            reason = decision.reasons.first().map_or("", String::as_str),
            "decided"
        );
    }
    if let Ok(depth) = state.store.inbox_depth().await {
        state.metrics.set_inbox_depth(depth);
    }
    Ok(decided.len())
}

/// Decides one event with what the store knows of its fingerprint. Run history, knowledge
/// and analysis join the context with the later stages (empty here, so success-rate guards
/// refuse and an L1 awaits approval: the safe side).
fn decide_one(
    state: &State,
    event: &Event,
    graph: &crate::graph::RuleGraph,
    now: chrono::DateTime<Utc>,
    open: &HashMap<String, OpenIncident>,
    last: &HashMap<String, LastDecision>,
) -> Decision {
    let incident = open.get(&event.fingerprint);
    if incident.is_none()
        && event.status == Status::Firing
        && state.group_window > Duration::ZERO
        && let Some(prev) = last.get(&event.fingerprint)
    {
        let ago = (now - prev.at).to_std().unwrap_or_default();
        if ago < state.group_window && prev.level == "observe" {
            return triage::grouped(&prev.level, prev.playbook.as_deref(), ago, graph, now);
        }
    }
    let mut ctx = MemoryContext::new(StaticContext { now_ms: now.timestamp_millis(), ..Default::default() });
    *ctx.settings_mut() = state.config.triage.settings();
    if let Some(inc) = incident {
        ctx.open(inc.clone());
    }
    triage::decide(event, &ctx, graph, now)
}
