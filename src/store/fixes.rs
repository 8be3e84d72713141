//! L2 in the store: the `github` outbox row an L2 decision writes, what carrying it out came
//! to (`fix_pulls`), people's answers from `pull_request` webhooks, and the acceptance rate
//! they add up to. Each change is written in one transaction with what it tells the
//! incident's escalation destinations (the pull request's link, a failed attempt escalated,
//! the fix merged or closed), so none is lost or doubled.

use super::outbox::{self, Destinations, OutboxRow, RemoteLink};
use super::{Store, StoreError, parse_ts, ts, unavailable};
use crate::escalate::{Attempt, Note};
use crate::fix::deliver::FixResult;
use crate::fix::feedback::{Acceptance, Feedback};
use crate::fix::order::FixOrder;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

/// One L2 fix as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FixPull {
    pub incident_key: String,
    pub playbook: Option<String>,
    pub generator: String,
    pub service: Option<String>,
    pub repository: Option<String>,
    pub branch: String,
    /// `pending`, `dry_run`, `open`, `draft`, `refused`, `failed`, `merged`, `closed`.
    pub state: String,
    pub number: Option<i64>,
    pub url: Option<String>,
    /// `passed`, `failed (exit 1)`, `not run`.
    pub tests: Option<String>,
    pub reason: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answered_by: Option<String>,
}

impl FixPull {
    pub fn to_json(&self) -> Value {
        json!({
            "incident_key": self.incident_key,
            "playbook": self.playbook,
            "generator": self.generator,
            "service": self.service,
            "repository": self.repository,
            "branch": self.branch,
            "state": self.state,
            "number": self.number,
            "url": self.url,
            "tests": self.tests,
            "reason": self.reason,
            "opened_at": ts(self.opened_at),
            "answered_at": self.answered_at.map(ts),
            "answered_by": self.answered_by,
        })
    }
}

/// The order of an L2 decision: its `github` outbox row and its `fix_pulls` row, once per
/// incident key.
pub(super) async fn order(conn: &mut AnyConnection, order: &FixOrder, now: DateTime<Utc>) -> Result<(), StoreError> {
    let body = serde_json::to_string(order).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let key = order.incident_key.as_str();
    outbox::insert(conn, key, "github", "open", "open", &body, now).await?;
    sqlx::query(
        "INSERT INTO fix_pulls (incident_key, playbook, generator, service, repository, branch, state, opened_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) ON CONFLICT (incident_key) DO NOTHING",
    )
    .bind(key)
    .bind(order.playbook.as_deref())
    .bind(&order.fix.generator)
    .bind(order.service.as_deref())
    .bind(order.repo.as_deref())
    .bind(order.branch())
    .bind(ts(now))
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// The first inbox event of incident `key` (what an escalation without a recorded package
/// falls back on).
async fn event_seq(conn: &mut AnyConnection, key: &str) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT MIN(event_seq) FROM decisions WHERE incident_key = $1")
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(row.get::<Option<i64>, _>(0).unwrap_or(0))
}

/// What a person answered on a pull request: the fix's new state (`merged`, `closed`, or
/// back to `open`/`draft` when reopened), who, the pull request, and the note's headline.
struct Reply<'a> {
    state: &'a str,
    by: Option<&'a str>,
    number: Option<i64>,
    url: Option<&'a str>,
    headline: String,
}

/// The states a person's answer can move a fix out of: still being carried out (the
/// answer arrives while a retry waits), open for review, a draft, closed (reopened), or
/// failed after its pull request was opened. A merge is final.
const ANSWERABLE: &str = "('pending', 'open', 'draft', 'closed', 'failed')";

/// A person's answer to the pull request of incident `key`'s fix (from a webhook or seen
/// by a retry): the fix's state, the incident's outcome (merged: `success`, closed:
/// `failure`, what "a fix that worked before" reads), and a note to wherever the incident
/// was escalated. `matching` narrows it to the branch, repository and number of a
/// webhook. False when no fix moved (not one of Sparky's, already in that state, merged).
async fn answer(
    conn: &mut AnyConnection,
    key: &str,
    matching: Option<&Feedback>,
    reply: Reply<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Reply { state, by, number, url, headline } = reply;
    let answered = matches!(state, "merged" | "closed");
    let n = sqlx::query(&format!(
        "UPDATE fix_pulls SET state = $1, answered_at = $2, answered_by = $3, number = COALESCE($4, number),
                              url = COALESCE($5, url), updated_at = $6
         WHERE incident_key = $7 AND state IN {ANSWERABLE} AND state <> $1
           AND ($8 IS NULL OR (branch = $8 AND LOWER(COALESCE(repository, '')) = LOWER($9)
                               AND (number IS NULL OR $4 IS NULL OR number = $4)))"
    ))
    .bind(state)
    .bind(answered.then(|| ts(now)))
    .bind(by)
    .bind(number)
    .bind(url)
    .bind(ts(now))
    .bind(key)
    .bind(matching.map(|f| f.branch.as_str()))
    .bind(matching.map(|f| f.repo.as_str()))
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    let outcome = match state {
        "merged" => Some("success"),
        "closed" => Some("failure"),
        _ => None,
    };
    sqlx::query("UPDATE incidents SET outcome = $1, updated_at = $2 WHERE key = $3")
        .bind(outcome)
        .bind(ts(now))
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    let note = Note {
        incident_key: key.to_string(),
        headline,
        lines: url.iter().map(|u| u.to_string()).collect(),
        attempt: None,
    };
    outbox::note(conn, &note, &format!("pull:{state}:{}", ts(now)), false, now).await?;
    Ok(true)
}

/// A `pull_request` webhook's answer to one of Sparky's pull requests ([`answer`]): it
/// must name the fix's branch, repository and (once known) number. False when it is not
/// one of Sparky's fixes or changes nothing.
pub(super) async fn answered(
    conn: &mut AnyConnection,
    feedback: &Feedback,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    answer(
        conn,
        &feedback.incident_key,
        Some(feedback),
        Reply {
            state: feedback.state(),
            by: feedback.by.as_deref(),
            number: feedback.number.map(|n| n as i64),
            url: feedback.url.as_deref(),
            headline: feedback.headline(),
        },
        now,
    )
    .await
}

/// What the fix's escalation says when it failed or was refused: the incident is
/// escalated (or its escalation noted) with the attempt.
async fn escalate_attempt(
    conn: &mut AnyConnection,
    to: Destinations,
    key: &str,
    cause: &str,
    attempt: Attempt,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let seq = event_seq(conn, key).await?;
    outbox::later(conn, to, key, cause, attempt, seq, now).await
}

/// The L2 attempt of incident `key`'s fix, as its escalation carries it.
fn l2_attempt(key: &str, playbook: &str, outcome: &str, detail: Value) -> Attempt {
    Attempt {
        level: "l2".into(),
        id: crate::fix::pr::branch_of(key),
        playbook: playbook.to_string(),
        outcome: outcome.into(),
        detail,
    }
}

fn fix_pull_of(r: &sqlx::any::AnyRow) -> FixPull {
    FixPull {
        incident_key: r.get("incident_key"),
        playbook: r.get("playbook"),
        generator: r.get("generator"),
        service: r.get("service"),
        repository: r.get("repository"),
        branch: r.get("branch"),
        state: r.get("state"),
        number: r.get("number"),
        url: r.get("url"),
        tests: r.get("tests"),
        reason: r.get("reason"),
        opened_at: parse_ts(&r.get::<String, _>("opened_at")),
        answered_at: r.get::<Option<String>, _>("answered_at").map(|t| parse_ts(&t)),
        answered_by: r.get("answered_by"),
    }
}

impl Store {
    /// What carrying out `row` (a `github` order) came to, recorded in one transaction with
    /// what it tells the incident: the pull request's link (a note where the incident was
    /// escalated), or — tests failed, or the generator refused — an escalation with the
    /// attempt. A refused row is `failed` (it can be retried by hand once the cause is
    /// fixed, e.g. the catalog names the repository).
    pub async fn fix_attempted(
        &self,
        row: &OutboxRow,
        result: &FixResult,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let to: Destinations = self.destinations;
        let order: Option<FixOrder> = serde_json::from_value(row.body.clone()).ok();
        let playbook = order.as_ref().and_then(|o| o.playbook.clone()).unwrap_or_else(|| "-".into());
        let key = row.incident_key.as_str();
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let (number, url, tests, reason) = match result {
            FixResult::DryRun(request) => {
                outbox::delivered(&mut tx, row, "dry_run", None, Some(request), now).await?;
                (None, None, None, None)
            }
            FixResult::Answered { pull } => {
                // Answered before Sparky saw it (the webhook missed, or arrived while a retry
                // waited): recorded as the webhook would have.
                let link = RemoteLink { remote: format!("#{}", pull.number), url: Some(pull.url.clone()) };
                outbox::delivered(&mut tx, row, "delivered", Some(&link), None, now).await?;
                let state = result.state();
                let what = if pull.merged {
                    "was merged: the fix was accepted"
                } else {
                    "was closed without merging: the fix was not accepted"
                };
                let headline = format!("pull request #{} {what}", pull.number);
                let reply = Reply { state, by: None, number: Some(pull.number as i64), url: Some(&pull.url), headline };
                answer(&mut tx, key, None, reply, now).await?;
                return tx.commit().await.map_err(unavailable);
            }
            FixResult::Opened { pull, ready, tests, generator, commit, notes, .. } => {
                let link = RemoteLink { remote: format!("#{}", pull.number), url: Some(pull.url.clone()) };
                outbox::delivered(&mut tx, row, "delivered", Some(&link), None, now).await?;
                let tested = match tests {
                    Some(t) if t.passed => "passed".to_string(),
                    Some(t) => format!("failed ({})", t.outcome),
                    None => "not run".to_string(),
                };
                if *ready {
                    let mut lines = vec![pull.url.clone(), format!("the repository's tests on the branch: {tested}")];
                    lines.extend(notes.iter().cloned());
                    let note = Note {
                        incident_key: key.to_string(),
                        headline: format!(
                            "Sparky opened pull request #{} with a `{generator}` fix for review",
                            pull.number
                        ),
                        lines,
                        attempt: None,
                    };
                    outbox::note(&mut tx, &note, "pull:opened", false, now).await?;
                } else {
                    let detail = json!({ "pull_request": pull.url, "number": pull.number, "commit": commit,
                                         "generator": generator, "tests": tests });
                    let how = tests.as_ref().map_or("", |t| t.outcome.as_str());
                    let cause = format!(
                        "the `{generator}` fix's tests failed on its branch ({how}): pull request #{} is a draft, not ready for review",
                        pull.number
                    );
                    let attempt = l2_attempt(key, &playbook, "tests failed", detail);
                    escalate_attempt(&mut tx, to, key, &cause, attempt, now).await?;
                }
                (Some(pull.number as i64), Some(pull.url.clone()), Some(tested), None)
            }
            FixResult::Refused { reason } | FixResult::Failed { reason } => {
                outbox::failed(&mut tx, row.id, reason, now).await?;
                let generator = order.as_ref().map(|o| o.fix.generator.clone());
                let (outcome, cause) = match result {
                    FixResult::Refused { .. } => ("refused", format!("the L2 fix could not be made: {reason}")),
                    _ => ("failed", format!("Sparky could not open the L2 fix's pull request: {reason}")),
                };
                let detail = json!({ "generator": generator, "reason": reason });
                let attempt = l2_attempt(key, &playbook, outcome, detail);
                escalate_attempt(&mut tx, to, key, &cause, attempt, now).await?;
                (None, None, None, Some(reason.clone()))
            }
        };
        sqlx::query(
            "UPDATE fix_pulls SET state = $1, number = COALESCE($2, number), url = COALESCE($3, url),
                                  tests = COALESCE($4, tests), reason = $5, updated_at = $6
             WHERE incident_key = $7 AND state NOT IN ('merged', 'closed')",
        )
        .bind(result.state())
        .bind(number)
        .bind(url)
        .bind(tests)
        .bind(reason)
        .bind(ts(now))
        .bind(key)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    /// The fix of incident `key`, when Sparky worked on one.
    pub async fn fix_pull(&self, key: &str) -> Result<Option<FixPull>, StoreError> {
        let row = sqlx::query("SELECT * FROM fix_pulls WHERE incident_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.as_ref().map(fix_pull_of))
    }

    /// L2 fixes, newest first.
    pub async fn fix_pulls(&self, limit: i64) -> Result<Vec<FixPull>, StoreError> {
        let rows = sqlx::query("SELECT * FROM fix_pulls ORDER BY opened_at DESC, incident_key LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows.iter().map(fix_pull_of).collect())
    }

    /// Every fix by generator, playbook and state: the acceptance rates.
    pub async fn fix_acceptance(&self) -> Result<Acceptance, StoreError> {
        let rows = sqlx::query(
            "SELECT generator, playbook, state, COUNT(*) FROM fix_pulls GROUP BY generator, playbook, state",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut a = Acceptance::default();
        for r in rows {
            let playbook: Option<String> = r.get(1);
            a.add(
                &r.get::<String, _>(0),
                playbook.as_deref(),
                &r.get::<String, _>(2),
                r.get::<i64, _>(3).max(0) as u64,
            );
        }
        Ok(a)
    }
}
