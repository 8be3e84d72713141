-- Sparky's store, version 7: several replicas on one database. An inbox event is claimed by
-- the replica deciding it until `claim_until` (a lease: a replica that dies mid-work loses
-- its claims when they expire, and another decides the events); an execution being applied
-- names the replica applying it, so that a replica starting up marks as interrupted only its
-- own (or those whose replica is gone). Each replica says which ruleset it runs, and when it
-- was last seen, in `replicas`.
ALTER TABLE events ADD COLUMN claimed_by TEXT;
ALTER TABLE events ADD COLUMN claim_until TEXT;
ALTER TABLE executions ADD COLUMN replica TEXT;
-- The replica making an attempt at an outbox row (its `next_at` moved past the attempt);
-- cleared when the attempt is recorded. A restarted replica takes its own rows up again at
-- once.
ALTER TABLE outbox ADD COLUMN taken_by TEXT;

CREATE TABLE replicas (
    id         TEXT PRIMARY KEY,
    ruleset    TEXT NOT NULL,
    version    TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at    TEXT NOT NULL
);
