//! The engine's operations API: executions and approvals, pauses (the kill switch), and the
//! audit log. Reads of executions and pauses are open like the status API; every change, and
//! the audit log, need the admin token.

use super::State;
use super::server::{admin_refusal, error, unavailable};
use crate::triage::Pause;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize)]
pub(super) struct ExecutionsQuery {
    /// Comma-separated states.
    state: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn executions(Extract(state): Extract<Arc<State>>, Query(q): Query<ExecutionsQuery>) -> Response {
    let states: Vec<&str> = q.state.as_deref().map(|s| s.split(',').map(str::trim).collect()).unwrap_or_default();
    match state.store.executions(&states, q.limit.unwrap_or(100).clamp(1, 1000)).await {
        Ok(list) => axum::Json(json!({ "executions": list })).into_response(),
        Err(e) => unavailable(e.to_string()),
    }
}

pub(super) async fn execution(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> Response {
    match state.store.execution(&id).await {
        Ok(Some(e)) => axum::Json(e).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no execution `{id}`")),
        Err(e) => unavailable(e.to_string()),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AnswerBody {
    by: Option<String>,
}

async fn answer(
    state: Arc<State>,
    headers: HeaderMap,
    id: String,
    body: Option<axum::Json<AnswerBody>>,
    approve: bool,
) -> Response {
    if let Some(refusal) = admin_refusal(&state, &headers) {
        return refusal;
    }
    let by = body.and_then(|b| b.0.by).unwrap_or_else(|| "admin-api".into());
    match state.store.answer(&id, approve, &by, Utc::now()).await {
        Ok(Ok(e)) => {
            state.engine.wake.notify_one();
            axum::Json(json!({ "execution": e })).into_response()
        }
        Ok(Err(why)) if why.starts_with("no execution") => error(StatusCode::NOT_FOUND, why),
        Ok(Err(why)) => error(StatusCode::CONFLICT, why),
        Err(e) => unavailable(e.to_string()),
    }
}

pub(super) async fn approve(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<axum::Json<AnswerBody>>,
) -> Response {
    answer(state, headers, id, body, true).await
}

pub(super) async fn reject(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<axum::Json<AnswerBody>>,
) -> Response {
    answer(state, headers, id, body, false).await
}

pub(super) async fn pauses(Extract(state): Extract<Arc<State>>) -> Response {
    match state.store.active_pauses(Utc::now()).await {
        Ok(list) => {
            let items: Vec<_> =
                list.into_iter().map(|(id, p)| json!({ "id": id, "scope": p.scope(), "pause": p })).collect();
            axum::Json(json!({ "pauses": items })).into_response()
        }
        Err(e) => unavailable(e.to_string()),
    }
}

/// `{"scope": {"service": "checkout"}, "for": "2h", "reason": "...", "by": "alice"}`; an
/// empty scope is the kill switch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseBody {
    #[serde(default)]
    scope: BTreeMap<String, String>,
    #[serde(default, rename = "for")]
    duration: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

fn scope_of(scope: &BTreeMap<String, String>) -> Result<Pause, String> {
    let pairs: Vec<String> = scope.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Pause::parse_scope(&pairs)
}

pub(super) async fn pause(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: axum::Json<PauseBody>,
) -> Response {
    if let Some(refusal) = admin_refusal(&state, &headers) {
        return refusal;
    }
    let mut p = match scope_of(&body.scope) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let now = Utc::now();
    if let Some(d) = &body.duration {
        match crate::dsl::parse_duration(d).filter(|ms| *ms > 0) {
            Some(ms) => p.until = Some(now + chrono::Duration::milliseconds(ms as i64)),
            None => return error(StatusCode::BAD_REQUEST, format!("`for`: `{d}` is not a duration; write e.g. `2h`")),
        }
    }
    p.reason = body.reason.clone().unwrap_or_else(|| "paused through the admin API".into());
    p.by = Some(body.by.clone().unwrap_or_else(|| "admin-api".into()));
    match state.store.pause(&p, now).await {
        Ok(id) => {
            (StatusCode::CREATED, axum::Json(json!({ "id": id, "scope": p.scope(), "pause": p }))).into_response()
        }
        Err(e) => unavailable(e.to_string()),
    }
}

/// `{"scope": {...}}` lifts the pauses with exactly that scope; `{"id": 3}` one pause.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResumeBody {
    #[serde(default)]
    scope: BTreeMap<String, String>,
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    by: Option<String>,
}

pub(super) async fn resume(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: axum::Json<ResumeBody>,
) -> Response {
    if let Some(refusal) = admin_refusal(&state, &headers) {
        return refusal;
    }
    let scope = match scope_of(&body.scope) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let by = body.by.clone().unwrap_or_else(|| "admin-api".into());
    match state.store.resume(body.id, &scope, &by, Utc::now()).await {
        Ok(lifted) if lifted.is_empty() => error(StatusCode::NOT_FOUND, "no pause with that id or scope is in force"),
        Ok(lifted) => {
            let ids: Vec<i64> = lifted.iter().map(|(id, _)| *id).collect();
            axum::Json(json!({ "resumed": ids })).into_response()
        }
        Err(e) => unavailable(e.to_string()),
    }
}

#[derive(Deserialize)]
pub(super) struct EscalationsQuery {
    limit: Option<i64>,
    incident: Option<String>,
}

/// Escalations: the outbox (every message to Jira, PagerDuty and Slack, with its delivery
/// state, attempts and last error) and the causes the engine raised after a decision (a
/// refusal at execution time, a failed action or verification, a demotion), newest first.
pub(super) async fn escalations(Extract(state): Extract<Arc<State>>, Query(q): Query<EscalationsQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let outbox = match state.store.outbox(q.incident.as_deref(), limit).await {
        Ok(rows) => rows.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        Err(e) => return unavailable(e.to_string()),
    };
    match state.store.escalations(limit).await {
        Ok(mut list) => {
            if let Some(key) = &q.incident {
                list.retain(|e| e.get("incident_key").and_then(serde_json::Value::as_str) == Some(key.as_str()));
            }
            axum::Json(json!({ "outbox": outbox, "escalations": list })).into_response()
        }
        Err(e) => unavailable(e.to_string()),
    }
}

/// L2 fixes, newest first (or the one of `?incident=`), with the acceptance rates.
pub(super) async fn fixes(Extract(state): Extract<Arc<State>>, Query(q): Query<EscalationsQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let fixes = match &q.incident {
        Some(key) => state.store.fix_pull(key).await.map(|f| f.into_iter().collect::<Vec<_>>()),
        None => state.store.fix_pulls(limit).await,
    };
    let acceptance = state.store.fix_acceptance().await;
    match (fixes, acceptance) {
        (Ok(list), Ok(acceptance)) => axum::Json(json!({
            "fixes": list.iter().map(|f| f.to_json()).collect::<Vec<_>>(),
            "acceptance": acceptance.to_json(),
        }))
        .into_response(),
        (Err(e), _) | (_, Err(e)) => unavailable(e.to_string()),
    }
}

/// Puts a message the destination refused for good back in line, once its cause is fixed
/// (a Jira project that did not exist, a routing key that was missing).
pub(super) async fn retry_outbox(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Some(refusal) = admin_refusal(&state, &headers) {
        return refusal;
    }
    match state.store.outbox_requeue(id, Utc::now()).await {
        Ok(true) => {
            state.delivery.wake.notify_waiters();
            axum::Json(json!({ "requeued": id })).into_response()
        }
        Ok(false) => error(
            StatusCode::CONFLICT,
            format!("outbox row {id} is not `failed` (or does not exist): only failed deliveries are requeued"),
        ),
        Err(e) => unavailable(e.to_string()),
    }
}

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    since: Option<chrono::DateTime<Utc>>,
    playbook: Option<String>,
    execution: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn audit(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Some(refusal) = admin_refusal(&state, &headers) {
        return refusal;
    }
    let limit = q.limit.unwrap_or(200).clamp(1, 10_000);
    match state.store.audit(q.since, q.playbook.as_deref(), q.execution.as_deref(), limit).await {
        Ok(records) => axum::Json(json!({ "records": records })).into_response(),
        Err(e) => unavailable(e.to_string()),
    }
}

pub(super) async fn audit_verify(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = admin_refusal(&state, &headers) {
        return refusal;
    }
    match state.store.audit_verify().await {
        Ok(report) => {
            let code = if report.problems.is_empty() { StatusCode::OK } else { StatusCode::CONFLICT };
            (code, axum::Json(report)).into_response()
        }
        Err(e) => unavailable(e.to_string()),
    }
}

/// The schedules of the playbooks in force: each one's spec, the slot it last fired for,
/// when, and its next slot.
pub(super) async fn schedules(Extract(state): Extract<Arc<State>>) -> Response {
    let known = match state.store.schedules().await {
        Ok(k) => k,
        Err(e) => return unavailable(e.to_string()),
    };
    let graph = state.ruleset.load_full().graph.clone();
    let now = Utc::now();
    let list: Vec<serde_json::Value> = graph
        .playbooks()
        .iter()
        .filter_map(|pb| {
            let schedule = super::scheduler::Schedule::of(pb)?;
            let k = known.iter().find(|k| k.playbook == pb.id);
            let next = schedule.next_after(k.map_or(now, |k| k.last_slot.max(now)));
            Some(json!({
                "playbook": pb.id,
                "status": pb.status.as_str(),
                "schedule": schedule.describe(),
                "last_slot": k.map(|k| k.last_slot),
                "last_fired": k.and_then(|k| k.last_fired),
                "next": next,
            }))
        })
        .collect();
    axum::Json(json!({ "schedules": list })).into_response()
}

#[derive(Deserialize, Default)]
pub(super) struct RunBody {
    #[serde(default)]
    by: Option<String>,
}

/// Runs a playbook's schedule now (to see a new playbook run, or to try again sooner than
/// the next slot): a `schedule` event accepted into the inbox like a slot's, with its own
/// delivery key, decided like one — its guards (PB-003's `at_most 1 per 12h`) and pauses
/// hold, a draft plans only. It does not move the schedule: the next slot runs as planned.
/// Who asked is in the audit log.
pub(super) async fn run_schedule(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(playbook): Path<String>,
    body: Option<axum::Json<RunBody>>,
) -> Response {
    if let Some(refusal) = admin_refusal(&state, &headers) {
        return refusal;
    }
    let graph = state.ruleset.load_full().graph.clone();
    let Some(pb) = graph.playbooks().iter().find(|p| p.id == playbook) else {
        return error(StatusCode::NOT_FOUND, format!("no playbook `{playbook}` is loaded; see GET /api/v1/schedules"));
    };
    if super::scheduler::Schedule::of(pb).is_none() {
        return error(
            StatusCode::CONFLICT,
            format!(
                "{playbook} has no `on schedule` trigger: there is nothing to run; it acts on the events it matches"
            ),
        );
    }
    if pb.status == crate::compile::Status::Disabled {
        return error(StatusCode::CONFLICT, format!("{playbook} is disabled: enable it (`status active`) to run it"));
    }
    let by = body.and_then(|b| b.0.by).unwrap_or_else(|| "admin-api".into());
    let now = Utc::now();
    // The run is at the time decisions are made (a test's held clock), so that its incident
    // key is the one the simulator gives a run at that time; the delivery key keeps the
    // wall clock, so that each request is a run of its own.
    let mut event = crate::event::Event::schedule(&playbook, state.now());
    event.labels.insert("run_by".into(), by.clone());
    let key = format!("schedule/{playbook}/manual/{}", now.to_rfc3339());
    match state.store.accept("sparky", &key, std::slice::from_ref(&event), now).await {
        Ok(accepted) => {
            let entry = crate::store::AuditEntry {
                actor: &by,
                action: "run",
                execution: None,
                playbook: Some(&playbook),
                incident_key: None,
                record: json!({ "event": event.id, "why": "a scheduled run asked for through the API" }),
            };
            if let Err(e) = state.store.audit_append(now, &entry).await {
                tracing::warn!(playbook = %playbook, error = %e, "the asked-for run is not in the audit log");
            }
            state.wake.notify_one();
            tracing::info!(playbook = %playbook, by = %by, event = %event.id, "scheduled run asked for");
            let body = json!({
                "accepted": event.id,
                "seq": accepted.seqs.first(),
                "decision": format!("GET /api/v1/events/{}", event.id),
                "note": "the run is decided like a slot's: its guards and pauses hold, and a refused run is recorded only",
            });
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        Err(e) => unavailable(e.to_string()),
    }
}
