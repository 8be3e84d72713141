//! Several Sparky replicas on one database, behaving as one. Each replica has an id (the
//! `replica` setting, by default the host name) and says every few seconds which ruleset it
//! runs (`replicas`). Inbox events are claimed for a lease before they are decided, so each is
//! decided by one replica and the events of one fingerprint are never decided by two at once;
//! a replica that dies loses its claims when the lease ends. Outbox rows are taken the same
//! way, by moving their `next_at` past the attempt. An execution being applied names its
//! replica, so that only its own replica (or any, once that one is gone) reports it
//! interrupted.

use super::{Backend, Pending, Store, StoreError, parse_ts, ts, unavailable};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

/// How long a replica may go unseen before the others take over what it held.
pub const GONE_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// A replica as the status API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Replica {
    pub id: String,
    pub ruleset: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    /// Seen within [`GONE_AFTER`].
    pub alive: bool,
}

/// The id a replica takes when none is configured: the host name (a pod's name under
/// Kubernetes), so that a restarted daemon finds its own work again.
pub fn default_replica_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sparky".to_string())
}

impl Store {
    /// Claims up to `limit` inbox events for this replica until `until`, oldest first: events
    /// nobody holds (or whose lease ended, or that this replica held), of fingerprints no
    /// other replica holds an event of. One claim at a time cluster-wide (the write lock), so
    /// two replicas never split a fingerprint between them; on PostgreSQL rows another
    /// transaction is recording are skipped, not waited for. An event that cannot be read back
    /// is parked (`unreadable`) rather than retried for ever.
    pub async fn claim_inbox(
        &self,
        limit: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Pending>, StoreError> {
        let skip = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE events SET claimed_by = $1, claim_until = $2 WHERE seq IN (
               SELECT seq FROM events e
                WHERE state = 'pending' AND (claim_until IS NULL OR claim_until < $3 OR claimed_by = $1)
                  AND NOT EXISTS (SELECT 1 FROM events o
                                   WHERE o.fingerprint = e.fingerprint AND o.state = 'pending'
                                     AND o.claimed_by <> $1 AND o.claim_until >= $3)
                ORDER BY seq LIMIT $4 {skip})
             RETURNING seq, event_json"
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&sql)
            .bind(self.replica.as_ref())
            .bind(ts(until))
            .bind(ts(now))
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        let out = super::read_pending(&mut tx, rows).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(out)
    }

    /// Extends this replica's claims on `seqs` to `until` (a long batch: analysis calls);
    /// returns how many it still held.
    pub async fn renew_inbox(&self, seqs: &[i64], until: DateTime<Utc>) -> Result<u64, StoreError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "UPDATE events SET claim_until = $1 WHERE claimed_by = $2 AND state = 'pending' AND seq IN ({})",
            super::placeholders(3, seqs.len())
        );
        let mut q = sqlx::query(&sql).bind(ts(until)).bind(self.replica.as_ref());
        for s in seqs {
            q = q.bind(*s);
        }
        q.execute(&self.pool).await.map(|r| r.rows_affected()).map_err(unavailable)
    }

    /// Gives up this replica's claims on `seqs` (a batch that must be decided again).
    pub async fn release_inbox(&self, seqs: &[i64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE events SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = $1 AND state = 'pending' AND seq IN ({})",
            super::placeholders(2, seqs.len())
        );
        let mut q = sqlx::query(&sql).bind(self.replica.as_ref());
        for s in seqs {
            q = q.bind(*s);
        }
        q.execute(&self.pool).await.map(|_| ()).map_err(unavailable)
    }

    /// The newest run's number: a batch decided on the runs it read is recorded only if no
    /// run was added meanwhile (by another replica), so cooldowns and rate windows hold
    /// across replicas.
    pub async fn runs_mark(&self) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        super::runs_mark_in(&mut conn).await
    }

    /// Says that this replica runs `ruleset` (every few seconds, and at each reload); replicas
    /// unseen for a day are forgotten.
    pub async fn heartbeat(
        &self,
        ruleset: &str,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO replicas (id, ruleset, version, started_at, seen_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET ruleset = excluded.ruleset, version = excluded.version,
               started_at = excluded.started_at, seen_at = excluded.seen_at",
        )
        .bind(self.replica.as_ref())
        .bind(ruleset)
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(ts(started_at))
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query("DELETE FROM replicas WHERE seen_at < $1")
            .bind(ts(now - chrono::Duration::days(1)))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    /// The replicas seen in the last day, this one first, then by id.
    pub async fn replicas(&self, now: DateTime<Utc>) -> Result<Vec<Replica>, StoreError> {
        let rows = sqlx::query("SELECT id, ruleset, version, started_at, seen_at FROM replicas ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut out: Vec<Replica> = rows
            .iter()
            .map(|r| {
                let seen_at = parse_ts(&r.get::<String, _>(4));
                Replica {
                    id: r.get(0),
                    ruleset: r.get(1),
                    version: r.get(2),
                    started_at: parse_ts(&r.get::<String, _>(3)),
                    seen_at,
                    alive: now - seen_at <= GONE_AFTER,
                }
            })
            .collect();
        out.sort_by_key(|r| r.id.as_str() != self.replica.as_ref());
        Ok(out)
    }

    /// This replica's id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The store, acting as replica `id`.
    pub fn with_replica(mut self, id: &str) -> Store {
        self.replica = id.into();
        self
    }
}
