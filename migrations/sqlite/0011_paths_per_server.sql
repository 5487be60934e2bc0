-- A recording's path is unique on its server, not across servers: two
-- servers may hold a file of the same name (a camera's frames a server
-- wrote but had not acknowledged when it died, sent again to another).
-- SQLite changes a constraint by rebuilding the table.
CREATE TABLE recordings_new (
    id         INTEGER PRIMARY KEY,
    camera_id  TEXT NOT NULL REFERENCES cameras(id),
    path       TEXT NOT NULL,             -- relative to its server's recordings directory
    start_us   INTEGER NOT NULL,
    end_us     INTEGER NOT NULL,
    frames     INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0,
    width      INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('recording', 'complete', 'interrupted')),
    detail     TEXT NOT NULL DEFAULT '',
    backfilled INTEGER NOT NULL DEFAULT 0,
    server_id  TEXT NOT NULL DEFAULT '',
    UNIQUE (server_id, path)
);
INSERT INTO recordings_new
    (id, camera_id, path, start_us, end_us, frames, bytes, width, height, status, detail, backfilled, server_id)
SELECT id, camera_id, path, start_us, end_us, frames, bytes, width, height, status, detail, backfilled, server_id
FROM recordings;
DROP TABLE recordings;
ALTER TABLE recordings_new RENAME TO recordings;
CREATE INDEX recordings_by_camera_time ON recordings (camera_id, start_us);
CREATE INDEX recordings_by_time ON recordings (start_us);
CREATE INDEX recordings_by_status ON recordings (status);
CREATE INDEX recordings_by_server ON recordings (server_id, status);
