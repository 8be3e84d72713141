//! The token notices sent (PB-003): what each owner was told, so that a notice goes out once
//! per token, expiry and threshold, across runs and restarts; and the token incidents a run
//! raises (a ticket at the last threshold, an escalation once expired) and closes.

use super::audit::{AuditEntry, append};
use super::{Destinations, Store, StoreError, outbox, ts, unavailable};
use crate::escalate::{EscalationPackage, Note};
use crate::knowledge::tokens::{Notice, NoticeKey, Raise, Settle};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::HashSet;

impl Store {
    /// Every notice sent.
    pub async fn token_notices_sent(&self) -> Result<HashSet<NoticeKey>, StoreError> {
        let rows = sqlx::query("SELECT token, expires_at, mark FROM token_notices")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(|r| NoticeKey { token: r.get(0), expires_at: r.get(1), mark: r.get(2) }).collect())
    }

    /// Records that `notice` was sent on `channel`; false when it had been already.
    pub async fn record_token_notice(
        &self,
        notice: &Notice,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO token_notices (token, expires_at, mark, owner, channel, sent_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (token, expires_at, mark) DO NOTHING",
        )
        .bind(&notice.key.token)
        .bind(&notice.key.expires_at)
        .bind(&notice.key.mark)
        .bind(notice.owner.as_deref())
        .bind(channel)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
        Ok(n == 1)
    }
}

/// A token incident a run raises: the token's fingerprint (`token/<name>`), its package (the
/// incident key, the settings it is escalated with) and how.
#[derive(Debug, Clone)]
pub struct TokenRaise {
    pub fingerprint: String,
    pub raise: Raise,
    pub package: EscalationPackage,
}

impl Store {
    /// Records what a run of `playbook` (execution `execution`) raised about tokens, in one
    /// transaction: each raised incident opens (a ticket: Jira only, no page; an escalation:
    /// every destination, paging when its package pages; an escalation of a token already
    /// ticketed adds a Jira comment), an open incident of the same token for another expiry
    /// closes first (renewed; under whichever playbook it was opened), and that playbook's
    /// open token incidents that `settle` says are over close (renewed; gone from a complete
    /// inventory). Raising the same thing twice sends nothing new. Returns the keys closed.
    pub async fn raise_token_incidents(
        &self,
        playbook: &str,
        execution: &str,
        raised: &[TokenRaise],
        settle: &Settle,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        // This playbook's open token incidents, and any other incident open for a token it
        // raises (opened under a playbook since renamed): one open incident per fingerprint.
        let mut open: Vec<(String, String)> = sqlx::query(
            "SELECT key, fingerprint FROM incidents WHERE state = 'open' AND playbook = $1 AND fingerprint LIKE 'token/%'",
        )
        .bind(playbook)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        for r in raised {
            let other: Option<String> =
                sqlx::query_scalar("SELECT key FROM incidents WHERE state = 'open' AND fingerprint = $1 AND key != $2")
                    .bind(&r.fingerprint)
                    .bind(&r.package.incident_key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            if let Some(key) = other
                && !open.iter().any(|(k, _)| *k == key)
            {
                open.push((key, r.fingerprint.clone()));
            }
        }
        let raised_keys: Vec<(String, String)> =
            raised.iter().map(|r| (r.package.incident_key.clone(), r.fingerprint.clone())).collect();
        let closing = crate::knowledge::tokens::closing(&open, &raised_keys, settle);
        let mut closed = Vec::new();
        for (key, fingerprint) in open.iter().filter(|(key, _)| closing.contains(key)) {
            let headline = format!(
                "the token's incident no longer stands: renewed, gone from the inventory, or past the playbook's thresholds no more (seen by {execution} of {playbook} at {})",
                ts(now)
            );
            super::close_incident(&mut tx, key, &headline, now).await?;
            append(
                &mut tx,
                now,
                &AuditEntry {
                    actor: "sparky",
                    action: "close",
                    execution: Some(execution),
                    playbook: Some(playbook),
                    incident_key: Some(key),
                    record: serde_json::json!({ "fingerprint": fingerprint, "why": "renewed or gone" }),
                },
            )
            .await?;
            closed.push(key.clone());
        }
        for r in raised {
            let key = r.package.incident_key.as_str();
            let package = serde_json::to_string(&r.package).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            sqlx::query(
                "INSERT INTO incidents (key, fingerprint, state, level, playbook, opened_at, updated_at, summary, package_json)
                 VALUES ($1, $2, 'open', 'L3', $3, $4, $4, $5, $6)
                 ON CONFLICT (key) DO UPDATE SET state = 'open', updated_at = $4, closed_at = NULL,
                                                events = incidents.events + 1, summary = $5, package_json = $6,
                                                opened_count = incidents.opened_count
                                                  + CASE WHEN incidents.state = 'open' THEN 0 ELSE 1 END",
            )
            .bind(key)
            .bind(&r.fingerprint)
            .bind(playbook)
            .bind(ts(now))
            .bind(&r.package.package.event.summary)
            .bind(package)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            let ticketed = outbox::opened(&mut tx, key).await?.iter().any(|d| d == "jira");
            let to = match r.raise {
                Raise::Ticket => Destinations { pagerduty: false, slack: false, ..self.destinations },
                Raise::Escalate => self.destinations,
            };
            outbox::opened_again_or_new(&mut tx, to, &r.package, true, now).await?;
            if r.raise == Raise::Escalate && ticketed {
                let note = Note {
                    incident_key: key.to_string(),
                    headline: format!("the token has expired: {}", r.package.package.event.summary),
                    lines: vec![r.package.cause.clone()],
                    attempt: None,
                };
                outbox::note(&mut tx, &note, "expired", true, now).await?;
            }
            append(
                &mut tx,
                now,
                &AuditEntry {
                    actor: "sparky",
                    action: "raise",
                    execution: Some(execution),
                    playbook: Some(playbook),
                    incident_key: Some(key),
                    record: serde_json::json!({ "fingerprint": r.fingerprint, "raise": r.raise, "priority": r.package.priority, "page": r.package.page }),
                },
            )
            .await?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(closed)
    }
}
