-- Panoramas stitched from a camera's footage, on demand.
CREATE TABLE panoramas (
    id           INTEGER PRIMARY KEY,
    camera_id    TEXT NOT NULL REFERENCES cameras(id),
    source       TEXT NOT NULL,      -- what was stitched, in words ("recording 12", "last 30 s")
    from_us      INTEGER NOT NULL,   -- footage range used
    to_us        INTEGER NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('panorama', 'scans')),
    frames_seen  INTEGER NOT NULL DEFAULT 0,
    frames_used  INTEGER NOT NULL DEFAULT 0,
    status       TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed', 'cancelled')),
    message      TEXT NOT NULL DEFAULT '', -- the explanation on failure, a summary on success
    path         TEXT NOT NULL DEFAULT '', -- result image (or the samples folder on failure), relative to the data directory
    thumb_path   TEXT NOT NULL DEFAULT '',
    width        INTEGER NOT NULL DEFAULT 0,
    height       INTEGER NOT NULL DEFAULT 0,
    stitch_ms    INTEGER NOT NULL DEFAULT 0, -- time the stitch took
    created_us   INTEGER NOT NULL
);
CREATE INDEX panoramas_by_camera ON panoramas (camera_id, created_us);
