-- Sparky's store, version 8: each delivery keeps the SHA-256 of its body (lower-case hex), so that only
-- a retry of the same body under a delivery key is a duplicate. Another body under a key
-- already taken is accepted as new, under `<key>#<first 16 hex digits of its hash>`.
-- Deliveries stored before this version have none and keep the old answer: any
-- redelivery under their key is a duplicate.
ALTER TABLE deliveries ADD COLUMN body_hash TEXT;
