//! The HTTP routes. Webhook answers are the ones senders act on: 202 once the events are
//! durable, 4xx only for what retrying cannot fix, 503 (retry later) whenever Sparky cannot
//! persist — never a 4xx or 429 for that, which Alertmanager and Grafana treat as final.

use super::State;
use super::reload;
use crate::ingest::{self, Headers};
use axum::Router;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/webhooks/{source}", post(webhook).options(handshake))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/events/{id}", get(event))
        .route("/api/v1/decisions", get(decisions))
        .route("/api/v1/executions", get(super::admin::executions))
        .route("/api/v1/executions/{id}", get(super::admin::execution))
        .route("/api/v1/executions/{id}/approve", post(super::admin::approve))
        .route("/api/v1/executions/{id}/reject", post(super::admin::reject))
        .route("/api/v1/pauses", get(super::admin::pauses).post(super::admin::pause))
        .route("/api/v1/resume", post(super::admin::resume))
        .route("/api/v1/escalations", get(super::admin::escalations))
        .route("/api/v1/fixes", get(super::admin::fixes))
        .route("/api/v1/outbox/{id}/retry", post(super::admin::retry_outbox))
        .route("/api/v1/tokens", get(tokens))
        .route("/api/v1/schedules", get(super::admin::schedules))
        .route("/api/v1/schedules/{playbook}/run", post(super::admin::run_schedule))
        .route("/api/v1/audit", get(super::admin::audit))
        .route("/api/v1/audit/verify", get(super::admin::audit_verify))
        .route("/-/reload", post(reload_now))
        // The webhook handler reads the body itself, with its own limit and answers.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

pub(super) fn unavailable(message: impl Into<String>) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    r
}

async fn webhook(
    Extract(state): Extract<Arc<State>>,
    Path(source): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let Some(config) = state.sources.get(&source) else {
        let known: Vec<&str> = state.sources.keys().map(String::as_str).collect();
        return error(
            StatusCode::NOT_FOUND,
            format!("no source `{source}` here; configured sources: {}", known.join(", ")),
        );
    };
    if state.is_shutting_down() {
        state.metrics.received(&source, "unavailable");
        return unavailable("Sparky is shutting down; retry shortly");
    }
    if let Some(why) = state.store_down() {
        state.metrics.received(&source, "unavailable");
        return unavailable(format!("the store is unreachable ({why}): nothing was stored; retry later"));
    }
    let limit = state.config.max_body.0;
    let (parts, body) = request.into_parts();
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes (`max_body` in the configuration)"),
        )
    };
    let headers = to_headers(&parts.headers);
    let now = Utc::now();
    let refuse = |e: ingest::auth::AuthError| {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        state.metrics.received(&source, if status == StatusCode::UNAUTHORIZED { "unauthorized" } else { "forbidden" });
        tracing::warn!(source, error = %e, "delivery refused");
        error(status, e.to_string())
    };
    // Credentials the headers alone decide are checked before a byte of the body is read.
    if let Some(auth) = &config.auth
        && let Err(e) = auth.verify_headers(&headers, now)
    {
        return refuse(e);
    }
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        state.metrics.received(&source, "too_large");
        return too_large();
    }
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            state.metrics.received(&source, "too_large");
            return too_large();
        }
    };
    if let Some(auth) = &config.auth
        && let Err(e) = auth.verify(&headers, &body, now)
    {
        return refuse(e);
    }
    let kind = config.kind.as_deref().unwrap_or(&source);
    // CloudEvents attributes are strings: raw bytes that are not UTF-8 are no attribute value
    // (read as replacement characters they would be an attribute the sender never sent).
    if kind == "cloudevents"
        && let Some(name) = parts
            .headers
            .iter()
            .find(|(k, v)| k.as_str().starts_with("ce-") && std::str::from_utf8(v.as_bytes()).is_err())
            .map(|(k, _)| k.as_str())
    {
        state.metrics.received(&source, "bad_request");
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "not a valid CloudEvents payload: the `{name}` header is not UTF-8 text; send attribute values as UTF-8, percent-encoding what is not printable ASCII"
            ),
        );
    }
    let batch = match (kind, &config.mapping) {
        ("generic", Some(mapping)) => ingest::generic::normalize(mapping, &source, &headers, &body, now),
        _ => ingest::normalize(kind, &headers, &body, now),
    };
    let mut batch = match batch {
        Ok(b) => b,
        Err(e) => {
            state.metrics.received(&source, "bad_request");
            tracing::warn!(source, error = %e, "delivery refused");
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let key = ingest::delivery::delivery_key(&mut batch, config.auth.as_ref(), &headers, &body);
    let ids: Vec<String> = batch.events.iter().map(|e| e.id.clone()).collect();
    // Senders give up after a few seconds (PagerDuty after 5): past that a store that does
    // not answer is a 503 they retry, not a timeout. A commit that lands after all makes
    // the retry a duplicate.
    let committed = tokio::time::timeout(
        COMMIT_PATIENCE,
        state.committer.accept(&source, key.key.clone(), key.body_hash, batch.events, now),
    )
    .await
    .unwrap_or_else(|_| Err(format!("the store did not commit within {} s", COMMIT_PATIENCE.as_secs())));
    match committed {
        Ok(accepted) if accepted.duplicate => {
            state.metrics.received(&source, "duplicate");
            let answer = json!({ "status": "duplicate", "accepted": 0, "delivery": accepted.key });
            (StatusCode::ACCEPTED, axum::Json(answer)).into_response()
        }
        Ok(accepted) => {
            state.metrics.received(&source, "accepted");
            state.wake.notify_one();
            if accepted.key_reused {
                // A sender that reuses a delivery id for new content would have lost it as a
                // duplicate; say so, since its other retries may rely on the id too.
                state.metrics.delivery_key_reused(&source);
                tracing::warn!(
                    source,
                    key = %key.key,
                    stored_as = %accepted.key,
                    "a delivery id came again with another body; accepted as a new delivery"
                );
                batch.notes.push(format!(
                    "delivery key `{}` came before with another body; accepted as a new delivery (a retry must resend the same body under the same id)",
                    ingest::quote(&key.key)
                ));
            }
            let mut body = json!({
                "status": "accepted",
                "accepted": accepted.seqs.len(),
                "events": ids,
                "seqs": accepted.seqs,
                "delivery": accepted.key,
            });
            if !batch.notes.is_empty() {
                body["notes"] = json!(batch.notes);
            }
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        Err(e) => {
            state.metrics.received(&source, "unavailable");
            tracing::error!(source, error = %e, "delivery not stored; the sender is told to retry");
            // Known down from now on, until the probe hears it answer: the next senders get
            // their 503 at once.
            state.set_store_down(Some(e.clone()));
            unavailable(format!("{e}; nothing was stored, retry later"))
        }
    }
}

/// How long a webhook waits for its commit before answering 503.
const COMMIT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(4);

/// The CloudEvents HTTP webhook abuse-protection handshake: a sender asks with
/// `WebHook-Request-Origin` before its first delivery; a configured source allows it.
async fn handshake(Extract(state): Extract<Arc<State>>, Path(source): Path<String>, headers: HeaderMap) -> Response {
    if !state.sources.contains_key(&source) {
        return error(StatusCode::NOT_FOUND, format!("no source `{source}` here"));
    }
    let origin = headers.get("webhook-request-origin").and_then(|v| v.to_str().ok()).unwrap_or("*").to_string();
    let mut r = StatusCode::OK.into_response();
    if let Ok(v) = header::HeaderValue::from_str(&origin) {
        r.headers_mut().insert("webhook-allowed-origin", v);
    }
    r.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST, OPTIONS"));
    r
}

fn to_headers(map: &HeaderMap) -> Headers {
    Headers::from_pairs(map.iter().map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v.as_bytes()).into_owned())))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(Extract(state): Extract<Arc<State>>) -> Response {
    if state.is_shutting_down() {
        return unavailable("shutting down");
    }
    if let Some(why) = state.store_down() {
        return unavailable(format!("the store is unreachable: {why}"));
    }
    match tokio::time::timeout(super::PROBE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => unavailable(e.to_string()),
        Err(_) => unavailable(format!("the store did not answer within {} ms", super::PROBE_TIMEOUT.as_millis())),
    }
}

async fn metrics(Extract(state): Extract<Arc<State>>) -> Response {
    if let Ok(depth) = state.store.inbox_depth().await {
        state.metrics.set_inbox_depth(depth);
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}

async fn status(Extract(state): Extract<Arc<State>>) -> Response {
    let loaded = state.ruleset.load_full();
    let last = state.reload_status.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let playbooks: Vec<Value> = loaded
        .graph
        .playbooks()
        .iter()
        .map(|p| json!({ "id": p.id, "title": p.title, "status": format!("{:?}", p.status).to_lowercase() }))
        .collect();
    let sources: Vec<Value> = state
        .sources
        .iter()
        .map(|(name, s)| {
            json!({
                "name": name,
                "type": s.kind.as_deref().unwrap_or(name),
                "auth": s.auth.as_ref().map(|a| a.scheme()),
            })
        })
        .collect();
    let counts = state.store.event_counts().await.unwrap_or_default();
    let engine = engine_status(&state).await;
    let escalation = escalation_status(&state).await;
    let fixes = fix_status(&state).await;
    let replicas = state.store.replicas(chrono::Utc::now()).await.unwrap_or_default();
    let events: serde_json::Map<String, Value> = counts.into_iter().map(|(k, v)| (k, json!(v))).collect();
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ruleset": loaded.graph.hash(),
        "loaded_at": loaded.loaded_at,
        "playbooks": playbooks,
        "catalog": {
            "paths": state.config.catalog_paths(),
            "services": loaded.catalog.len(),
            "files": loaded.catalog.file_count(),
            "dependencies": loaded.catalog.dependency_count(),
        },
        "analyzer": state.analyzer.name(),
        "last_reload": last,
        "events": events,
        "store": state.store.url(),
        "replica": state.store.replica(),
        "replicas": replicas,
        "integrations": state.config.integrations.mode.as_str(),
        "engine": engine,
        "escalation": escalation,
        "fixes": fixes,
        "sources": sources,
    }))
    .into_response()
}

/// The engine at a glance: each integration's mode, what is paused, what waits.
async fn engine_status(state: &State) -> Value {
    let actions = state.config.integrations.actions();
    let global = state.config.integrations.mode;
    let modes: serde_json::Map<String, Value> = ["kubernetes", "redis", "http", "slack", "command"]
        .iter()
        .map(|i| (i.to_string(), json!(actions.mode(i, global).as_str())))
        .collect();
    let pauses: Vec<Value> = state
        .store
        .active_pauses(Utc::now())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(id, p)| json!({ "id": id, "scope": p.scope(), "breaker": p.breaker, "reason": p.reason, "until": p.until }))
        .collect();
    let count = |states: &'static [&'static str]| async move {
        state.store.executions(states, 1000).await.map(|e| e.len()).unwrap_or(0)
    };
    json!({
        "modes": modes,
        "pauses": pauses,
        "awaiting_approval": count(&["awaiting_approval"]).await,
        "in_flight": count(&["applying", "verifying"]).await,
        "queued": count(&["queued", "approved"]).await,
    })
}

/// Delivery at a glance: each destination's mode, the outbox by state, how long the oldest
/// undelivered message has waited, and the latest errors.
async fn escalation_status(state: &State) -> Value {
    let now = Utc::now();
    let counts = state.store.outbox_counts().await.unwrap_or_default();
    let mut destinations = serde_json::Map::new();
    for c in &counts {
        let entry = destinations.entry(c.destination.clone()).or_insert_with(|| json!({}));
        entry[c.state.as_str()] = json!(c.count);
        if c.state == "pending" {
            entry["oldest_pending_seconds"] = json!((now - c.oldest).num_seconds().max(0));
        }
    }
    let errors: Vec<Value> = state
        .store
        .outbox(None, 200)
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.last_error.is_some() && matches!(r.state.as_str(), "pending" | "failed"))
        .take(10)
        .map(|r| r.to_json())
        .collect();
    json!({ "modes": state.delivery.modes(), "outbox": destinations, "errors": errors })
}

/// L2 at a glance: GitHub's mode, the acceptance rate of each generator and playbook, and
/// the latest fixes.
async fn fix_status(state: &State) -> Value {
    let acceptance = state.store.fix_acceptance().await.map(|a| a.to_json()).unwrap_or(Value::Null);
    let recent: Vec<Value> = state.store.fix_pulls(20).await.unwrap_or_default().iter().map(|f| f.to_json()).collect();
    json!({ "mode": state.delivery.modes()["github"], "acceptance": acceptance, "recent": recent })
}

/// The token inventory: every token, its owner, its expiry and the days left, soonest
/// first (no expiry last), with what went wrong reading the sources.
async fn tokens(Extract(state): Extract<Arc<State>>) -> Response {
    let loaded = state.ruleset.load_full();
    let http = &state.engine.clients.http;
    let inventory = super::tokens::inventory(&loaded.catalog, &state.config.tokens, http).await;
    let (mut list, problems) = (inventory.tokens, inventory.problems);
    list.sort_by_key(|t| (t.expires_at.is_none(), t.expires_at, t.name.clone()));
    let now = Utc::now();
    let items: Vec<Value> = list
        .iter()
        .map(|t| {
            let mut v = json!(t);
            v["days_left"] = json!(t.expires_at.map(|e| (e - now).num_days()));
            v
        })
        .collect();
    axum::Json(json!({ "tokens": items, "problems": problems, "complete": inventory.complete })).into_response()
}

async fn event(Extract(state): Extract<Arc<State>>, Path(id): Path<String>) -> Response {
    match state.store.event(&id).await {
        Ok(Some(v)) => axum::Json(v).into_response(),
        Ok(None) => {
            error(StatusCode::NOT_FOUND, format!("no event `{id}`: give an event id or its inbox position (`seq`)"))
        }
        Err(e) => unavailable(e.to_string()),
    }
}

#[derive(Deserialize)]
struct DecisionsQuery {
    limit: Option<i64>,
    playbook: Option<String>,
    level: Option<String>,
}

async fn decisions(Extract(state): Extract<Arc<State>>, Query(q): Query<DecisionsQuery>) -> Response {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    match state.store.decisions(limit, q.playbook.as_deref(), q.level.as_deref()).await {
        Ok(list) => {
            let items: Vec<Value> = list
                .into_iter()
                .map(|d| {
                    json!({
                        "seq": d.seq,
                        "event_seq": d.event_seq,
                        "event_id": d.event_id,
                        "level": d.level,
                        "playbook": d.playbook,
                        "incident": d.incident_key,
                        "ruleset": d.ruleset,
                        "decided_at": d.decided_at,
                        "explained": d.decision,
                    })
                })
                .collect();
            axum::Json(json!({ "decisions": items })).into_response()
        }
        Err(e) => unavailable(e.to_string()),
    }
}

/// Admin endpoints need `Authorization: Bearer <admin_token>`.
/// `None` when the request may proceed; otherwise the refusal.
pub(super) fn admin_refusal(state: &State, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &state.config.admin_token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "admin endpoints are off: set `admin_token` in the configuration (or send SIGHUP to reload)",
        ));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Some(error(StatusCode::UNAUTHORIZED, "send `Authorization: Bearer <admin_token>`")),
        Some(g) if bool::from(subtle::ConstantTimeEq::ct_eq(g.as_bytes(), token.as_bytes())) => None,
        Some(_) => Some(error(StatusCode::FORBIDDEN, "the admin token is wrong")),
    }
}

async fn reload_now(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = admin_refusal(&state, &headers) {
        return refusal;
    }
    let s = state.clone();
    let ok = tokio::task::spawn_blocking(move || reload::reload(&s, "api")).await.unwrap_or(false);
    let last = state.reload_status.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let code = if ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    (code, axum::Json(json!({ "reload": last }))).into_response()
}
