//! The engine's persisted state: executions of L1 plans, the targets they hold, pauses and
//! the circuit breaker, and escalations raised after the decision. Every guard the engine
//! re-checks at execution time reads this state inside the transaction that claims the
//! execution, so the limits hold across restarts.

use super::audit::{AuditEntry, append};
use super::{Store, StoreError, parse_ts, ts, unavailable};
use crate::actions::Plan;
use crate::triage::{Outcome, Pause};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// How an applied plan proves it worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verify {
    /// The source alert resolves (its resolved webhook arrives) within the window.
    Resolved { within_ms: u64 },
    /// An HTTP GET of `url` answers `status` within the window (tried every few seconds).
    Probe { url: String, status: u16, within_ms: u64 },
    /// The action's destination acknowledged it (a notification): proven by the apply.
    Delivered,
}

impl Verify {
    pub fn within_ms(&self) -> u64 {
        match self {
            Verify::Resolved { within_ms } | Verify::Probe { within_ms, .. } => *within_ms,
            Verify::Delivered => 0,
        }
    }
}

/// An execution to create with its decision, in the decision's transaction.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: String,
    /// `queued`, `awaiting_approval` or `planned`.
    pub state: &'static str,
    pub plans: Vec<Plan>,
    pub verify: Vec<Verify>,
    /// The keys its run records (cooldowns per field).
    pub run_keys: BTreeMap<String, String>,
    /// The guard figures at decision time, for the audit log.
    pub guards: Value,
    pub namespace: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// An execution as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    pub id: String,
    pub event_seq: i64,
    pub event_id: String,
    pub fingerprint: String,
    pub incident_key: Option<String>,
    pub playbook: String,
    pub service: Option<String>,
    pub namespace: Option<String>,
    pub ruleset: String,
    pub state: String,
    pub dry_run: bool,
    pub plans: Vec<Plan>,
    pub verify: Vec<Verify>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_deadline: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    #[serde(skip)]
    run_keys: String,
}

impl Execution {
    pub fn targets(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self.plans.iter().map(|p| p.target.as_str()).collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Any action in the plan changes the world.
    pub fn mutating(&self) -> bool {
        self.plans.iter().any(|p| p.mutating)
    }
}

fn execution_of(r: &sqlx::any::AnyRow) -> Execution {
    let opt_ts = |c: &str| r.get::<Option<String>, _>(c).map(|t| parse_ts(&t));
    Execution {
        id: r.get("id"),
        event_seq: r.get("event_seq"),
        event_id: r.get("event_id"),
        fingerprint: r.get("fingerprint"),
        incident_key: r.get("incident_key"),
        playbook: r.get("playbook"),
        service: r.get("service"),
        namespace: r.get("namespace"),
        ruleset: r.get("ruleset"),
        state: r.get("state"),
        dry_run: r.get::<i64, _>("dry_run") != 0,
        plans: serde_json::from_str(&r.get::<String, _>("plan_json")).unwrap_or_default(),
        verify: serde_json::from_str(&r.get::<String, _>("verify_json")).unwrap_or_default(),
        result: r.get::<Option<String>, _>("result_json").and_then(|j| serde_json::from_str(&j).ok()),
        created_at: parse_ts(&r.get::<String, _>("created_at")),
        updated_at: parse_ts(&r.get::<String, _>("updated_at")),
        expires_at: opt_ts("expires_at"),
        started_at: opt_ts("started_at"),
        verify_deadline: opt_ts("verify_deadline"),
        answered_by: r.get("answered_by"),
        run_keys: r.get("run_keys_json"),
    }
}

/// A guard checked at execution time: the same shape as the decision's guard checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub guard: String,
    pub figure: String,
    pub limit: String,
    pub passed: bool,
}

/// `count per window`, for the per-target rate and the global budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub window_ms: u64,
}

/// The limits a claim checks besides the pauses.
#[derive(Debug, Clone)]
pub struct Limits {
    pub per_target: Rate,
    pub budget: Rate,
    /// The freeze window in force, if any (`weekend freeze until ...`).
    pub freeze: Option<String>,
    /// Whether this execution runs in dry-run mode.
    pub dry_run: bool,
}

/// What a claim gave.
#[derive(Debug, Clone)]
pub enum Claim {
    /// Every guard passed: the execution is `applying`, its claim audited.
    Ready(Execution, Vec<Check>),
    /// A guard refused (its check says which and the figure): `refused`, escalated.
    Refused(Execution, Check),
    /// Nothing to do any more (the alert resolved meanwhile): `skipped`.
    Skipped(Execution, String),
    /// Not claimable (already claimed, answered, or unknown).
    Gone,
}

/// What the engine learned from an outcome that the owner must hear about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Demotion {
    pub playbook: String,
    pub failures: u64,
    pub reason: String,
}

const ACTIVE: &str = "('applying', 'verifying')";

fn ago(now: DateTime<Utc>, ms: u64) -> String {
    let back = chrono::Duration::try_milliseconds(ms.min(i64::MAX as u64) as i64).unwrap_or(chrono::Duration::MAX);
    ts(now.checked_sub_signed(back).unwrap_or(DateTime::<Utc>::MIN_UTC))
}

fn window(ms: u64) -> String {
    crate::dsl::ast::Duration { millis: ms }.to_string()
}

async fn load(conn: &mut AnyConnection, id: &str) -> Result<Option<Execution>, StoreError> {
    let row = sqlx::query("SELECT * FROM executions WHERE id = $1").bind(id).fetch_optional(&mut *conn).await;
    Ok(row.map_err(unavailable)?.as_ref().map(execution_of))
}

async fn set_state(
    conn: &mut AnyConnection,
    id: &str,
    state: &str,
    result: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE executions SET state = $1, result_json = COALESCE($2, result_json), updated_at = $3 WHERE id = $4",
    )
    .bind(state)
    .bind(result.map(Value::to_string))
    .bind(ts(now))
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// The run of `e` takes `outcome` (dry-run executions always end `dry_run`: they never earn
/// trust or trip the breaker; refusals are refused in both modes).
async fn set_run(
    conn: &mut AnyConnection,
    e: &Execution,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let outcome = match outcome {
        Outcome::Refused => Outcome::Refused,
        _ if e.dry_run => Outcome::DryRun,
        o => o,
    };
    sqlx::query("UPDATE runs SET outcome = $1, updated_at = $2 WHERE event_seq = $3 AND playbook = $4")
        .bind(outcome.as_str())
        .bind(ts(now))
        .bind(e.event_seq)
        .bind(&e.playbook)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

async fn escalate(
    conn: &mut AnyConnection,
    to: super::Destinations,
    e: &Execution,
    cause: &str,
    package: Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO escalations (incident_key, playbook, execution, cause, package_json, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (execution, cause) DO NOTHING",
    )
    .bind(e.incident_key.as_deref())
    .bind(&e.playbook)
    .bind(&e.id)
    .bind(cause)
    .bind(package.to_string())
    .bind(ts(now))
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    // The incident is a person's now.
    if let Some(key) = &e.incident_key {
        let attempt = crate::escalate::Attempt {
            level: "l1".into(),
            id: e.id.clone(),
            playbook: e.playbook.clone(),
            outcome: cause.to_string(),
            detail: package,
        };
        super::outbox::later(conn, to, key, cause, attempt, e.event_seq, now).await?;
        sqlx::query("UPDATE incidents SET level = 'L3', updated_at = $1 WHERE key = $2")
            .bind(ts(now))
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    append(
        conn,
        now,
        &AuditEntry {
            actor: "sparky",
            action: "escalate",
            execution: Some(&e.id),
            playbook: Some(&e.playbook),
            incident_key: e.incident_key.as_deref(),
            record: json!({ "cause": cause }),
        },
    )
    .await?;
    Ok(())
}

/// A run of `e` succeeded: when it was a scheduled run, the incident of its schedule closes
/// (a schedule has no source to resolve it; the runs of a schedule are one incident until
/// one succeeds), and wherever an earlier failed run escalated it hears so.
async fn run_succeeded(conn: &mut AnyConnection, e: &Execution, now: DateTime<Utc>) -> Result<(), StoreError> {
    let Some(key) = &e.incident_key else { return Ok(()) };
    if !scheduled(conn, e.event_seq).await? {
        return Ok(());
    }
    // Another run of the incident still under way, or one that failed after this one
    // started: the incident is not over.
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM executions WHERE incident_key = $1 AND id != $2
           AND (state IN ('queued', 'approved', 'applying', 'verifying', 'awaiting_approval')
                OR (state IN ('failed', 'refused', 'timed_out', 'interrupted') AND created_at > $3))",
    )
    .bind(key)
    .bind(&e.id)
    .bind(ts(e.created_at))
    .fetch_one(&mut *conn)
    .await
    .map_err(unavailable)?;
    if others > 0 {
        return Ok(());
    }
    let headline = format!("a scheduled run of {} succeeded at {} (execution {})", e.playbook, ts(now), e.id);
    if super::close_incident(conn, key, &headline, now).await? {
        append(conn, now, &audit_entry(e, "sparky", "close", json!({ "why": "a scheduled run succeeded" }))).await?;
    }
    Ok(())
}

/// Whether inbox event `seq` is a scheduled run.
async fn scheduled(conn: &mut AnyConnection, seq: i64) -> Result<bool, StoreError> {
    let event: Option<String> = sqlx::query_scalar("SELECT event_json FROM events WHERE seq = $1")
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(event
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|v| v.get("kind").and_then(Value::as_str) == Some(crate::event::Kind::Schedule.as_str())))
}

fn audit_entry<'a>(e: &'a Execution, actor: &'a str, action: &'a str, record: Value) -> AuditEntry<'a> {
    AuditEntry {
        actor,
        action,
        execution: Some(&e.id),
        playbook: Some(&e.playbook),
        incident_key: e.incident_key.as_deref(),
        record,
    }
}

/// The pauses in force at `now`, with their ids.
async fn active_pauses_in(conn: &mut AnyConnection, now: DateTime<Utc>) -> Result<Vec<(i64, Pause)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, playbook, service, namespace, breaker, reason, paused_by, until FROM pauses
         WHERE lifted_at IS NULL AND (until IS NULL OR until > $1) ORDER BY id",
    )
    .bind(ts(now))
    .fetch_all(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<i64, _>("id"),
                Pause {
                    playbook: r.get("playbook"),
                    service: r.get("service"),
                    namespace: r.get("namespace"),
                    breaker: r.get::<i64, _>("breaker") != 0,
                    reason: r.get("reason"),
                    by: r.get("paused_by"),
                    until: r.get::<Option<String>, _>("until").map(|t| parse_ts(&t)),
                },
            )
        })
        .collect())
}

/// Demotes `playbook` when its last `threshold` verified runs (since it was last re-enabled)
/// all failed and no breaker holds it already.
async fn trip_breaker(
    conn: &mut AnyConnection,
    playbook: &str,
    threshold: u64,
    now: DateTime<Utc>,
) -> Result<Option<Demotion>, StoreError> {
    if threshold == 0 {
        return Ok(None);
    }
    let held = sqlx::query("SELECT 1 FROM pauses WHERE breaker = 1 AND playbook = $1 AND lifted_at IS NULL")
        .bind(playbook)
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    if held.is_some() {
        return Ok(None);
    }
    let since: Option<String> =
        sqlx::query_scalar("SELECT MAX(lifted_at) FROM pauses WHERE breaker = 1 AND playbook = $1")
            .bind(playbook)
            .fetch_one(&mut *conn)
            .await
            .map_err(unavailable)?;
    let outcomes: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM runs WHERE playbook = $1 AND outcome IN ('success', 'failure') AND updated_at > $2
         ORDER BY updated_at DESC, seq DESC LIMIT $3",
    )
    .bind(playbook)
    .bind(since.unwrap_or_default())
    .bind(threshold as i64)
    .fetch_all(&mut *conn)
    .await
    .map_err(unavailable)?;
    if (outcomes.len() as u64) < threshold || outcomes.iter().any(|o| o != "failure") {
        return Ok(None);
    }
    let reason = format!(
        "the last {threshold} runs of {playbook} failed their verification; its L1 is demoted to L3 until a person runs `sparky resume --scope playbook={playbook}`"
    );
    sqlx::query(
        "INSERT INTO pauses (playbook, breaker, reason, paused_by, created_at) VALUES ($1, 1, $2, 'circuit breaker', $3)",
    )
    .bind(playbook)
    .bind(&reason)
    .bind(ts(now))
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    append(
        conn,
        now,
        &AuditEntry {
            actor: "sparky",
            action: "demote",
            execution: None,
            playbook: Some(playbook),
            incident_key: None,
            record: json!({ "consecutive_failures": threshold, "reason": reason }),
        },
    )
    .await?;
    Ok(Some(Demotion { playbook: playbook.to_string(), failures: threshold, reason }))
}

/// Creates `new` for the decision being recorded (inside `record_all`'s transaction), with
/// its first audit record.
pub(crate) async fn create(
    conn: &mut AnyConnection,
    new: &NewExecution,
    record: &super::Record<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let d = record.decision;
    let playbook = d.playbook.as_deref().unwrap_or_default();
    let incident_key = d.incident.as_ref().map(|c| c.key.as_str());
    sqlx::query(
        "INSERT INTO executions (id, event_seq, event_id, fingerprint, incident_key, playbook, service, namespace,
                                 ruleset, state, plan_json, verify_json, run_keys_json, mutating, created_at, updated_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&new.id)
    .bind(record.seq)
    .bind(&record.event.id)
    .bind(&record.event.fingerprint)
    .bind(incident_key)
    .bind(playbook)
    .bind(record.event.service.as_deref())
    .bind(new.namespace.as_deref())
    .bind(&d.ruleset)
    .bind(new.state)
    .bind(serde_json::to_string(&new.plans).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&new.verify).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&new.run_keys).unwrap_or_else(|_| "{}".into()))
    .bind(new.plans.iter().any(|p| p.mutating) as i64)
    .bind(ts(now))
    .bind(new.expires_at.map(ts))
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    for p in &new.plans {
        sqlx::query("INSERT INTO execution_targets (execution, target) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&new.id)
            .bind(&p.target)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    let e = record.event;
    append(
        conn,
        now,
        &AuditEntry {
            actor: "sparky",
            action: "decide",
            execution: Some(&new.id),
            playbook: Some(playbook),
            incident_key,
            record: json!({
                "event": { "id": e.id, "source": e.source, "fingerprint": e.fingerprint, "summary": e.summary },
                "level": d.level.as_str(),
                "mode": d.mode.map(|m| m.as_str()),
                "state": new.state,
                "reasons": d.reasons,
                "ruleset": d.ruleset,
                "plans": new.plans,
                "guards": new.guards,
            }),
        },
    )
    .await?;
    Ok(())
}

/// The executions of incident `key` in `state` whose verification is the alert's resolution.
async fn verified_by_resolution(
    conn: &mut AnyConnection,
    key: &str,
    state: &str,
) -> Result<Vec<Execution>, StoreError> {
    let rows = sqlx::query("SELECT * FROM executions WHERE incident_key = $1 AND state = $2")
        .bind(key)
        .bind(state)
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(execution_of)
        .filter(|e| e.verify.iter().any(|v| matches!(v, Verify::Resolved { .. })))
        .collect())
}

/// Marks the executions waiting for `key`'s alert to resolve as verified (inside
/// `record_all`'s transaction, with the resolved event).
pub(crate) async fn resolved(conn: &mut AnyConnection, key: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    for e in verified_by_resolution(conn, key, "verifying").await? {
        let within = e.verify_deadline.is_none_or(|d| now <= d);
        if !within {
            continue; // The deadline sweep fails it.
        }
        let took = e.started_at.map(|s| (now - s).num_milliseconds().max(0) as u64).unwrap_or(0);
        let result = json!({ "verified": "the source alert resolved", "after": window(took) });
        set_state(conn, &e.id, "succeeded", Some(&result), now).await?;
        set_run(conn, &e, Outcome::Success, now).await?;
        append(conn, now, &audit_entry(&e, "sparky", "verify", json!({ "outcome": "success", "how": result }))).await?;
    }
    Ok(())
}

/// The alert of incident `key` fired again inside the verification window after its
/// resolution had verified the L1 run: that run did not fix anything after all. Its
/// execution is a failed verification and its run a failure, so that the success rate and
/// the circuit breaker see it (inside `record_all`'s transaction, with the re-fire).
pub(crate) async fn refired(
    conn: &mut AnyConnection,
    key: &str,
    breaker: u64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for e in verified_by_resolution(conn, key, "succeeded").await? {
        let how = json!({
            "failed": "the alert fired again inside the verification window after it resolved",
            "at": ts(now),
        });
        let mut result = e.result.clone().unwrap_or_else(|| json!({}));
        result["verification"] = json!({ "outcome": "failure", "how": how });
        set_state(conn, &e.id, "failed", Some(&result), now).await?;
        set_run(conn, &e, Outcome::Failure, now).await?;
        append(conn, now, &audit_entry(&e, "sparky", "verify", json!({ "outcome": "failure", "how": how }))).await?;
        if !e.dry_run
            && let Some(d) = trip_breaker(conn, &e.playbook, breaker, now).await?
        {
            // The engine tells the owner of a demotion it makes; this one is made where the
            // re-fire is recorded, so it is said here, loudly (the audit log has it too).
            tracing::error!(playbook = %d.playbook, failures = d.failures, reason = %d.reason, "a playbook was demoted: its L1 runs keep failing their verification");
        }
    }
    Ok(())
}

/// What recording a verification did.
#[derive(Debug, Clone, PartialEq)]
pub enum Verified {
    /// Recorded; with the demotion when it tripped the circuit breaker.
    Recorded(Option<Demotion>),
    /// Recorded before (by another replica probing the same execution): nothing changed.
    Already,
}

impl Verified {
    /// The demotion it caused.
    pub fn demotion(self) -> Option<Demotion> {
        match self {
            Verified::Recorded(d) => d,
            Verified::Already => None,
        }
    }
}

impl Store {
    /// Executions in `states` (all when empty), newest first.
    pub async fn executions(&self, states: &[&str], limit: i64) -> Result<Vec<Execution>, StoreError> {
        let sql = if states.is_empty() {
            "SELECT * FROM executions ORDER BY created_at DESC, id LIMIT $1".to_string()
        } else {
            format!(
                "SELECT * FROM executions WHERE state IN ({}) ORDER BY created_at DESC, id LIMIT $1",
                super::placeholders(2, states.len())
            )
        };
        let mut q = sqlx::query(&sql).bind(limit);
        for s in states {
            q = q.bind(*s);
        }
        Ok(q.fetch_all(&self.pool).await.map_err(unavailable)?.iter().map(execution_of).collect())
    }

    /// One execution by id.
    pub async fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        load(&mut conn, id).await
    }

    /// Executions ready to be claimed (queued, or approved), oldest first.
    pub async fn claimable(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM executions WHERE state IN ('queued', 'approved') ORDER BY created_at, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }

    /// Re-checks the execution-time guards of `id` and claims it, in one transaction: the
    /// pauses (kill switch, scoped pauses, circuit breaker), a freeze window, whether the alert
    /// is still open, one action in flight per target, the per-target rate, and the global
    /// budget. A refusal is audited with its figure and escalated.
    pub async fn claim(&self, id: &str, limits: &Limits, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(mut e) = load(&mut tx, id).await? else { return Ok(Claim::Gone) };
        if e.state != "queued" && e.state != "approved" {
            return Ok(Claim::Gone);
        }
        e.dry_run = limits.dry_run;
        let mut checks = Vec::new();
        // The kill switch and scoped pauses.
        let pauses = active_pauses_in(&mut tx, now).await?;
        let pause = pauses
            .iter()
            .map(|(_, p)| p)
            .find(|p| p.applies(&e.playbook, e.service.as_deref(), e.namespace.as_deref(), now));
        checks.push(match pause {
            Some(p) => {
                Check { guard: p.guard().into(), figure: p.describe(), limit: "not paused".into(), passed: false }
            }
            None => Check {
                guard: "kill switch".into(),
                figure: "not paused".into(),
                limit: "not paused".into(),
                passed: true,
            },
        });
        checks.push(match &limits.freeze {
            Some(f) => Check {
                guard: "freeze".into(),
                figure: f.clone(),
                limit: "outside freeze windows".into(),
                passed: false,
            },
            None => Check {
                guard: "freeze".into(),
                figure: "no freeze window in force".into(),
                limit: "outside freeze windows".into(),
                passed: true,
            },
        });
        // A scheduled run's incident closing (an earlier run succeeded) is not a resolved
        // alert: the run still runs.
        if let Some(key) = &e.incident_key
            && !scheduled(&mut tx, e.event_seq).await?
        {
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM incidents WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
            if state.as_deref() == Some("closed") {
                let reason =
                    format!("the alert resolved before the action ran (incident {key} is closed): nothing to do");
                let result = json!({ "skipped": reason });
                set_state(&mut tx, &e.id, "skipped", Some(&result), now).await?;
                set_run(&mut tx, &e, Outcome::Refused, now).await?;
                append(&mut tx, now, &audit_entry(&e, "sparky", "skip", result)).await?;
                tx.commit().await.map_err(unavailable)?;
                return Ok(Claim::Skipped(e, reason));
            }
        }
        let targets = e.targets();
        if e.mutating() {
            for t in &targets {
                let busy: Option<String> = sqlx::query_scalar(&format!(
                    "SELECT x.id FROM execution_targets t JOIN executions x ON x.id = t.execution
                     WHERE t.target = $1 AND x.id <> $2 AND x.state IN {ACTIVE} LIMIT 1"
                ))
                .bind(*t)
                .bind(&e.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
                checks.push(Check {
                    guard: format!("one action in flight per target ({t})"),
                    figure: match &busy {
                        Some(other) => format!("{other} is still in flight on it"),
                        None => "nothing in flight on it".into(),
                    },
                    limit: "nothing else in flight".into(),
                    passed: busy.is_none(),
                });
                let Rate { count, window_ms } = limits.per_target;
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM execution_targets WHERE target = $1 AND started_at >= $2 AND execution <> $3",
                )
                .bind(*t)
                .bind(ago(now, window_ms))
                .bind(&e.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?;
                checks.push(Check {
                    guard: format!("at_most {count} per {} per target ({t})", window(window_ms)),
                    figure: format!("{n} run{} in the last {}", if n == 1 { "" } else { "s" }, window(window_ms)),
                    limit: format!("fewer than {count} before this one"),
                    passed: (n as u64) < count,
                });
            }
            let Rate { count, window_ms } = limits.budget;
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM executions WHERE started_at >= $1 AND id <> $2 AND mutating = 1",
            )
            .bind(ago(now, window_ms))
            .bind(&e.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
            checks.push(Check {
                guard: format!("global budget {count} per {}", window(window_ms)),
                figure: format!(
                    "{n} action{} started in the last {}",
                    if n == 1 { "" } else { "s" },
                    window(window_ms)
                ),
                limit: format!("fewer than {count} before this one"),
                passed: (n as u64) < count,
            });
        }
        if let Some(refused) = checks.iter().find(|c| !c.passed).cloned() {
            let result = json!({ "refused": refused, "checks": checks });
            set_state(&mut tx, &e.id, "refused", Some(&result), now).await?;
            set_run(&mut tx, &e, Outcome::Refused, now).await?;
            append(&mut tx, now, &audit_entry(&e, "sparky", "refuse", json!({ "guard": refused, "checks": checks })))
                .await?;
            escalate(&mut tx, self.destinations, &e, "refused at execution", json!({ "refused": refused }), now)
                .await?;
            tx.commit().await.map_err(unavailable)?;
            e.state = "refused".into();
            return Ok(Claim::Refused(e, refused));
        }
        sqlx::query(
            "UPDATE executions SET state = 'applying', dry_run = $1, started_at = $2, updated_at = $2, replica = $4 WHERE id = $3",
        )
        .bind(limits.dry_run as i64)
        .bind(ts(now))
        .bind(&e.id)
        .bind(self.replica())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query("UPDATE execution_targets SET started_at = $1 WHERE execution = $2")
            .bind(ts(now))
            .bind(&e.id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if e.state == "approved" {
            // The run recorded when the plan began to await approval counts from now, when
            // the approved action is carried out (and earns trust once verified).
            sqlx::query("UPDATE runs SET at = $1, updated_at = $1 WHERE event_seq = $2 AND playbook = $3")
                .bind(ts(now))
                .bind(e.event_seq)
                .bind(&e.playbook)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        append(&mut tx, now, &audit_entry(&e, "sparky", "claim", json!({ "plans": e.plans, "checks": checks })))
            .await?;
        tx.commit().await.map_err(unavailable)?;
        e.state = "applying".into();
        e.started_at = Some(now);
        Ok(Claim::Ready(e, checks))
    }

    /// Records what `apply()` did for a claimed execution. `failure` is the first action that
    /// failed (`refused` when the system said no); without one, the execution waits for its
    /// verification (or succeeds when it has none, or when the alert resolved during the
    /// apply). A failure is escalated and may trip the circuit breaker. Returns the state it
    /// leaves the execution in.
    pub async fn applied(
        &self,
        e: &Execution,
        results: Value,
        failure: Option<(bool, String)>,
        breaker: u64,
        now: DateTime<Utc>,
    ) -> Result<(&'static str, Option<Demotion>), StoreError> {
        let mut tx = self.begin_write().await?;
        // Asked again after an error whose commit may have gone through: record it once.
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM executions WHERE id = $1")
            .bind(&e.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        if state.as_deref() != Some("applying") {
            return Ok((if state.as_deref() == Some("verifying") { "verifying" } else { "recorded" }, None));
        }
        let mode = if e.dry_run { "dry-run" } else { "live" };
        let mut demotion = None;
        let final_state;
        match &failure {
            Some((refused, why)) => {
                let state = if *refused { "refused" } else { "failed" };
                final_state = state;
                let result = json!({ "mode": mode, "actions": results, "error": why });
                set_state(&mut tx, &e.id, state, Some(&result), now).await?;
                set_run(&mut tx, e, if *refused { Outcome::Refused } else { Outcome::Failure }, now).await?;
                append(
                    &mut tx,
                    now,
                    &audit_entry(e, "sparky", "result", json!({ "outcome": state, "result": result })),
                )
                .await?;
                escalate(
                    &mut tx,
                    self.destinations,
                    e,
                    if *refused { "refused by the target" } else { "action failed" },
                    result,
                    now,
                )
                .await?;
                if !refused && !e.dry_run {
                    demotion = trip_breaker(&mut tx, &e.playbook, breaker, now).await?;
                }
                if let Some(d) = &demotion {
                    escalate(&mut tx, self.destinations, e, "playbook demoted", json!(d), now).await?;
                }
            }
            None => {
                let result = json!({ "mode": mode, "actions": results });
                let window = e.verify.iter().map(Verify::within_ms).max().unwrap_or(0);
                let waits = e.verify.iter().any(|v| !matches!(v, Verify::Delivered));
                // The alert may have resolved while the action was being applied: that is the
                // verification it waits for.
                let resolved_meanwhile = match &e.incident_key {
                    Some(key) if e.verify.iter().any(|v| matches!(v, Verify::Resolved { .. })) => {
                        let state: Option<String> = sqlx::query_scalar("SELECT state FROM incidents WHERE key = $1")
                            .bind(key)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(unavailable)?;
                        state.as_deref() == Some("closed")
                    }
                    _ => false,
                };
                final_state = match (waits, resolved_meanwhile) {
                    (true, false) => "verifying",
                    _ => "succeeded",
                };
                if waits && resolved_meanwhile {
                    let mut result = result.clone();
                    result["verification"] = json!({ "outcome": "success", "how": { "verified": "the source alert resolved during the apply" } });
                    set_state(&mut tx, &e.id, "succeeded", Some(&result), now).await?;
                    set_run(&mut tx, e, Outcome::Success, now).await?;
                } else if waits {
                    let deadline = e.started_at.unwrap_or(now) + chrono::Duration::milliseconds(window as i64);
                    sqlx::query(
                        "UPDATE executions SET state = 'verifying', result_json = $1, verify_deadline = $2, updated_at = $3
                         WHERE id = $4",
                    )
                    .bind(result.to_string())
                    .bind(ts(deadline))
                    .bind(ts(now))
                    .bind(&e.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                } else {
                    set_state(&mut tx, &e.id, "succeeded", Some(&result), now).await?;
                    set_run(&mut tx, e, Outcome::Success, now).await?;
                    run_succeeded(&mut tx, e, now).await?;
                }
                let outcome = match (e.dry_run, waits && !resolved_meanwhile) {
                    (true, true) => "dry-run: not applied; verifying",
                    (true, false) => "dry-run: not applied",
                    (false, true) => "applied; verifying",
                    (false, false) => "succeeded",
                };
                append(
                    &mut tx,
                    now,
                    &audit_entry(e, "sparky", "result", json!({ "outcome": outcome, "result": result })),
                )
                .await?;
            }
        }
        tx.commit().await.map_err(unavailable)?;
        Ok((final_state, demotion))
    }

    /// Executions whose verification deadline passed, and those waiting on a probe.
    pub async fn verifying(&self) -> Result<Vec<Execution>, StoreError> {
        let rows = sqlx::query("SELECT * FROM executions WHERE state = 'verifying' ORDER BY verify_deadline")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows.iter().map(execution_of).collect())
    }

    /// The verification of `e` ended: `success`, or `failure` / `timed_out` (escalated; may
    /// trip the circuit breaker).
    pub async fn verified(
        &self,
        e: &Execution,
        outcome: &str,
        how: Value,
        breaker: u64,
        now: DateTime<Utc>,
    ) -> Result<Verified, StoreError> {
        let mut tx = self.begin_write().await?;
        let still: Option<String> = sqlx::query_scalar("SELECT state FROM executions WHERE id = $1")
            .bind(&e.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        if still.as_deref() != Some("verifying") {
            return Ok(Verified::Already);
        }
        let state = if outcome == "success" { "succeeded" } else { outcome };
        let mut result = e.result.clone().unwrap_or_else(|| json!({}));
        result["verification"] = json!({ "outcome": outcome, "how": how });
        set_state(&mut tx, &e.id, state, Some(&result), now).await?;
        let success = outcome == "success";
        set_run(&mut tx, e, if success { Outcome::Success } else { Outcome::Failure }, now).await?;
        append(&mut tx, now, &audit_entry(e, "sparky", "verify", json!({ "outcome": outcome, "how": how }))).await?;
        let mut demotion = None;
        if success {
            run_succeeded(&mut tx, e, now).await?;
        } else {
            escalate(&mut tx, self.destinations, e, "verification failed", result, now).await?;
            if !e.dry_run {
                demotion = trip_breaker(&mut tx, &e.playbook, breaker, now).await?;
            }
            if let Some(d) = &demotion {
                escalate(&mut tx, self.destinations, e, "playbook demoted", json!(d), now).await?;
            }
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(Verified::Recorded(demotion))
    }

    /// At start, and every minute: executions left `applying` by a process that stopped
    /// (this replica before its restart, or a replica unseen for [`super::GONE_AFTER`]) were
    /// perhaps applied, perhaps not. They are never applied again: each waits for its
    /// verification (which decides) or, without one, ends `interrupted` and is escalated.
    /// Those a live replica is applying are left to it.
    pub async fn interrupted(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.interrupted_of(true, now).await
    }

    /// Executions left `applying` by replicas unseen for [`super::GONE_AFTER`] (the
    /// periodic sweep: this replica's own are its to finish).
    pub async fn orphaned(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.interrupted_of(false, now).await
    }

    async fn interrupted_of(&self, starting: bool, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT * FROM executions WHERE state = 'applying'
               AND (($3 = 1 AND (replica IS NULL OR replica = $1))
                    OR (replica <> $1 AND replica NOT IN (SELECT id FROM replicas WHERE seen_at >= $2)))",
        )
        .bind(self.replica())
        .bind(ts(now - super::GONE_AFTER))
        .bind(i64::from(starting))
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let mut ids = Vec::new();
        for e in rows.iter().map(execution_of) {
            let waits = e.verify.iter().any(|v| !matches!(v, Verify::Delivered));
            let note = "the daemon stopped while this execution was being applied; it is not applied again";
            if waits {
                let window = e.verify.iter().map(Verify::within_ms).max().unwrap_or(0);
                let deadline = e.started_at.unwrap_or(now) + chrono::Duration::milliseconds(window as i64);
                let result = json!({ "interrupted": note });
                sqlx::query(
                    "UPDATE executions SET state = 'verifying', result_json = $1, verify_deadline = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(result.to_string())
                .bind(ts(deadline.max(now)))
                .bind(ts(now))
                .bind(&e.id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                append(
                    &mut tx,
                    now,
                    &audit_entry(&e, "sparky", "interrupted", json!({ "note": note, "next": "verification decides" })),
                )
                .await?;
            } else {
                let result = json!({ "interrupted": note });
                set_state(&mut tx, &e.id, "interrupted", Some(&result), now).await?;
                set_run(&mut tx, &e, Outcome::Failure, now).await?;
                append(
                    &mut tx,
                    now,
                    &audit_entry(&e, "sparky", "interrupted", json!({ "note": note, "next": "escalated" })),
                )
                .await?;
                escalate(&mut tx, self.destinations, &e, "interrupted", result, now).await?;
            }
            ids.push(e.id);
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(ids)
    }

    /// A person's answer to an execution awaiting approval. The error says why it cannot be
    /// answered (unknown, already answered, expired).
    pub async fn answer(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Execution, String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(mut e) = load(&mut tx, id).await? else {
            return Ok(Err(format!("no execution `{id}`; `sparky approve --list` shows those awaiting approval")));
        };
        if e.state != "awaiting_approval" {
            return Ok(Err(format!("execution `{id}` is `{}`, not awaiting approval: nothing to answer", e.state)));
        }
        if e.expires_at.is_some_and(|x| x <= now) {
            return Ok(Err(format!(
                "execution `{id}` expired at {} without an answer; the event was escalated meanwhile",
                e.expires_at.map(ts).unwrap_or_default()
            )));
        }
        let state = if approve { "approved" } else { "rejected" };
        sqlx::query("UPDATE executions SET state = $1, answered_by = $2, updated_at = $3 WHERE id = $4")
            .bind(state)
            .bind(by)
            .bind(ts(now))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if !approve {
            // Never carried out: its run no longer counts for cooldowns and rates.
            set_run(&mut tx, &e, Outcome::Refused, now).await?;
        }
        append(&mut tx, now, &audit_entry(&e, by, if approve { "approve" } else { "reject" }, json!({ "by": by })))
            .await?;
        tx.commit().await.map_err(unavailable)?;
        e.state = state.into();
        e.answered_by = Some(by.into());
        Ok(Ok(e))
    }

    /// Executions awaiting approval past their expiry become `expired`; returns how many.
    pub async fn expire(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        // Asked every few hundred milliseconds: take the write lock only when there is work.
        let due: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM executions WHERE state = 'awaiting_approval' AND expires_at <= $1",
        )
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        if due == 0 {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query("SELECT * FROM executions WHERE state = 'awaiting_approval' AND expires_at <= $1")
            .bind(ts(now))
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        for e in rows.iter().map(execution_of) {
            set_state(&mut tx, &e.id, "expired", None, now).await?;
            set_run(&mut tx, &e, Outcome::Refused, now).await?;
            append(&mut tx, now, &audit_entry(&e, "sparky", "expire", json!({ "expired_at": e.expires_at.map(ts) })))
                .await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(rows.len())
    }

    /// The pauses in force at `now`, with their ids.
    pub async fn active_pauses(&self, now: DateTime<Utc>) -> Result<Vec<(i64, Pause)>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        active_pauses_in(&mut conn, now).await
    }

    /// Adds a pause (audited); returns its id.
    pub async fn pause(&self, pause: &Pause, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pauses (playbook, service, namespace, breaker, reason, paused_by, created_at, until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(pause.playbook.as_deref())
        .bind(pause.service.as_deref())
        .bind(pause.namespace.as_deref())
        .bind(pause.breaker as i64)
        .bind(&pause.reason)
        .bind(pause.by.as_deref())
        .bind(ts(now))
        .bind(pause.until.map(ts))
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        append(
            &mut tx,
            now,
            &AuditEntry {
                actor: pause.by.as_deref().unwrap_or("unknown"),
                action: "pause",
                execution: None,
                playbook: pause.playbook.as_deref(),
                incident_key: None,
                record: json!({ "id": id, "scope": pause.scope(), "reason": pause.reason, "until": pause.until.map(ts) }),
            },
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(id)
    }

    /// Lifts the pauses in force that match: by `id`, or every pause whose scope is exactly
    /// `scope` (the breaker's of a playbook included); returns the lifted pauses.
    pub async fn resume(
        &self,
        id: Option<i64>,
        scope: &Pause,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, Pause)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let lifted: Vec<(i64, Pause)> = active_pauses_in(&mut tx, now)
            .await?
            .into_iter()
            .filter(|(pid, p)| match id {
                Some(want) => *pid == want,
                None => p.playbook == scope.playbook && p.service == scope.service && p.namespace == scope.namespace,
            })
            .collect();
        for (pid, p) in &lifted {
            sqlx::query("UPDATE pauses SET lifted_at = $1, lifted_by = $2 WHERE id = $3")
                .bind(ts(now))
                .bind(by)
                .bind(pid)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            append(
                &mut tx,
                now,
                &AuditEntry {
                    actor: by,
                    action: "resume",
                    execution: None,
                    playbook: p.playbook.as_deref(),
                    incident_key: None,
                    record: json!({ "id": pid, "scope": p.scope(), "breaker": p.breaker, "reason": p.reason }),
                },
            )
            .await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(lifted)
    }

    /// Escalations raised by the engine, newest first.
    pub async fn escalations(&self, limit: i64) -> Result<Vec<Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, incident_key, playbook, execution, cause, created_at, state FROM escalations ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.get::<i64, _>("id"),
                    "incident_key": r.get::<Option<String>, _>("incident_key"),
                    "playbook": r.get::<Option<String>, _>("playbook"),
                    "execution": r.get::<Option<String>, _>("execution"),
                    "cause": r.get::<String, _>("cause"),
                    "created_at": r.get::<String, _>("created_at"),
                    "state": r.get::<String, _>("state"),
                })
            })
            .collect())
    }
}
