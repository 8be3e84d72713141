-- Sparky's store, version 4: L3 delivery. The outbox holds every message to a destination
-- (Jira, PagerDuty, Slack), written in the transaction of the decision or engine result that
-- raises it, and delivered by the delivery worker with retries; it survives restarts. One
-- row per (incident, destination, what) — the unique index is what makes one incident key
-- one Jira issue and one PagerDuty alert, however often the cause repeats.

-- The context package of the event that opened the incident, and the escalation settings of
-- the deciding playbook: what an escalation raised later (a failed verification) hands over.
ALTER TABLE incidents ADD COLUMN package_json TEXT;
-- How many times the incident key was opened: an alert that resolves and fires again with
-- the same start (Alertmanager's resolve timeout, then a resend) reopens its incident. Each
-- opening is paged and resolved on its own.
ALTER TABLE incidents ADD COLUMN opened_count INTEGER NOT NULL DEFAULT 1;

-- `action`: `open` (create the issue / trigger the page / post the message), `note` (a
-- comment: a repeat, a later escalation), `acknowledge`, `resolve`.
-- `state`: `pending` (waiting for `next_at`), `delivered`, `dry_run` (rendered, recorded in
-- `request_json`, not sent), `failed` (the destination refused it for good: `last_error`).
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_key TEXT    NOT NULL,
    destination  TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    dedup        TEXT    NOT NULL,
    body_json    TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      TEXT    NOT NULL,
    last_error   TEXT,
    remote       TEXT,
    request_json TEXT,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    delivered_at TEXT
);
CREATE UNIQUE INDEX outbox_once ON outbox (incident_key, destination, dedup);
CREATE INDEX outbox_due ON outbox (state, next_at);

-- What each destination made of an incident: the Jira issue (`OPS-12` and its URL), the
-- PagerDuty dedup key. Comments, transitions, resolves and the Jira link in the page read it.
CREATE TABLE escalation_links (
    incident_key TEXT NOT NULL,
    destination  TEXT NOT NULL,
    remote       TEXT NOT NULL,
    url          TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (incident_key, destination)
);
