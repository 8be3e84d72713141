-- Sparky's store, version 3: the autonomous engine. Executions of L1 plans (queued, held for
-- approval, applied, verified), the targets they hold, pauses (the kill switch, scoped pauses
-- and the circuit breaker's demotions), escalations waiting for delivery, and the
-- hash-chained audit log. Guards read all of it, so their limits survive restarts.

-- One row per L1 decision the engine carries out or holds. `state` moves forward only:
--   queued | awaiting_approval | planned  (made with the decision, in its transaction)
--   approved | rejected | expired          (a person's answer, or none in time)
--   applying                               (claimed: guards passed, audit written, apply under way)
--   verifying                              (applied; waiting for the alert to resolve or a probe)
--   succeeded | failed | timed_out | refused | interrupted | skipped   (final)
-- `dry_run` marks an execution carried out in dry-run mode (same states, nothing applied).
CREATE TABLE executions (
    id              TEXT    PRIMARY KEY,
    event_seq       INTEGER NOT NULL REFERENCES events (seq),
    event_id        TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    incident_key    TEXT,
    playbook        TEXT    NOT NULL,
    service         TEXT,
    namespace       TEXT,
    ruleset         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    dry_run         INTEGER NOT NULL DEFAULT 0,
    plan_json       TEXT    NOT NULL,
    verify_json     TEXT    NOT NULL,
    run_keys_json   TEXT    NOT NULL DEFAULT '{}',
    mutating        INTEGER NOT NULL DEFAULT 1,
    result_json     TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    expires_at      TEXT,
    started_at      TEXT,
    verify_deadline TEXT,
    answered_by     TEXT
);
CREATE INDEX executions_state ON executions (state, created_at);
CREATE INDEX executions_incident ON executions (incident_key, state);
CREATE INDEX executions_playbook ON executions (playbook, created_at);
CREATE INDEX executions_started ON executions (started_at);
CREATE UNIQUE INDEX executions_event ON executions (event_seq);

-- What each execution touches (`kubernetes:prod/deployment/checkout`): one action in flight
-- per target, and the per-target rate, are counted here.
CREATE TABLE execution_targets (
    execution  TEXT NOT NULL REFERENCES executions (id),
    target     TEXT NOT NULL,
    started_at TEXT,
    PRIMARY KEY (execution, target)
);
CREATE INDEX execution_targets_target ON execution_targets (target, started_at);

-- Pauses: none of the scope columns set pauses every L1 (the kill switch). A pause ends at
-- `until`, or when lifted (`sparky resume`). `breaker` pauses are the circuit breaker's.
CREATE TABLE pauses (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    playbook   TEXT,
    service    TEXT,
    namespace  TEXT,
    breaker    INTEGER NOT NULL DEFAULT 0,
    reason     TEXT    NOT NULL,
    paused_by  TEXT,
    created_at TEXT    NOT NULL,
    until      TEXT,
    lifted_at  TEXT,
    lifted_by  TEXT
);
CREATE INDEX pauses_active ON pauses (lifted_at);

-- Escalations the engine raised after the decision (a refused or failed execution, a failed
-- verification, a demotion), with their context, waiting for the L3 delivery worker.
CREATE TABLE escalations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_key TEXT,
    playbook     TEXT,
    execution    TEXT,
    cause        TEXT    NOT NULL,
    package_json TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending'
);
CREATE UNIQUE INDEX escalations_once ON escalations (execution, cause);

-- The audit log: append-only, each record's hash covering the previous one's, so that an
-- altered, inserted or removed record breaks the chain (`sparky audit verify`). The head is
-- kept apart so that removing the newest records is detected too.
CREATE TABLE audit (
    seq          INTEGER PRIMARY KEY,
    at           TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    execution    TEXT,
    playbook     TEXT,
    incident_key TEXT,
    record_json  TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_playbook ON audit (playbook, seq);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
-- The head exists from the start: a log whose head is missing was wiped, not new.
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
