-- Sparky's store, version 2: the dynamic knowledge. Deploys read from deploy events, the run
-- history of every playbook's L1 (for success-rate, cooldown and rate guards), and what each
-- incident was about and how it ended (for "has this happened before?").

-- One row per deploy however many events tell of it (GitHub sends a deployment, then a
-- status per state change): the earliest time, the latest state.
CREATE TABLE deploys (
    key          TEXT    PRIMARY KEY,
    service      TEXT    NOT NULL,
    at           TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    environment  TEXT,
    version      TEXT,
    commit_sha   TEXT,
    repository   TEXT,
    deployed_by  TEXT,
    url          TEXT,
    source       TEXT    NOT NULL,
    summary      TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);
CREATE INDEX deploys_at ON deploys (at);
CREATE INDEX deploys_service_at ON deploys (service, at);

-- Every L1 run (applied, or planned by a draft), with the cooldown keys of its guards.
-- `outcome` is `pending` until verification says `success` or `failure`.
CREATE TABLE runs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    playbook     TEXT    NOT NULL,
    at           TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    keys_json    TEXT    NOT NULL,
    incident_key TEXT,
    event_seq    INTEGER NOT NULL REFERENCES events (seq),
    updated_at   TEXT    NOT NULL
);
CREATE INDEX runs_playbook_at ON runs (playbook, at);

ALTER TABLE incidents ADD COLUMN service TEXT;
ALTER TABLE incidents ADD COLUMN summary TEXT NOT NULL DEFAULT '';
-- The actions an L1 planned, comma-separated; the generator an L2 used.
ALTER TABLE incidents ADD COLUMN actions TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN fix TEXT;
-- `success` or `failure` once known.
ALTER TABLE incidents ADD COLUMN outcome TEXT;
CREATE INDEX incidents_fingerprint_opened ON incidents (fingerprint, opened_at);
