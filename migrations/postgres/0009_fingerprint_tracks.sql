-- Sparky's store, version 9: what is remembered of each fingerprint between its events (its
-- alert's last state, its recent state changes for flapping, the last decision that a storm
-- is grouped with, the L1 run a re-fire would undo), as triage::lifecycle::Track in JSON. One
-- row per fingerprint, read by primary key for a batch: the cost of a decision no longer
-- grows with the decisions stored before it. `flapping` is set while the fingerprint flaps,
-- so that the sweep that ends flapping reads only those rows.
CREATE TABLE fingerprint_tracks (
    fingerprint TEXT PRIMARY KEY,
    track_json  TEXT NOT NULL,
    flapping    BIGINT NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL
);
CREATE INDEX fingerprint_tracks_flapping ON fingerprint_tracks (flapping) WHERE flapping = 1;

-- An incident opened while its alert flapped (kg::history shows it).
ALTER TABLE incidents ADD COLUMN flapping BIGINT NOT NULL DEFAULT 0;
