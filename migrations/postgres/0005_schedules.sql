-- Sparky's store (PostgreSQL), version 5: schedules and token notices. The last slot each scheduled playbook fired for (or,
-- for a schedule first seen, the slot it started after), so that a restart neither skips nor
-- doubles a run. A run is a `schedule` event accepted into the inbox with the delivery key
-- `schedule/<playbook>/<slot>`, in the same transaction that moves `last_slot`: the
-- deliveries table refuses a second one for the same slot.
CREATE TABLE schedules (
    playbook     TEXT PRIMARY KEY,
    spec         TEXT NOT NULL,
    last_slot    TEXT NOT NULL,
    last_fired   TEXT,
    updated_at   TEXT NOT NULL
);

-- The token notices sent (PB-003): one per token, expiry and mark (`30d`, `7d`, `expired`,
-- `no expiry`), so an owner hears once per threshold whatever the restarts.
CREATE TABLE token_notices (
    token      TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    mark       TEXT NOT NULL,
    owner      TEXT,
    channel    TEXT NOT NULL,
    sent_at    TEXT NOT NULL,
    PRIMARY KEY (token, expires_at, mark)
);
