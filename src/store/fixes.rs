//! L2 in the store: the `github` outbox row an L2 decision writes, what carrying it out came
//! to (`fix_pulls`), people's answers from `pull_request` webhooks, and the acceptance rate
//! they add up to. Each change is written in one transaction with what it tells the
//! incident's escalation destinations (the pull request's link, a failed attempt escalated,
//! the fix merged or closed), so none is lost or doubled.

use super::outbox::{self, Destinations, OutboxRow, RemoteLink};
use super::{Store, StoreError, parse_ts, ts, unavailable};
use crate::escalate::{Attempt, Note};
use crate::fix::deliver::FixResult;
use crate::fix::feedback::{Acceptance, Answer, Feedback};
use crate::fix::order::FixOrder;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Row, SqliteConnection};

/// One L2 fix as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FixPull {
    pub incident_key: String,
    pub playbook: Option<String>,
    pub generator: String,
    pub service: Option<String>,
    pub repository: Option<String>,
    pub branch: String,
    /// `pending`, `dry_run`, `open`, `draft`, `refused`, `merged`, `closed`.
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
pub(super) async fn order(conn: &mut SqliteConnection, order: &FixOrder, now: DateTime<Utc>) -> Result<(), StoreError> {
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
async fn event_seq(conn: &mut SqliteConnection, key: &str) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT MIN(event_seq) FROM decisions WHERE incident_key = $1")
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(row.get::<Option<i64>, _>(0).unwrap_or(0))
}

/// A person's answer to one of Sparky's pull requests: the fix's state, the incident's
/// outcome (merged: `success`, closed: `failure`, what "a fix that worked before" reads),
/// and a note to wherever the incident was escalated. False when the branch is not one of a
/// fix Sparky opened.
pub(super) async fn answered(
    conn: &mut SqliteConnection,
    feedback: &Feedback,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE fix_pulls SET state = $1, answered_at = $2, answered_by = $3, number = COALESCE($4, number),
                              url = COALESCE($5, url), updated_at = $6
         WHERE incident_key = $7 AND branch = $8 AND LOWER(COALESCE(repository, '')) = LOWER($9)
           AND state IN ('open', 'draft', 'merged', 'closed') AND state <> $1",
    )
    .bind(feedback.answer.state())
    .bind(if feedback.answer == Answer::Reopened { None } else { Some(ts(now)) })
    .bind(feedback.by.as_deref())
    .bind(feedback.number.map(|n| n as i64))
    .bind(feedback.url.as_deref())
    .bind(ts(now))
    .bind(&feedback.incident_key)
    .bind(&feedback.branch)
    .bind(&feedback.repo)
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    let outcome = match feedback.answer {
        Answer::Merged => Some("success"),
        Answer::Closed => Some("failure"),
        Answer::Reopened => None,
    };
    sqlx::query("UPDATE incidents SET outcome = $1, updated_at = $2 WHERE key = $3")
        .bind(outcome)
        .bind(ts(now))
        .bind(&feedback.incident_key)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    let note = Note {
        incident_key: feedback.incident_key.clone(),
        headline: feedback.headline(),
        lines: feedback.url.iter().cloned().collect(),
        attempt: None,
    };
    let dedup = format!("pull:{}:{}", feedback.answer.state(), ts(now));
    outbox::note(conn, &note, &dedup, false, now).await?;
    Ok(true)
}

fn fix_pull_of(r: &sqlx::sqlite::SqliteRow) -> FixPull {
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
        let branch = crate::fix::pr::branch_of(&row.incident_key);
        let key = row.incident_key.as_str();
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let (number, url, tests, reason) = match result {
            FixResult::DryRun(request) => {
                outbox::delivered(&mut tx, row, "dry_run", None, Some(request), now).await?;
                (None, None, None, None)
            }
            FixResult::Answered { pull } => {
                let link = RemoteLink { remote: format!("#{}", pull.number), url: Some(pull.url.clone()) };
                outbox::delivered(&mut tx, row, "delivered", Some(&link), None, now).await?;
                (Some(pull.number as i64), Some(pull.url.clone()), None, None)
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
                    let attempt = Attempt {
                        level: "l2".into(),
                        id: branch.clone(),
                        playbook: playbook.clone(),
                        outcome: "tests failed".into(),
                        detail: json!({ "pull_request": pull.url, "number": pull.number, "commit": commit,
                                        "generator": generator, "tests": tests }),
                    };
                    let seq = event_seq(&mut tx, key).await?;
                    let how = tests.as_ref().map_or("", |t| t.outcome.as_str());
                    let cause = format!(
                        "the `{generator}` fix's tests failed on its branch ({how}): pull request #{} is a draft, not ready for review",
                        pull.number
                    );
                    outbox::later(&mut tx, to, key, &cause, attempt, seq, now).await?;
                }
                (Some(pull.number as i64), Some(pull.url.clone()), Some(tested), None)
            }
            FixResult::Refused { reason } => {
                outbox::failed(&mut tx, row.id, reason, now).await?;
                let attempt = Attempt {
                    level: "l2".into(),
                    id: branch.clone(),
                    playbook: playbook.clone(),
                    outcome: "refused".into(),
                    detail: json!({ "generator": order.as_ref().map(|o| o.fix.generator.clone()), "reason": reason }),
                };
                let seq = event_seq(&mut tx, key).await?;
                let cause = format!("the L2 fix could not be made: {reason}");
                outbox::later(&mut tx, to, key, &cause, attempt, seq, now).await?;
                (None, None, None, Some(reason.clone()))
            }
        };
        sqlx::query(
            "UPDATE fix_pulls SET state = $1, number = COALESCE($2, number), url = COALESCE($3, url),
                                  tests = COALESCE($4, tests), reason = $5, updated_at = $6
             WHERE incident_key = $7",
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
