//! The outbox: every message to an escalation destination (Jira, PagerDuty, Slack), written
//! in the transaction that raises it and delivered later by the delivery worker
//! (`crate::escalate::delivery`). Exactly once per incident key comes from three things: the
//! unique `(incident_key, destination, dedup)` index (a cause that repeats adds nothing),
//! delivery in order per incident and destination, and destinations that deduplicate a
//! retry themselves (the Jira issue is searched for by its incident-key label before one is
//! created; PagerDuty's `dedup_key` is the incident key).

use super::{Store, StoreError, parse_ts, ts, unavailable};
use crate::escalate::{Attempt, EscalationPackage, Note};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

/// Which destinations escalations go to (from the configuration), fixed at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Destinations {
    pub jira: bool,
    pub pagerduty: bool,
    pub slack: bool,
    /// L2 fixes are carried out (`integrations.github.enabled`).
    pub github: bool,
    /// Send PagerDuty `acknowledge` when the source acknowledges the incident.
    pub acknowledge: bool,
    /// At most one Jira comment per this many milliseconds for repeats of an escalated
    /// alert (0: none).
    pub repeat_every_ms: u64,
}

/// One message waiting for (or past) delivery.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub incident_key: String,
    /// `jira`, `pagerduty`, `slack`; `github` for an L2 fix.
    pub destination: String,
    /// `open`, `note`, `acknowledge`, `resolve`.
    pub action: String,
    pub dedup: String,
    /// An [`EscalationPackage`] for `open`, a [`Note`] otherwise; a
    /// [`crate::fix::order::FixOrder`] for `github`.
    pub body: Value,
    pub state: String,
    pub attempts: i64,
    pub next_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub remote: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a destination made of an incident: the Jira issue, the PagerDuty dedup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLink {
    pub remote: String,
    pub url: Option<String>,
}

/// Outbox rows of one destination and state, and the oldest of them.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxCount {
    pub destination: String,
    pub state: String,
    pub count: i64,
    pub oldest: DateTime<Utc>,
}

/// Inserts one outbox row (nothing when its `(incident, destination, dedup)` is there).
pub(super) async fn insert(
    conn: &mut AnyConnection,
    key: &str,
    destination: &str,
    action: &str,
    dedup: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (incident_key, destination, action, dedup, body_json, next_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $6) ON CONFLICT (incident_key, destination, dedup) DO NOTHING",
    )
    .bind(key)
    .bind(destination)
    .bind(action)
    .bind(dedup)
    .bind(body)
    .bind(ts(now))
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// The destinations an incident was escalated to (those with an `open` row). An L2 fix
/// order (destination `github`) is not an escalation: notes and resolutions never go there.
pub(super) async fn opened(conn: &mut AnyConnection, key: &str) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT DISTINCT destination FROM outbox WHERE incident_key = $1 AND action = 'open' AND destination <> 'github'",
    )
        .bind(key)
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}

/// How many times incident `key` was opened (1 until it resolves and fires again).
async fn generation(conn: &mut AnyConnection, key: &str) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT opened_count FROM incidents WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(row.map_or(1, |r| r.get(0)))
}

/// `what` for the first opening of an incident, `what:N` for its N-th.
fn per_opening(what: &str, generation: i64) -> String {
    if generation <= 1 { what.to_string() } else { format!("{what}:{generation}") }
}

/// An incident (re)opened by a decision. An incident escalated before that fires again
/// after it resolved is paged again (the same `dedup_key`: PagerDuty opens a new alert once
/// the last one resolved) and its issue gets a comment — one issue per key, a page per
/// opening. Otherwise, when the decision escalates, the incident is escalated now.
pub(super) async fn opened_again_or_new(
    conn: &mut AnyConnection,
    to: Destinations,
    package: &EscalationPackage,
    escalates: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let key = package.incident_key.as_str();
    let generation = generation(conn, key).await?;
    let before = opened(conn, key).await?;
    if generation <= 1 || before.is_empty() {
        return if escalates { open(conn, to, package, now).await } else { Ok(()) };
    }
    let reopen = per_opening("open", generation);
    if to.pagerduty && package.page {
        let body = serde_json::to_string(package).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        insert(conn, key, "pagerduty", "open", &reopen, &body, now).await?;
    }
    let note = Note {
        incident_key: key.to_string(),
        headline: format!("the alert fired again after it resolved (opening {generation})"),
        lines: vec![format!("latest: {}", package.package.event.summary.trim()), format!("at {}", ts(now))],
        attempt: None,
    };
    self::note(conn, &note, &reopen, false, now).await
}

/// Escalates an incident: the issue, the page (when the package pages) and the chat
/// message, once per incident key.
pub(super) async fn open(
    conn: &mut AnyConnection,
    to: Destinations,
    package: &EscalationPackage,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(package).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let key = package.incident_key.as_str();
    for (destination, wanted) in [("jira", to.jira), ("pagerduty", to.pagerduty && package.page), ("slack", to.slack)] {
        if wanted {
            insert(conn, key, destination, "open", "open", &body, now).await?;
        }
    }
    Ok(())
}

/// A later word on an escalated incident, to the destinations it was escalated to that
/// take notes (Jira comments; Slack unless `jira_only`). Nothing when it was not escalated.
pub(super) async fn note(
    conn: &mut AnyConnection,
    note: &Note,
    dedup: &str,
    jira_only: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(note).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    for destination in opened(conn, &note.incident_key).await? {
        if destination == "jira" || (destination == "slack" && !jira_only) {
            insert(conn, &note.incident_key, &destination, "note", dedup, &body, now).await?;
        }
    }
    Ok(())
}

/// The source resolved the incident: resolve the page, transition (or comment on) the
/// issue, tell the channel — wherever it was escalated. Once per opening.
pub(super) async fn resolve(conn: &mut AnyConnection, key: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    resolve_with(conn, key, &format!("the source reported the incident resolved at {}", ts(now)), None, now).await
}

/// [`resolve`], saying why in `headline` (a scheduled run succeeded, a token was renewed),
/// everywhere but `except` (the destination that itself reported the resolution: PagerDuty
/// needs no resolve for an incident resolved in PagerDuty).
pub(super) async fn resolve_with(
    conn: &mut AnyConnection,
    key: &str,
    headline: &str,
    except: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let note = Note { incident_key: key.to_string(), headline: headline.to_string(), lines: Vec::new(), attempt: None };
    let body = serde_json::to_string(&note).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let dedup = per_opening("resolve", generation(conn, key).await?);
    for destination in opened(conn, key).await? {
        if Some(destination.as_str()) != except {
            insert(conn, key, &destination, "resolve", &dedup, &body, now).await?;
        }
    }
    Ok(())
}

/// The source acknowledged the incident: acknowledge the page, when configured.
pub(super) async fn acknowledge(
    conn: &mut AnyConnection,
    to: Destinations,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !to.acknowledge || !opened(conn, key).await?.iter().any(|d| d == "pagerduty") {
        return Ok(());
    }
    let note = Note {
        incident_key: key.to_string(),
        headline: "acknowledged at the source".into(),
        lines: Vec::new(),
        attempt: None,
    };
    let body = serde_json::to_string(&note).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    insert(conn, key, "pagerduty", "acknowledge", "acknowledge", &body, now).await
}

/// A repeat of an escalated alert (or another run of a schedule whose incident is open):
/// one Jira comment per `repeat_every` at most.
pub(super) async fn repeat(
    conn: &mut AnyConnection,
    to: Destinations,
    key: &str,
    event: &crate::event::Event,
    events: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if to.repeat_every_ms == 0 {
        return Ok(());
    }
    let bucket = now.timestamp_millis().max(0) as u64 / to.repeat_every_ms;
    let summary = event.summary.as_str();
    let headline = if event.kind == crate::event::Kind::Schedule {
        format!("the schedule ran again while this incident is open ({events} runs so far)")
    } else if event.status == crate::event::Status::Resolved {
        format!(
            "the alert resolved again while it flaps; the incident stays open until the flapping stops ({events} events so far)"
        )
    } else {
        format!("the alert fired again ({events} events so far)")
    };
    let note = Note {
        incident_key: key.to_string(),
        headline,
        lines: vec![format!("latest: {summary}"), format!("at {}", ts(now))],
        attempt: None,
    };
    self::note(conn, &note, &format!("repeat:{bucket}"), true, now).await
}

/// An escalation raised after the decision (a refused or failed execution, a failed
/// verification, a demotion). An incident already escalated gets a note; one that was not
/// (an L1 that failed) is escalated now, with the package of the event that opened it.
pub(super) async fn later(
    conn: &mut AnyConnection,
    to: Destinations,
    key: &str,
    cause: &str,
    attempt: Attempt,
    event_seq: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let dedup = format!("{}:{}:{cause}", attempt.level, attempt.id);
    if !opened(conn, key).await?.is_empty() {
        let note = Note {
            incident_key: key.to_string(),
            headline: format!("Sparky escalated again: {cause}"),
            lines: Vec::new(),
            attempt: Some(attempt),
        };
        return self::note(conn, &note, &dedup, false, now).await;
    }
    let row = sqlx::query("SELECT package_json, state FROM incidents WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    let closed = row.as_ref().is_some_and(|r| r.get::<String, _>(1) != "open");
    let recorded = row.and_then(|r| r.get::<Option<String>, _>(0)).and_then(|text| {
        serde_json::from_str::<EscalationPackage>(&text)
            .map_err(|e| tracing::error!(incident = key, error = %e, "the recorded package cannot be read back; a bare one is sent"))
            .ok()
    });
    let mut package = match recorded {
        Some(p) => p,
        // An incident opened before packages were recorded (or one unreadable): the event
        // alone, so that the escalation still reaches people.
        None => match bare_package(conn, key, event_seq, now).await? {
            Some(p) => p,
            None => {
                tracing::error!(
                    incident = key,
                    cause,
                    "neither a package nor the event of this incident can be read; see GET /api/v1/escalations"
                );
                return Ok(());
            }
        },
    };
    package.cause = cause.to_string();
    package.attempt = Some(attempt);
    if closed {
        // The alert resolved meanwhile (after the verification window): an issue records
        // what failed, nobody is woken for a problem that is over, and the issue says so.
        package.page = false;
        open(conn, to, &package, now).await?;
        return resolve(conn, key, now).await;
    }
    open(conn, to, &package, now).await
}

/// The escalation package of inbox event `event_seq` with no knowledge but the event: its
/// priority by severity.
async fn bare_package(
    conn: &mut AnyConnection,
    key: &str,
    event_seq: i64,
    now: DateTime<Utc>,
) -> Result<Option<EscalationPackage>, StoreError> {
    let row = sqlx::query("SELECT event_json FROM events WHERE seq = $1")
        .bind(event_seq)
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    let Some(event) = row.and_then(|r| serde_json::from_str::<crate::event::Event>(&r.get::<String, _>(0)).ok()) else {
        return Ok(None);
    };
    let knowledge = crate::knowledge::Knowledge::new(std::sync::Arc::default(), now.timestamp_millis());
    let settings = crate::triage::escalation_by_severity(event.severity);
    Ok(Some(EscalationPackage {
        incident_key: key.to_string(),
        priority: settings.priority,
        jira_project: None,
        page: settings.page && event.source != "pagerduty",
        cause: String::new(),
        attempt: None,
        package: crate::analysis::package::Package::assemble(&event, &knowledge, None, None, now),
    }))
}

/// Marks `row` delivered (`delivered` or `dry_run`) and keeps what the destination made of
/// the incident.
pub(super) async fn delivered(
    conn: &mut AnyConnection,
    row: &OutboxRow,
    state: &str,
    link: Option<&RemoteLink>,
    request: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET state = $1, attempts = attempts + 1, remote = $2, request_json = $3, last_error = NULL,
                           updated_at = $4, delivered_at = $4 WHERE id = $5",
    )
    .bind(state)
    .bind(link.map(|l| l.remote.as_str()))
    .bind(request.map(Value::to_string))
    .bind(ts(now))
    .bind(row.id)
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    if let Some(l) = link {
        sqlx::query(
            "INSERT INTO escalation_links (incident_key, destination, remote, url, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (incident_key, destination) DO NOTHING",
        )
        .bind(&row.incident_key)
        .bind(&row.destination)
        .bind(&l.remote)
        .bind(l.url.as_deref())
        .bind(ts(now))
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    }
    Ok(())
}

/// Marks row `id` refused for good, with why.
pub(super) async fn failed(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(error)
    .bind(ts(now))
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

fn row_of(r: &sqlx::any::AnyRow) -> OutboxRow {
    OutboxRow {
        id: r.get("id"),
        incident_key: r.get("incident_key"),
        destination: r.get("destination"),
        action: r.get("action"),
        dedup: r.get("dedup"),
        body: serde_json::from_str(&r.get::<String, _>("body_json")).unwrap_or(Value::Null),
        state: r.get("state"),
        attempts: r.get("attempts"),
        next_at: parse_ts(&r.get::<String, _>("next_at")),
        last_error: r.get("last_error"),
        remote: r.get("remote"),
        created_at: parse_ts(&r.get::<String, _>("created_at")),
    }
}

const COLUMNS: &str =
    "id, incident_key, destination, action, dedup, body_json, state, attempts, next_at, last_error, remote, created_at";

impl Store {
    /// Messages due for delivery: pending, their time come (or held by a replica that is
    /// gone), and first in line for their incident and destination (a comment never
    /// overtakes the issue it comments on; a resolve never overtakes a page that failed and
    /// may be requeued).
    pub async fn outbox_due(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox o WHERE destination = $3 AND state = 'pending'
               AND (next_at <= $1 OR (taken_by IS NOT NULL AND taken_by NOT IN (SELECT id FROM replicas WHERE seen_at >= $4)))
               AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.incident_key = o.incident_key
                                 AND p.destination = o.destination AND p.state IN ('pending', 'failed')
                                 AND p.id < o.id)
             ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(ts(now))
            .bind(limit)
            .bind(destination)
            .bind(ts(now - super::GONE_AFTER))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows.iter().map(row_of).collect())
    }

    /// Takes `row` for one attempt, until `until`: false when another replica took it first
    /// (its `next_at` moved since it was read).
    pub async fn outbox_take(&self, row: &OutboxRow, until: DateTime<Utc>) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE outbox SET next_at = $1, taken_by = $4 WHERE id = $2 AND state = 'pending' AND next_at = $3",
        )
        .bind(ts(until))
        .bind(row.id)
        .bind(ts(row.next_at))
        .bind(self.replica())
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(unavailable)
    }

    /// At start: the rows this replica was making an attempt at when it stopped are due
    /// again now (not when their hold ends); returns how many.
    pub async fn outbox_take_up(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        sqlx::query("UPDATE outbox SET next_at = $1, taken_by = NULL WHERE taken_by = $2 AND state = 'pending'")
            .bind(ts(now))
            .bind(self.replica())
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(unavailable)
    }

    /// The service of incident `key`, when its event named one.
    pub async fn incident_service(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT service FROM incidents WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.and_then(|r| r.get(0)))
    }

    /// The outbox, newest first, optionally for one incident.
    pub async fn outbox(&self, incident: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM outbox WHERE ($1 IS NULL OR incident_key = $1) ORDER BY id DESC LIMIT $2");
        let rows = sqlx::query(&sql).bind(incident).bind(limit).fetch_all(&self.pool).await.map_err(unavailable)?;
        Ok(rows.iter().map(row_of).collect())
    }

    /// The state and attempts of `incident`'s first `action` row for `destination`.
    pub async fn outbox_state(
        &self,
        incident: &str,
        destination: &str,
        action: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT state, attempts FROM outbox WHERE incident_key = $1 AND destination = $2 AND action = $3 ORDER BY id LIMIT 1",
        )
        .bind(incident)
        .bind(destination)
        .bind(action)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Deletes delivered messages older than `before`, but the `open` rows (they keep an
    /// incident escalated once); returns how many went.
    pub async fn outbox_prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        sqlx::query(
            "DELETE FROM outbox WHERE action <> 'open' AND state IN ('delivered', 'dry_run') AND delivered_at < $1",
        )
        .bind(ts(before))
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(unavailable)
    }

    /// Counts by destination and state, with the oldest row of each.
    pub async fn outbox_counts(&self) -> Result<Vec<OutboxCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT destination, state, COUNT(*), MIN(created_at) FROM outbox GROUP BY destination, state ORDER BY destination, state",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|r| OutboxCount {
                destination: r.get(0),
                state: r.get(1),
                count: r.get(2),
                oldest: parse_ts(&r.get::<String, _>(3)),
            })
            .collect())
    }

    /// What `destination` made of `incident`.
    pub async fn escalation_link(&self, incident: &str, destination: &str) -> Result<Option<RemoteLink>, StoreError> {
        let row = sqlx::query("SELECT remote, url FROM escalation_links WHERE incident_key = $1 AND destination = $2")
            .bind(incident)
            .bind(destination)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.map(|r| RemoteLink { remote: r.get(0), url: r.get(1) }))
    }

    /// Row `id` was delivered (`state` `delivered` or `dry_run`); what the destination made of
    /// the incident is kept with it, in one transaction.
    pub async fn outbox_delivered(
        &self,
        row: &OutboxRow,
        state: &str,
        link: Option<&RemoteLink>,
        request: Option<&Value>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        delivered(&mut tx, row, state, link, request, now).await?;
        tx.commit().await.map_err(unavailable)
    }

    /// A delivery attempt of row `id` failed and will be tried again at `next_at`.
    pub async fn outbox_retry(
        &self,
        id: i64,
        error: &str,
        next_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_at = $2, updated_at = $3, taken_by = NULL
             WHERE id = $4 AND state = 'pending'",
        )
        .bind(error)
        .bind(ts(next_at))
        .bind(ts(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Row `id` waits for something else (the Jira issue its page links to) until `next_at`;
    /// not an attempt.
    pub async fn outbox_postpone(&self, id: i64, next_at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET next_at = $1, taken_by = NULL WHERE id = $2 AND state = 'pending'")
            .bind(ts(next_at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The destination refused row `id` for good (a request it will never take).
    pub async fn outbox_failed(&self, id: i64, error: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        failed(&mut conn, id, error, now).await
    }

    /// Puts failed row `id` back in line (after the configuration was fixed), its attempts
    /// counted afresh (an L2 fix gets its `max_attempts` again); returns whether it was
    /// failed.
    pub async fn outbox_requeue(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_at = $1, updated_at = $1, taken_by = NULL WHERE id = $2 AND state = 'failed'",
        )
        .bind(ts(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
        Ok(n == 1)
    }
}

impl OutboxRow {
    /// The row as the API shows it (its body summarized, not repeated).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "incident_key": self.incident_key,
            "destination": self.destination,
            "action": self.action,
            "dedup": self.dedup,
            "state": self.state,
            "attempts": self.attempts,
            "next_at": ts(self.next_at),
            "last_error": self.last_error,
            "remote": self.remote,
            "created_at": ts(self.created_at),
            "cause": self.body.get("cause").or_else(|| self.body.get("headline")),
        })
    }
}
