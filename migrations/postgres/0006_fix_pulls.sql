-- Sparky's store (PostgreSQL), version 6: L2 pull requests. One row per incident whose fix Sparky worked
-- on: the repository and branch (`sparky/<incident-key>`), the generator and playbook that
-- proposed it, what became of the attempt (`open`, `draft` when its tests failed, `refused`
-- when the generator would not make the change), and what people made of the pull request
-- (`merged`, `closed` without merging). The acceptance rate of each generator and playbook is
-- read from here. The `github` outbox row that carries the fix out is written with the
-- decision, like any escalation.
CREATE TABLE fix_pulls (
    incident_key TEXT PRIMARY KEY,
    playbook     TEXT,
    generator    TEXT    NOT NULL,
    service      TEXT,
    repository   TEXT,
    branch       TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    number       BIGINT,
    url          TEXT,
    tests        TEXT,
    reason       TEXT,
    opened_at    TEXT    NOT NULL,
    answered_at  TEXT,
    answered_by  TEXT,
    updated_at   TEXT    NOT NULL
);
CREATE INDEX fix_pulls_branch ON fix_pulls (branch);
