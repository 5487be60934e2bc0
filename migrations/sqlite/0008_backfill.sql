-- Store-and-forward: a recording written from an agent's spool after an
-- outage (frames at their true capture times, received late) is marked
-- backfilled.
ALTER TABLE recordings ADD COLUMN backfilled INTEGER NOT NULL DEFAULT 0;
