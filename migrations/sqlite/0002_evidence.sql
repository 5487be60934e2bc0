-- Evidence: exported zips and their dispatch to other places.

-- One row per export zip under <data>/exports/.
CREATE TABLE exports (
    id         INTEGER PRIMARY KEY,
    path       TEXT NOT NULL UNIQUE,   -- relative to the data directory
    created_us INTEGER NOT NULL,
    cameras    TEXT NOT NULL,          -- camera ids in the export, comma-separated
    from_us    INTEGER NOT NULL,       -- earliest recording start in the export
    to_us      INTEGER NOT NULL,       -- latest recording end in the export
    files      INTEGER NOT NULL,       -- recording files in the zip
    bytes      INTEGER NOT NULL,       -- size of the zip
    sha256     TEXT NOT NULL,          -- of the whole zip, hex
    status     TEXT NOT NULL CHECK (status IN ('complete', 'cancelled', 'failed')),
    detail     TEXT NOT NULL DEFAULT ''
);

-- One row per (export, target) transfer. The queue survives restarts:
-- 'pending' rows are retried with backoff until the target acknowledges a
-- verified copy ('done').
CREATE TABLE dispatches (
    id              INTEGER PRIMARY KEY,
    export_id       INTEGER NOT NULL REFERENCES exports(id) ON DELETE CASCADE,
    target          TEXT NOT NULL,      -- a dispatch target's name from the panel config
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    bytes_sent      INTEGER NOT NULL DEFAULT 0, -- put on the wire over all attempts
    next_attempt_us INTEGER NOT NULL,
    created_us      INTEGER NOT NULL,
    done_us         INTEGER,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dispatches_by_state ON dispatches (state, next_attempt_us);

-- Export and dispatch each completed segment of this camera automatically.
ALTER TABLE cameras ADD COLUMN auto_dispatch INTEGER NOT NULL DEFAULT 0;
