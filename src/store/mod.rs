//! The store: the durable inbox, decisions, incidents. One interface on two backends: SQLite
//! (WAL), the embedded default, and PostgreSQL, shared by several replicas (`replicas.rs`).
//! The schema lives in versioned migrations (`migrations/sqlite/`, `migrations/postgres/`, the
//! same versions) applied at start or by `sparky migrate`; queries are written once, in SQL
//! both run, through sqlx's `Any` driver.
//!
//! Durability is the point: `accept` commits a delivery's events before the daemon answers
//! 202, and `record` moves an event out of the inbox in the same transaction that writes its
//! decision and the incident change, so after a crash every acknowledged event is decided
//! exactly once.

mod audit;
mod engine;
mod fixes;
mod outbox;
mod replicas;
mod schedules;
mod tokens;

pub use audit::{AuditEntry, AuditRecord, ChainReport};
pub use engine::{Check, Claim, Demotion, Execution, Limits, NewExecution, Rate, Verified, Verify};
pub use fixes::FixPull;
pub use outbox::{Destinations, OutboxCount, OutboxRow, RemoteLink};
pub use replicas::{GONE_AFTER, Replica, default_replica_id};
pub use schedules::ScheduleState;
pub use tokens::TokenRaise;

use crate::event::Event;
use crate::knowledge::{Deploy, DeployState, PastIncident};
use crate::triage::lifecycle::{Track, echo_key};
use crate::triage::{Decision, IncidentEffect, Level, OpenIncident, Outcome, Run};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool};
use sqlx::{Executor, Row};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database the store is on. Queries are written once, in SQL both run; the backend
/// decides the migrations, the connection set-up and the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file (WAL), the embedded default: one Sparky.
    Sqlite,
    /// A PostgreSQL server: one Sparky or several replicas.
    Postgres,
}

impl Backend {
    /// The backend `url` names: `postgres://` or `postgresql://`, else SQLite (`sqlite:` or
    /// a plain file path).
    pub fn of(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    fn migrations(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// Why the store could not do what was asked. Messages are for operators.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be opened (bad URL, unreadable file, newer schema).
    Open(String),
    /// A read or write failed: the store is down, the disk is full, the file is locked.
    Unavailable(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open(m) => write!(f, "cannot open the store: {m}"),
            StoreError::Unavailable(m) => write!(f, "the store is unavailable: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Times are stored as RFC 3339 text with milliseconds and `Z`, so text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

/// What `accept` did with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The same delivery was accepted before (its key, and its body when it has a hash):
    /// nothing was added.
    pub duplicate: bool,
    /// Inbox positions of the events added.
    pub seqs: Vec<i64>,
    /// The key the delivery is stored under: its own, or `<key>#<body hash prefix>` when its
    /// key had been taken by another body.
    pub key: String,
    /// Its key had been taken by another body (the sender reused a delivery id): it was
    /// accepted as a delivery of its own.
    pub key_reused: bool,
}

/// An event waiting in the inbox.
#[derive(Debug, Clone)]
pub struct Pending {
    pub seq: i64,
    pub event: Event,
}

/// A decision as stored.
#[derive(Debug, Clone)]
pub struct StoredDecision {
    pub seq: i64,
    pub event_seq: i64,
    pub event_id: String,
    pub level: String,
    pub playbook: Option<String>,
    pub incident_key: Option<String>,
    pub ruleset: String,
    pub decided_at: DateTime<Utc>,
    /// The decision with its trace, as `sparky explain --format json` shows it.
    pub decision: Value,
}

/// A track as stored: its fingerprint, the track, and its stored text.
#[derive(Debug, Clone)]
pub struct StoredTrack {
    pub fingerprint: String,
    pub track: Track,
    pub text: String,
}

/// What the passing of time did to a flapping fingerprint, for [`Store::settle`]: its
/// effects, the resolution note of the incident it closes, and the track's stored text as it
/// was read.
#[derive(Debug, Clone)]
pub struct Settled {
    pub effects: crate::triage::lifecycle::Effects,
    pub headline: String,
    pub was: String,
}

/// One webhook delivery to commit: its source, its idempotency key and its events.
pub struct Delivery<'a> {
    pub source: &'a str,
    pub key: &'a str,
    /// The SHA-256 of the body (hex). With it, only the same body under `key` is a
    /// duplicate; without it (deliveries Sparky makes itself, such as schedule slots), any
    /// delivery under `key` is.
    pub body_hash: Option<&'a str>,
    pub events: &'a [Event],
    pub received_at: DateTime<Utc>,
}

/// Hex digits of the body hash that set apart a body under a reused key: 64 bits, so two
/// bodies under one key do not meet by chance.
const REUSED_KEY_HASH: usize = 16;

/// One decision to record: the inbox event, the decision, and its JSON (with the trace),
/// with what it teaches the knowledge graph.
pub struct Record<'a> {
    pub seq: i64,
    pub event: &'a Event,
    pub decision: &'a Decision,
    pub json: String,
    /// The deploy the event tells of, when it is a deploy.
    pub deploy: Option<Deploy>,
    /// The L1 run the decision starts (applied or planned).
    pub run: Option<Run>,
    /// The execution the engine carries out (or holds for approval) for an L1 decision.
    pub execution: Option<NewExecution>,
    /// For a decision that opens an incident: its escalation package, kept with the incident
    /// and sent to the destinations when the decision escalates (or the engine later does).
    pub package: Option<crate::escalate::EscalationPackage>,
    /// For an L2 decision that opens an incident: the order that carries its fix out (the
    /// `github` outbox row), when GitHub is configured.
    pub fix: Option<crate::fix::order::FixOrder>,
    /// A person's answer to one of Sparky's pull requests, which the event tells of.
    pub feedback: Option<crate::fix::feedback::Feedback>,
    /// What is now remembered of the fingerprint the event moved (`triage::lifecycle`).
    pub track: Option<(String, Track)>,
    /// The incident whose verified L1 run the event undid (a re-fire inside the window).
    pub refired: Option<String>,
}

/// Claims `key` for a delivery in `tx`; false when it was taken.
async fn claim_key(tx: &mut AnyConnection, d: &Delivery<'_>, key: &str) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO deliveries (source, delivery_key, received_at, events, body_hash) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (source, delivery_key) DO NOTHING",
    )
    .bind(d.source)
    .bind(key)
    .bind(ts(d.received_at))
    .bind(d.events.len() as i64)
    .bind(d.body_hash)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?
    .rows_affected();
    Ok(inserted > 0)
}

/// Adds a delivery and its events to the inbox in `tx`, unless the same delivery was seen
/// before: its key with the same body, or (without a body hash) its key.
async fn insert_delivery(tx: &mut AnyConnection, d: &Delivery<'_>) -> Result<Accepted, StoreError> {
    let duplicate = |key: &str| Accepted { duplicate: true, seqs: Vec::new(), key: key.to_string(), key_reused: false };
    let mut key_reused = false;
    let mut key = d.key.to_string();
    if !claim_key(tx, d, &key).await? {
        let Some(hash) = d.body_hash else { return Ok(duplicate(&key)) };
        let stored: Option<String> =
            sqlx::query_scalar("SELECT body_hash FROM deliveries WHERE source = $1 AND delivery_key = $2")
                .bind(d.source)
                .bind(&key)
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?;
        // A row from before body hashes were kept cannot be compared: it keeps the answer
        // it had then.
        if stored.as_deref().is_none_or(|s| s == hash) {
            // A key made of the body alone says "the same content", not "the same delivery":
            // the same body after another event of its fingerprints (firing, resolved, firing
            // again, from a sender whose payloads carry no times) is the next occurrence.
            match next_occurrence(tx, d, &key).await? {
                None => return Ok(duplicate(&key)),
                Some(after) => {
                    key = format!("{}@{after}", d.key);
                    if !claim_key(tx, d, &key).await? {
                        return Ok(duplicate(&key));
                    }
                    return insert_events(tx, d, key, false).await;
                }
            }
        }
        // Another body under a taken key is another delivery; its own retries find it here.
        key = format!("{}#{}", d.key, &hash[..REUSED_KEY_HASH.min(hash.len())]);
        if !claim_key(tx, d, &key).await? {
            return Ok(duplicate(&key));
        }
        key_reused = true;
    }
    insert_events(tx, d, key, key_reused).await
}

/// For a delivery whose key is its body's hash and whose body was seen under `key` before:
/// `None` when nothing else of its fingerprints came since (a retry, or a storm of identical
/// notifications: a duplicate); otherwise the inbox position of the latest event of its
/// fingerprints from another body, which names this occurrence (its own retries find it).
async fn next_occurrence(tx: &mut AnyConnection, d: &Delivery<'_>, key: &str) -> Result<Option<i64>, StoreError> {
    if !key.starts_with("sha256:") || d.events.is_empty() {
        return Ok(None);
    }
    let first: i64 =
        sqlx::query_scalar("SELECT COALESCE(MIN(seq), 0) FROM events WHERE source = $1 AND delivery_key = $2")
            .bind(d.source)
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
    let mut fingerprints: Vec<&str> = d.events.iter().map(|e| e.fingerprint.as_str()).collect();
    fingerprints.sort_unstable();
    fingerprints.dedup();
    let sql = format!(
        "SELECT COALESCE(MAX(seq), 0) FROM events
         WHERE fingerprint IN ({}) AND source = $1 AND delivery_key != $2 AND delivery_key NOT LIKE $3",
        placeholders(4, fingerprints.len())
    );
    let mut q = sqlx::query_scalar(&sql).bind(d.source).bind(key).bind(format!("{key}@%"));
    for f in &fingerprints {
        q = q.bind(*f);
    }
    let other: i64 = q.fetch_one(&mut *tx).await.map_err(unavailable)?;
    Ok((other > first).then_some(other))
}

/// Adds the events of `d`, accepted under `key`, to the inbox.
async fn insert_events(
    tx: &mut AnyConnection,
    d: &Delivery<'_>,
    key: String,
    key_reused: bool,
) -> Result<Accepted, StoreError> {
    let mut seqs = Vec::with_capacity(d.events.len());
    for e in d.events {
        let json = serde_json::to_string(e).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let row = sqlx::query(
            "INSERT INTO events (id, source, kind, status, fingerprint, service, severity, summary,
                                 occurred_at, received_at, delivery_key, event_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING seq",
        )
        .bind(&e.id)
        .bind(&e.source)
        .bind(e.kind.as_str())
        .bind(e.status.as_str())
        .bind(&e.fingerprint)
        .bind(e.service.as_deref())
        .bind(e.severity.as_str())
        .bind(&e.summary)
        .bind(ts(e.occurred_at))
        .bind(ts(e.received_at))
        .bind(&key)
        .bind(json)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        seqs.push(row.get::<i64, _>(0));
    }
    Ok(Accepted { duplicate: false, seqs, key, key_reused })
}

/// Inbox rows (`seq`, `event_json`) read back as events, in order. An event that cannot be
/// read was written by this code, so a schema change went wrong: the row is parked
/// (`unreadable`) rather than retried for ever.
async fn read_pending(conn: &mut AnyConnection, rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<Pending>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let seq: i64 = r.get(0);
        let text: String = r.get(1);
        match serde_json::from_str::<Event>(&text) {
            Ok(event) => out.push(Pending { seq, event }),
            Err(e) => {
                tracing::error!(seq, error = %e, "an inbox event cannot be read back; it is marked `unreadable`");
                sqlx::query("UPDATE events SET state = 'unreadable' WHERE seq = $1")
                    .bind(seq)
                    .execute(&mut *conn)
                    .await
                    .map_err(unavailable)?;
            }
        }
    }
    out.sort_by_key(|p| p.seq);
    Ok(out)
}

/// The newest L1 run's number (see [`Store::runs_mark`]).
async fn runs_mark_in(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM runs")
        .fetch_one(&mut *conn)
        .await
        .map(|r| r.get::<i64, _>(0))
        .map_err(unavailable)
}

/// An open incident from a row of `key, fingerprint, opened_at, level, playbook`.
fn open_incident_of(r: &sqlx::any::AnyRow) -> OpenIncident {
    OpenIncident {
        key: r.get(0),
        fingerprint: r.get(1),
        opened_at: parse_ts(&r.get::<String, _>(2)),
        level: r.get(3),
        playbook: r.get(4),
    }
}

/// A stored track read back; one that cannot be read (written by another version) starts
/// afresh rather than stopping the batch.
fn track_of(fingerprint: String, json: &str) -> Option<(String, Track)> {
    match serde_json::from_str::<Track>(json) {
        Ok(t) => Some((fingerprint, t)),
        Err(e) => {
            tracing::warn!(%fingerprint, error = %e, "the stored track of this fingerprint cannot be read; it starts afresh");
            None
        }
    }
}

/// Closes incident `key` when it is open, and tells wherever it was escalated why
/// (`headline`): for closes no event of the source makes (a scheduled run succeeded, a token
/// renewed, a flapping alert that went quiet). Whether it was open.
pub(crate) async fn close_incident(
    conn: &mut AnyConnection,
    key: &str,
    headline: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let closed = sqlx::query(
        "UPDATE incidents SET state = 'closed', updated_at = $1, closed_at = $1 WHERE key = $2 AND state = 'open'",
    )
    .bind(ts(now))
    .bind(key)
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    if closed.rows_affected() == 0 {
        return Ok(false);
    }
    outbox::resolve_with(conn, key, headline, None, now).await?;
    Ok(true)
}

/// Writes what is remembered of `fingerprint`.
async fn save_track(
    conn: &mut AnyConnection,
    fingerprint: &str,
    track: &Track,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(track).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    sqlx::query(
        "INSERT INTO fingerprint_tracks (fingerprint, track_json, flapping, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (fingerprint) DO UPDATE SET track_json = excluded.track_json, flapping = excluded.flapping,
                                                updated_at = excluded.updated_at",
    )
    .bind(fingerprint)
    .bind(json)
    .bind(i64::from(track.is_flapping()))
    .bind(ts(now))
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// `$from, $from+1, ...`: `n` numbered placeholders.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    /// Which replica this process is (see [`Store::with_replica`]).
    replica: std::sync::Arc<str>,
    /// Where escalations are written to the outbox for (none until the daemon says).
    destinations: Destinations,
    /// Failed verifications in a row that demote a playbook (see [`Store::with_breaker`]).
    breaker: u64,
}

impl Store {
    /// Opens the store at `url` (`sqlite://FILE`, `sqlite::memory:`, a plain file path, or
    /// `postgres://USER@HOST:PORT/DB`), creating a SQLite file when missing, and applies the
    /// migrations the database lacks.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the store at `url` without touching its schema (see [`Store::migrate`]).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url);
        let shown = redact_url(url);
        let pool = match backend {
            Backend::Sqlite => {
                let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
                let memory = path == ":memory:" || path.contains("mode=memory");
                // `mode=rwc` creates the file when missing.
                let sqlite_url = match (memory, path.contains('?')) {
                    // One database shared by the pool's connections (each would otherwise
                    // open its own), named uniquely so that two stores never share one.
                    (true, _) => {
                        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        format!("sqlite:file:sparky-memory-{}-{n}?mode=memory&cache=shared", std::process::id())
                    }
                    (false, true) => format!("sqlite://{path}&mode=rwc"),
                    (false, false) => format!("sqlite://{path}?mode=rwc"),
                };
                AnyPoolOptions::new()
                    .max_connections(4)
                    // An in-memory database lives while a connection holds it.
                    .min_connections(u32::from(memory))
                    .idle_timeout((!memory).then_some(Duration::from_secs(600)))
                    .max_lifetime((!memory).then_some(Duration::from_secs(1800)))
                    .acquire_timeout(Duration::from_secs(5))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL; FULL: a commit is on disk before the 202, even across a
                            // power cut; a writer waits up to 5 s for another.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
                                 PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url)
                    .await
                    .map_err(|e| {
                        StoreError::Open(format!("`{shown}`: {e}; use `sqlite://FILE` in a folder Sparky may write"))
                    })?
            }
            Backend::Postgres => {
                // One connection first, for the server's own words when it cannot be reached
                // (the pool would only say that it timed out).
                let first =
                    tokio::time::timeout(Duration::from_secs(10), <AnyConnection as sqlx::Connection>::connect(url));
                let unreachable = |e: String| {
                    StoreError::Open(format!(
                        "cannot connect to `{shown}`: {e}; check that PostgreSQL runs there and that the user may connect (`psql '{shown}'`)"
                    ))
                };
                match first.await {
                    Ok(Ok(c)) => drop(c),
                    Ok(Err(e)) => return Err(unreachable(e.to_string())),
                    Err(_) => return Err(unreachable("no answer within 10 s".into())),
                }
                AnyPoolOptions::new()
                    .max_connections(16)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(5))
                    .idle_timeout(Duration::from_secs(300))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // No statement holds a connection (or a lock) for ever.
                            conn.execute("SET statement_timeout = '30s'; SET lock_timeout = '10s'").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?
            }
        };
        Ok(Store {
            pool,
            backend,
            url: url.to_string(),
            replica: default_replica_id().into(),
            destinations: Destinations::default(),
            breaker: crate::engine::EngineConfig::default().breaker_failures,
        })
    }

    /// Applies the migrations the database lacks (`sparky migrate`, and every start). A
    /// schema newer than this binary knows is refused.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let url = redact_url(&self.url);
        let migrator = self.backend.migrations();
        let applied = self.applied_migrations().await;
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Open(format!(
                "`{url}` has schema version {v}, newer than this Sparky knows; run the Sparky version that wrote it, or a newer one"
            )),
            other => StoreError::Open(format!("`{url}`: applying the schema failed: {other}")),
        })?;
        Ok(migrator.iter().count().saturating_sub(applied))
    }

    /// The schema version in force: the newest migration applied (0 for a new database).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        sqlx::query("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map(|r| r.get::<i64, _>(0))
            .map_err(unavailable)
    }

    /// How many migrations the database holds (0 for a new one).
    async fn applied_migrations(&self) -> usize {
        sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map(|r| r.get::<i64, _>(0) as usize)
            .unwrap_or(0)
    }

    /// The database the store is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that holds the store's write lock from its first statement: the
    /// guards' check-and-take, the engine's state changes and the inbox claims are serialized
    /// across every process on the database, so that no limit is exceeded because two
    /// replicas each thought they had room. On SQLite it is the database's write lock (a
    /// transaction that reads before it writes could otherwise fail when another connection
    /// writes in between: in WAL mode the upgrade of a stale read transaction is refused, not
    /// waited for); on PostgreSQL a transaction-scoped advisory lock (one per schema), released at commit or
    /// rollback, or when the connection dies.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Any>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let lock = match self.backend {
            Backend::Sqlite => "UPDATE audit_head SET seq = seq WHERE id = 0",
            Backend::Postgres => {
                "SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext('sparky write lock ' || current_schema()))) AS locked"
            }
        };
        sqlx::query(lock).execute(&mut *tx).await.map_err(unavailable)?;
        Ok(tx)
    }

    /// The store, writing escalations to the outbox for `destinations`.
    /// The circuit breaker's threshold for failures recorded with a decision (a re-fire that
    /// undoes a verified run): the engine's `breaker_failures`.
    pub fn with_breaker(mut self, failures: u64) -> Store {
        self.breaker = failures;
        self
    }

    pub fn with_destinations(mut self, destinations: Destinations) -> Store {
        self.destinations = destinations;
        self
    }

    /// The URL the store was opened with, credentials hidden.
    pub fn url(&self) -> String {
        redact_url(&self.url)
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(unavailable)
    }

    /// Commits a delivery's events to the inbox, unless a delivery with the same key from the
    /// same source was accepted before (then nothing is added and `duplicate` is set).
    pub async fn accept(
        &self,
        source: &str,
        delivery_key: &str,
        events: &[Event],
        received_at: DateTime<Utc>,
    ) -> Result<Accepted, StoreError> {
        let delivery = Delivery { source, key: delivery_key, body_hash: None, events, received_at };
        let mut out = self.accept_all(&[delivery]).await?;
        Ok(out.remove(0))
    }

    /// Commits several deliveries in one transaction (the daemon groups the deliveries that
    /// arrive together); one answer per delivery, in order. Either all are committed or none.
    pub async fn accept_all(&self, deliveries: &[Delivery<'_>]) -> Result<Vec<Accepted>, StoreError> {
        // In key order: replicas committing the same deliveries at once (a sender posting
        // to all of them) then lock their keys in the same order and wait for each other
        // instead of deadlocking.
        let mut order: Vec<usize> = (0..deliveries.len()).collect();
        order.sort_by_key(|&i| (deliveries[i].source, deliveries[i].key));
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let mut answers: Vec<Option<Accepted>> = vec![None; deliveries.len()];
        for i in order {
            answers[i] = Some(insert_delivery(&mut tx, &deliveries[i]).await?);
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(answers.into_iter().flatten().collect())
    }

    /// The oldest events still waiting for a decision, in arrival order.
    pub async fn pending(&self, limit: i64) -> Result<Vec<Pending>, StoreError> {
        let rows = sqlx::query("SELECT seq, event_json FROM events WHERE state = 'pending' ORDER BY seq LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        read_pending(&mut conn, rows).await
    }

    /// How many events wait for a decision.
    pub async fn inbox_depth(&self) -> Result<i64, StoreError> {
        sqlx::query("SELECT COUNT(*) FROM events WHERE state = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map(|r| r.get::<i64, _>(0))
            .map_err(unavailable)
    }

    /// The incident open for `fingerprint`.
    pub async fn open_incident(&self, fingerprint: &str) -> Result<Option<OpenIncident>, StoreError> {
        Ok(self.open_incidents(&[fingerprint]).await?.remove(fingerprint))
    }

    /// The incidents open for any of `fingerprints`, by fingerprint (one query for a batch).
    pub async fn open_incidents(&self, fingerprints: &[&str]) -> Result<HashMap<String, OpenIncident>, StoreError> {
        let open = self.open_incidents_where("fingerprint", fingerprints).await?;
        Ok(open.into_iter().map(|i| (i.fingerprint.clone(), i)).collect())
    }

    /// The open incidents whose `column` (`fingerprint` or `key`) is one of `values`.
    async fn open_incidents_where(&self, column: &str, values: &[&str]) -> Result<Vec<OpenIncident>, StoreError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT key, fingerprint, opened_at, level, playbook FROM incidents WHERE state = 'open' AND {column} IN ({})",
            placeholders(1, values.len())
        );
        let mut q = sqlx::query(&sql);
        for v in values {
            q = q.bind(*v);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(unavailable)?;
        Ok(rows.iter().map(open_incident_of).collect())
    }

    /// What is remembered of each of `fingerprints` that has a track (one query for a batch,
    /// by primary key). A track that cannot be read back starts afresh, with a warning.
    pub async fn tracks(&self, fingerprints: &[&str]) -> Result<HashMap<String, Track>, StoreError> {
        if fingerprints.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT fingerprint, track_json FROM fingerprint_tracks WHERE fingerprint IN ({})",
            placeholders(1, fingerprints.len())
        );
        let mut q = sqlx::query(&sql);
        for f in fingerprints {
            q = q.bind(*f);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(unavailable)?;
        Ok(rows.into_iter().filter_map(|r| track_of(r.get(0), &r.get::<String, _>(1))).collect())
    }

    /// The tracks of the fingerprints that flap now, each with its stored text (the sweep
    /// writes a track back only if nobody changed it meanwhile), and their open incidents.
    pub async fn flapping(&self) -> Result<(Vec<StoredTrack>, HashMap<String, OpenIncident>), StoreError> {
        let rows = sqlx::query("SELECT fingerprint, track_json FROM fingerprint_tracks WHERE flapping = 1")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let tracks: Vec<StoredTrack> = rows
            .into_iter()
            .filter_map(|r| {
                let text: String = r.get(1);
                track_of(r.get(0), &text).map(|(fingerprint, track)| StoredTrack { fingerprint, track, text })
            })
            .collect();
        let fingerprints: Vec<&str> = tracks.iter().map(|t| t.fingerprint.as_str()).collect();
        let open = self.open_incidents(&fingerprints).await?;
        Ok((tracks, open))
    }

    /// Which of `keys` a recorded decision closed (for incidents the store never opened: the
    /// daemon's test hook for static facts holds such incidents open until one does).
    pub async fn closed_by_decision(&self, keys: &[&str]) -> Result<Vec<String>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT incident_key FROM decisions WHERE incident_key IN ({}) AND decision_json LIKE $1",
            placeholders(2, keys.len())
        );
        let mut q = sqlx::query_scalar(&sql).bind("%\"effect\":\"close\"%");
        for k in keys {
            q = q.bind(*k);
        }
        q.fetch_all(&self.pool).await.map_err(unavailable)
    }

    /// The open incidents under any of `keys`, by key (echoes of Sparky's own pages).
    pub async fn open_incidents_by_key(&self, keys: &[&str]) -> Result<HashMap<String, OpenIncident>, StoreError> {
        let open = self.open_incidents_where("key", keys).await?;
        Ok(open.into_iter().map(|i| (i.key.clone(), i)).collect())
    }

    /// Applies what the passing of time did ([`crate::triage::lifecycle::settle`]): the
    /// tracks that stopped flapping, and the incidents that closed with them, each closed with
    /// its headline as its resolution note. A track that changed since it was read (an event of
    /// its alert was recorded meanwhile, by this replica or another) is left alone, and so is
    /// its incident: the next sweep looks again. One transaction; how many were applied.
    pub async fn settle(&self, settled: &[Settled], now: DateTime<Utc>) -> Result<usize, StoreError> {
        if settled.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut applied = 0;
        for Settled { effects: fx, headline, was } in settled {
            let Some(track) = &fx.track else { continue };
            let json = serde_json::to_string(track).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let moved = sqlx::query(
                "UPDATE fingerprint_tracks SET track_json = $1, flapping = $2, updated_at = $3
                 WHERE fingerprint = $4 AND track_json = $5",
            )
            .bind(json)
            .bind(i64::from(track.is_flapping()))
            .bind(ts(now))
            .bind(&fx.fingerprint)
            .bind(was)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
            if moved == 0 {
                continue;
            }
            applied += 1;
            if let Some(key) = &fx.closed {
                engine::resolved(&mut tx, key, now).await?;
                close_incident(&mut tx, key, headline, now).await?;
            }
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(applied)
    }

    /// Records the decision on the inbox event `seq` and its incident change, in one
    /// transaction. An event already decided (a second worker, a replay after a crash that
    /// happened after the commit) is left as it is: returns false.
    pub async fn record(&self, seq: i64, event: &Event, decision: &Decision, json: &Value) -> Result<bool, StoreError> {
        let record = Record {
            seq,
            event,
            decision,
            json: json.to_string(),
            deploy: None,
            run: None,
            execution: None,
            package: None,
            fix: None,
            feedback: None,
            track: None,
            refired: None,
        };
        let n = self.record_all(&[record]).await?;
        Ok(n == 1)
    }

    /// Records a batch of decisions in one transaction (one commit for the batch); returns
    /// how many events left the inbox (an event already decided is skipped).
    pub async fn record_all(&self, records: &[Record<'_>]) -> Result<usize, StoreError> {
        Ok(self.record_batch(records, None).await?.unwrap_or(0))
    }

    /// Records a batch decided on the runs up to `runs_mark` (see [`Store::runs_mark`]):
    /// `None`, and nothing recorded, when another replica added a run since, so the batch is
    /// decided again on what is now true. An event another replica holds is skipped.
    pub async fn record_batch(
        &self,
        records: &[Record<'_>],
        runs_mark: Option<i64>,
    ) -> Result<Option<usize>, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(mark) = runs_mark
            && runs_mark_in(&mut tx).await? != mark
        {
            return Ok(None);
        }
        let mut moved_total = 0;
        for record in records {
            let Record { seq, event, decision, json, deploy, run, execution, package, fix, feedback, track, refired } =
                record;
            let now = ts(decision.decided_at);
            let attached = decision.level == Level::Suppressed;
            let incident_key = decision.incident.as_ref().map(|c| c.key.as_str());
            let moved = sqlx::query(
                "UPDATE events SET state = $1, incident_key = $2, decision_json = $3, decided_at = $4,
                                   claimed_by = NULL, claim_until = NULL
                 WHERE seq = $5 AND state = 'pending' AND (claimed_by IS NULL OR claimed_by = $6)",
            )
            .bind(if attached { "attached" } else { "decided" })
            .bind(incident_key)
            .bind(json.as_str())
            .bind(&now)
            .bind(seq)
            .bind(self.replica.as_ref())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
            if moved == 0 {
                continue;
            }
            moved_total += 1;
            if !attached {
                sqlx::query(
                    "INSERT INTO decisions (event_seq, event_id, fingerprint, level, playbook, incident_key, ruleset, decided_at, decision_json)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(seq)
                .bind(&event.id)
                .bind(&event.fingerprint)
                .bind(decision.level.as_str())
                .bind(decision.playbook.as_deref())
                .bind(incident_key)
                .bind(&decision.ruleset)
                .bind(&now)
                .bind(json.as_str())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            if let Some(d) = deploy {
                sqlx::query(
                    "INSERT INTO deploys (key, service, at, state, environment, version, commit_sha, repository,
                                          deployed_by, url, source, summary, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                     ON CONFLICT (key) DO UPDATE SET
                       at = CASE WHEN excluded.at < deploys.at THEN excluded.at ELSE deploys.at END,
                       state = CASE WHEN excluded.state = 'unknown'
                                      OR (excluded.state = 'started' AND deploys.state IN ('succeeded', 'failed'))
                                    THEN deploys.state ELSE excluded.state END,
                       environment = COALESCE(deploys.environment, excluded.environment),
                       version = COALESCE(deploys.version, excluded.version),
                       commit_sha = COALESCE(deploys.commit_sha, excluded.commit_sha),
                       repository = COALESCE(deploys.repository, excluded.repository),
                       deployed_by = COALESCE(deploys.deployed_by, excluded.deployed_by),
                       url = COALESCE(deploys.url, excluded.url),
                       summary = excluded.summary, updated_at = excluded.updated_at",
                )
                .bind(&d.key)
                .bind(&d.service)
                .bind(ts(d.at))
                .bind(d.state.as_str())
                .bind(d.environment.as_deref())
                .bind(d.version.as_deref())
                .bind(d.commit.as_deref())
                .bind(d.repository.as_deref())
                .bind(d.by.as_deref())
                .bind(d.url.as_deref())
                .bind(&d.source)
                .bind(&d.summary)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            if let (Some(r), Some(playbook)) = (run, &decision.playbook) {
                sqlx::query(
                    "INSERT INTO runs (playbook, at, outcome, keys_json, incident_key, event_seq, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $2)",
                )
                .bind(playbook)
                .bind(ts(r.at))
                .bind(r.outcome.as_str())
                .bind(serde_json::to_string(&r.keys).unwrap_or_else(|_| "{}".into()))
                .bind(incident_key)
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            if let Some(new) = execution {
                engine::create(&mut tx, new, record, decision.decided_at).await?;
            }
            if let Some(f) = feedback {
                fixes::answered(&mut tx, f, decision.decided_at).await?;
            }
            if let Some((fingerprint, track)) = track {
                save_track(&mut tx, fingerprint, track, decision.decided_at).await?;
            }
            if let Some(key) = refired {
                engine::refired(&mut tx, key, self.breaker, decision.decided_at).await?;
            }
            let Some(change) = &decision.incident else { continue };
            let actions: Vec<&str> = decision.actions.iter().map(|a| a.plan.action.as_str()).collect();
            let q = match change.effect {
                IncidentEffect::Open => sqlx::query(
                    "INSERT INTO incidents (key, fingerprint, state, level, playbook, opened_at, updated_at,
                                            service, summary, actions, fix, package_json, flapping)
                     VALUES ($1, $2, 'open', $3, $4, $5, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT (key) DO UPDATE SET state = 'open', updated_at = $5, closed_at = NULL,
                                                    events = incidents.events + 1,
                                                    opened_count = incidents.opened_count
                                                      + CASE WHEN incidents.state = 'open' THEN 0 ELSE 1 END",
                )
                .bind(&change.key)
                .bind(&event.fingerprint)
                .bind(decision.level.as_str())
                .bind(decision.playbook.as_deref())
                .bind(&now)
                .bind(event.service.as_deref())
                .bind(&event.summary)
                .bind(actions.join(","))
                .bind(decision.fix.as_ref().map(|f| f.generator.as_str()))
                .bind(package.as_ref().and_then(|p| serde_json::to_string(p).ok()))
                .bind(i64::from(decision.flapping.is_some())),
                IncidentEffect::Update => {
                    sqlx::query("UPDATE incidents SET updated_at = $1, events = events + 1 WHERE key = $2")
                        .bind(&now)
                        .bind(&change.key)
                }
                IncidentEffect::Close => {
                    engine::resolved(&mut tx, &change.key, decision.decided_at).await?;
                    sqlx::query(
                        "UPDATE incidents SET state = 'closed', updated_at = $1, closed_at = $1, events = events + 1
                     WHERE key = $2 AND state = 'open'",
                    )
                    .bind(&now)
                    .bind(&change.key)
                }
            };
            q.execute(&mut *tx).await.map_err(unavailable)?;
            self.escalations_of(&mut tx, event, decision, change, package.as_ref()).await?;
            if let Some(order) =
                fix.as_ref().filter(|_| self.destinations.github && change.effect == IncidentEffect::Open)
            {
                fixes::order(&mut tx, order, decision.decided_at).await?;
            }
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(moved_total))
    }

    /// What a decision's incident change sends to the escalation destinations: the
    /// escalation (an incident opened at L3, or held for approval), the acknowledgement, a
    /// repeat, the resolution. In the decision's transaction, so none is lost or doubled.
    async fn escalations_of(
        &self,
        tx: &mut AnyConnection,
        event: &Event,
        decision: &Decision,
        change: &crate::triage::IncidentChange,
        package: Option<&crate::escalate::EscalationPackage>,
    ) -> Result<(), StoreError> {
        let now = decision.decided_at;
        let to = self.destinations;
        // An echo of Sparky's own page: PagerDuty already knows; the others hear of it.
        let echo = echo_key(event).is_some();
        match change.effect {
            IncidentEffect::Open => match package {
                Some(p) => outbox::opened_again_or_new(tx, to, p, decision.escalation.is_some(), now).await,
                None => Ok(()),
            },
            IncidentEffect::Close if echo => {
                let headline = format!("resolved in PagerDuty ({}) at {}", event.summary.trim(), ts(now));
                outbox::resolve_with(tx, &change.key, &headline, Some("pagerduty"), now).await
            }
            IncidentEffect::Close => outbox::resolve(tx, &change.key, now).await,
            IncidentEffect::Update if echo && event.status == crate::event::Status::Acknowledged => {
                let note = crate::escalate::Note {
                    incident_key: change.key.clone(),
                    headline: format!("acknowledged in PagerDuty ({})", event.summary.trim()),
                    lines: vec![format!("at {}", ts(now))],
                    attempt: None,
                };
                outbox::note(tx, &note, &format!("echo:{}", event.id), true, now).await
            }
            IncidentEffect::Update if echo => Ok(()),
            IncidentEffect::Update if event.status == crate::event::Status::Acknowledged => {
                outbox::acknowledge(tx, to, &change.key, now).await
            }
            IncidentEffect::Update => {
                let events: i64 = sqlx::query("SELECT events FROM incidents WHERE key = $1")
                    .bind(&change.key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?
                    .map_or(0, |r| r.get(0));
                outbox::repeat(tx, to, &change.key, event, events, now).await
            }
        }
    }

    /// Deploys of `services` that started at or after `since`, newest first, at most `limit`
    /// (one query for a batch).
    pub async fn deploys(
        &self,
        services: &[&str],
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Deploy>, StoreError> {
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT key, service, at, state, environment, version, commit_sha, repository, deployed_by, url, source, summary
             FROM deploys WHERE at >= $1 AND service IN ({}) ORDER BY at DESC LIMIT $2",
            placeholders(3, services.len())
        );
        let mut q = sqlx::query(&sql).bind(ts(since)).bind(limit);
        for s in services {
            q = q.bind(*s);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|r| Deploy {
                key: r.get(0),
                service: r.get(1),
                at: parse_ts(&r.get::<String, _>(2)),
                state: DeployState::parse(&r.get::<String, _>(3)),
                environment: r.get(4),
                version: r.get(5),
                commit: r.get(6),
                repository: r.get(7),
                by: r.get(8),
                url: r.get(9),
                source: r.get(10),
                summary: r.get(11),
            })
            .collect())
    }

    /// Incidents with any of `fingerprints` opened at or after `since`, newest first, at most
    /// `per_fingerprint` each (one query for a batch).
    pub async fn history(
        &self,
        fingerprints: &[&str],
        since: DateTime<Utc>,
        per_fingerprint: usize,
    ) -> Result<Vec<PastIncident>, StoreError> {
        if fingerprints.is_empty() {
            return Ok(Vec::new());
        }
        // The newest `per_fingerprint` of each, chosen by the database (a fingerprint that
        // fires all day must not bring its whole history into every batch).
        let sql = format!(
            "SELECT key, fingerprint, service, opened_at, closed_at, level, playbook, summary, actions, fix, outcome, flapping
             FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY fingerprint ORDER BY opened_at DESC) AS newest
                   FROM incidents WHERE opened_at >= $1 AND fingerprint IN ({})) AS recent
             WHERE newest <= $2 ORDER BY opened_at DESC",
            placeholders(3, fingerprints.len())
        );
        let mut q = sqlx::query(&sql).bind(ts(since)).bind(per_fingerprint as i64);
        for f in fingerprints {
            q = q.bind(*f);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let fingerprint: String = r.get(1);
            let actions: String = r.get(8);
            out.push(PastIncident {
                key: r.get(0),
                fingerprint,
                service: r.get(2),
                opened_at: parse_ts(&r.get::<String, _>(3)),
                closed_at: r.get::<Option<String>, _>(4).map(|c| parse_ts(&c)),
                level: r.get(5),
                playbook: r.get(6),
                summary: r.get(7),
                actions: actions.split(',').filter(|a| !a.is_empty()).map(str::to_string).collect(),
                fix: r.get(9),
                outcome: r.get(10),
                flapping: r.get::<i64, _>(11) != 0,
            });
        }
        Ok(out)
    }

    /// The L1 runs of `playbooks` at or after `since`, by playbook.
    pub async fn runs(
        &self,
        playbooks: &[&str],
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, Vec<Run>>, StoreError> {
        if playbooks.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT playbook, at, outcome, keys_json, incident_key FROM runs WHERE at >= $1 AND playbook IN ({}) ORDER BY seq",
            placeholders(2, playbooks.len())
        );
        let mut q = sqlx::query(&sql).bind(ts(since));
        for p in playbooks {
            q = q.bind(*p);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(unavailable)?;
        let mut out: HashMap<String, Vec<Run>> = HashMap::new();
        for r in rows {
            let keys = serde_json::from_str(&r.get::<String, _>(3)).unwrap_or_default();
            let run = Run {
                at: parse_ts(&r.get::<String, _>(1)),
                keys,
                outcome: Outcome::parse(&r.get::<String, _>(2)),
                incident: r.get(4),
            };
            out.entry(r.get(0)).or_default().push(run);
        }
        Ok(out)
    }

    /// An event by its inbox position or its id (the latest receipt of that id), with its
    /// state and decision.
    pub async fn event(&self, id: &str) -> Result<Option<Value>, StoreError> {
        let by_seq = id.parse::<i64>().ok();
        let row = sqlx::query(
            "SELECT seq, event_json, state, incident_key, decision_json, decided_at FROM events
             WHERE seq = $1 OR id = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(by_seq.unwrap_or(-1))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(row.map(|r| {
            let event: Value = serde_json::from_str(&r.get::<String, _>(1)).unwrap_or(Value::Null);
            let decision: Option<String> = r.get(4);
            serde_json::json!({
                "seq": r.get::<i64, _>(0),
                "state": r.get::<String, _>(2),
                "incident": r.get::<Option<String>, _>(3),
                "decided_at": r.get::<Option<String>, _>(5),
                "event": event,
                "decision": decision.and_then(|d| serde_json::from_str::<Value>(&d).ok()),
            })
        }))
    }

    /// The most recent decisions, newest first, optionally for one playbook or level.
    pub async fn decisions(
        &self,
        limit: i64,
        playbook: Option<&str>,
        level: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, event_seq, event_id, level, playbook, incident_key, ruleset, decided_at, decision_json
             FROM decisions WHERE ($1 IS NULL OR playbook = $1) AND ($2 IS NULL OR level = $2)
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(playbook)
        .bind(level)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|r| StoredDecision {
                seq: r.get(0),
                event_seq: r.get(1),
                event_id: r.get(2),
                level: r.get(3),
                playbook: r.get(4),
                incident_key: r.get(5),
                ruleset: r.get(6),
                decided_at: parse_ts(&r.get::<String, _>(7)),
                decision: serde_json::from_str(&r.get::<String, _>(8)).unwrap_or(Value::Null),
            })
            .collect())
    }

    /// Counts of events by state (`pending`, `decided`, `attached`).
    pub async fn event_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM events GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Closes the pool, waiting for connections to finish (shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `scheme://user:password@host/db` → `scheme://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_the_url() {
        assert_eq!(redact_url("postgres://sparky:hunter2@db:5432/sparky"), "postgres://sparky:***@db:5432/sparky");
        assert_eq!(redact_url("sqlite://sparky.db"), "sqlite://sparky.db");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1/test"), "postgres://postgres@127.0.0.1/test");
    }
}
