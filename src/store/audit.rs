//! The audit log: who did what to production, and why. Append-only and hash-chained: each
//! record's hash covers the previous record's hash and its own fields, and the chain's head
//! is kept apart, so `sparky audit verify` finds any record altered, inserted, reordered or
//! removed (the newest included). Records hold plans and figures, never secrets: plans name
//! secrets as `${secret:NAME}` and resolve them only inside `apply()`.

use super::{Store, StoreError, parse_ts, ts, unavailable};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record to append.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// `sparky` for the engine; a person's name for approvals and pauses.
    pub actor: &'a str,
    /// `decide`, `claim`, `refuse`, `skip`, `result`, `verify`, `escalate`, `approve`,
    /// `reject`, `expire`, `pause`, `resume`, `demote`, `interrupted`.
    pub action: &'a str,
    pub execution: Option<&'a str>,
    pub playbook: Option<&'a str>,
    pub incident_key: Option<&'a str>,
    pub record: Value,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_key: Option<String>,
    pub record: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// What `sparky audit verify` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainReport {
    pub records: i64,
    /// The newest record's hash: write it down somewhere else to anchor the chain.
    pub head: String,
    /// Every break found, one sentence each; empty when the chain is whole.
    pub problems: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
fn hash(
    prev: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    execution: Option<&str>,
    playbook: Option<&str>,
    incident_key: Option<&str>,
    record_json: &str,
) -> String {
    // A JSON array: unambiguous field boundaries whatever the fields hold.
    let canonical = serde_json::json!([prev, seq, at, actor, action, execution, playbook, incident_key, record_json]);
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends `entry` at `at` inside the caller's transaction; returns its sequence number.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    at: DateTime<Utc>,
    entry: &AuditEntry<'_>,
) -> Result<i64, StoreError> {
    // The head row is locked until the caller's transaction ends (a no-op update that
    // returns it), so two transactions never append the same sequence number.
    let head = sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    let (prev_seq, prev) = match head {
        Some(r) => (r.get::<i64, _>(0), r.get::<String, _>(1)),
        None => (0, GENESIS.to_string()),
    };
    let seq = prev_seq + 1;
    let at = ts(at);
    let json = entry.record.to_string();
    let h =
        hash(&prev, seq, &at, entry.actor, entry.action, entry.execution, entry.playbook, entry.incident_key, &json);
    sqlx::query(
        "INSERT INTO audit (seq, at, actor, action, execution, playbook, incident_key, record_json, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(&at)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.execution)
    .bind(entry.playbook)
    .bind(entry.incident_key)
    .bind(&json)
    .bind(&prev)
    .bind(&h)
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(seq)
    .bind(&h)
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(seq)
}

fn record_of(r: &sqlx::any::AnyRow) -> AuditRecord {
    AuditRecord {
        seq: r.get("seq"),
        at: parse_ts(&r.get::<String, _>("at")),
        actor: r.get("actor"),
        action: r.get("action"),
        execution: r.get("execution"),
        playbook: r.get("playbook"),
        incident_key: r.get("incident_key"),
        record: serde_json::from_str(&r.get::<String, _>("record_json")).unwrap_or(Value::Null),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}

impl Store {
    /// Appends one record in its own transaction (pauses and approvals from the CLI).
    pub async fn audit_append(&self, at: DateTime<Utc>, entry: &AuditEntry<'_>) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let seq = append(&mut tx, at, entry).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(seq)
    }

    /// Records at or after `since`, of `playbook` when given, oldest first, at most `limit`
    /// (the newest ones when there are more).
    pub async fn audit(
        &self,
        since: Option<DateTime<Utc>>,
        playbook: Option<&str>,
        execution: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (
               SELECT * FROM audit
               WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR playbook = $2) AND ($3 IS NULL OR execution = $3)
               ORDER BY seq DESC LIMIT $4
             ) AS newest ORDER BY seq",
        )
        .bind(since.map(ts))
        .bind(playbook)
        .bind(execution)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows.iter().map(record_of).collect())
    }

    /// Walks the whole chain and reports every break.
    pub async fn audit_verify(&self) -> Result<ChainReport, StoreError> {
        // One read transaction: the records and the head from the same snapshot, so that an
        // append committed in between is not taken for a removal.
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if self.backend() == super::Backend::Postgres {
            // Else each statement would read its own snapshot.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, execution, playbook, incident_key, record_json, prev_hash, hash
             FROM audit ORDER BY seq",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1)));
        tx.rollback().await.map_err(unavailable)?;
        let mut problems = Vec::new();
        let (mut expected_seq, mut prev) = (1i64, GENESIS.to_string());
        for r in &rows {
            let seq: i64 = r.get("seq");
            if seq != expected_seq {
                problems.push(if seq > expected_seq {
                    format!("records {expected_seq} to {} are missing: removed from the log", seq - 1)
                } else {
                    format!("record {seq} appears out of order")
                });
            }
            let stored_prev: String = r.get("prev_hash");
            if stored_prev != prev {
                problems.push(format!(
                    "record {seq} does not follow the record before it (its previous hash differs): a record before it was altered, inserted or removed"
                ));
            }
            let computed = hash(
                &stored_prev,
                seq,
                &r.get::<String, _>("at"),
                &r.get::<String, _>("actor"),
                &r.get::<String, _>("action"),
                r.get::<Option<String>, _>("execution").as_deref(),
                r.get::<Option<String>, _>("playbook").as_deref(),
                r.get::<Option<String>, _>("incident_key").as_deref(),
                &r.get::<String, _>("record_json"),
            );
            let stored: String = r.get("hash");
            if computed != stored {
                problems.push(format!("record {seq} was altered: its content does not match its hash"));
            }
            expected_seq = seq + 1;
            prev = stored;
        }
        match (&head, rows.last()) {
            (Some((hs, hh)), Some(last)) => {
                let last_seq: i64 = last.get("seq");
                if *hs != last_seq || *hh != prev {
                    problems.push(format!(
                        "the chain ends at record {last_seq}, but its head says {hs}: the newest records were removed or the head altered"
                    ));
                }
            }
            (Some((0, _)), None) => {}
            (Some((hs, _)), None) => problems
                .push(format!("the log is empty, but its head says {hs} records were written: they were removed")),
            (None, _) => problems.push(
                "the log has no head (every store starts with one): the head was removed, and the log with it if it is empty"
                    .into(),
            ),
        }
        Ok(ChainReport { records: rows.len() as i64, head: prev, problems })
    }
}
