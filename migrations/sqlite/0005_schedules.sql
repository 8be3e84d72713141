-- Sparky's store, version 5: schedules. The last slot each scheduled playbook fired for (or,
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
