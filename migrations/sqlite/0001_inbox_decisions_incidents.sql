-- Sparky's store, version 1: the durable inbox (events), deliveries seen (idempotency),
-- decisions with their traces, and incidents. Portable SQL: the PostgreSQL backend uses the
-- same tables with its own types.

-- Every delivery accepted, by the sender's delivery id or a hash of its body: a redelivery
-- finds its key here and is acknowledged without adding events.
CREATE TABLE deliveries (
    source       TEXT    NOT NULL,
    delivery_key TEXT    NOT NULL,
    received_at  TEXT    NOT NULL,
    events       INTEGER NOT NULL,
    PRIMARY KEY (source, delivery_key)
);

-- The inbox and the event log in one: a row is written (state `pending`) before the 202,
-- and the worker moves it to `decided` or `attached` in the same transaction that records
-- its decision, so an acknowledged event is decided exactly once whatever crashes.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    service      TEXT,
    severity     TEXT    NOT NULL,
    summary      TEXT    NOT NULL,
    occurred_at  TEXT    NOT NULL,
    received_at  TEXT    NOT NULL,
    delivery_key TEXT    NOT NULL,
    event_json   TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending',
    incident_key TEXT,
    decision_json TEXT,
    decided_at   TEXT
);
CREATE INDEX events_pending ON events (state, seq);
CREATE INDEX events_id ON events (id);
CREATE INDEX events_fingerprint ON events (fingerprint, seq);

-- Decisions that triaged an event (an event attached to an open incident has none).
CREATE TABLE decisions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq    INTEGER NOT NULL REFERENCES events (seq),
    event_id     TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    level        TEXT    NOT NULL,
    playbook     TEXT,
    incident_key TEXT,
    ruleset      TEXT    NOT NULL,
    decided_at   TEXT    NOT NULL,
    decision_json TEXT   NOT NULL
);
CREATE UNIQUE INDEX decisions_event ON decisions (event_seq);
CREATE INDEX decisions_playbook ON decisions (playbook, seq);

-- One row per incident key; at most one open incident per fingerprint.
CREATE TABLE incidents (
    key          TEXT    PRIMARY KEY,
    fingerprint  TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    level        TEXT    NOT NULL,
    playbook     TEXT,
    opened_at    TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    closed_at    TEXT,
    events       INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX incidents_open_fingerprint ON incidents (fingerprint) WHERE state = 'open';
