-- The panel's catalog. Frames live in files under the recordings directory;
-- this database indexes them. Times are microseconds since the Unix epoch (UTC).
-- Migrations are append-only: change the schema with a new file.

-- Every camera the panel has seen, registered when it first connects.
CREATE TABLE cameras (
    id             TEXT PRIMARY KEY,        -- the agent's camera id (A-Z a-z 0-9 _ . -)
    name           TEXT NOT NULL,           -- what people call it
    name_locked    INTEGER NOT NULL DEFAULT 0, -- 1 once renamed on the panel: the agent's name no longer applies
    record_mode    TEXT NOT NULL DEFAULT 'continuous'
                   CHECK (record_mode IN ('off', 'continuous', 'motion')),
    retain_bytes   INTEGER,                 -- keep at most this many bytes of recordings (NULL: no limit)
    retain_days    INTEGER,                 -- keep recordings at most this many days (NULL: no limit)
    state          TEXT NOT NULL DEFAULT 'offline'
                   CHECK (state IN ('live', 'stalled', 'offline')),
    state_since_us INTEGER NOT NULL,        -- when the current state began
    state_detail   TEXT NOT NULL DEFAULT '', -- why (e.g. 'heartbeat timeout')
    first_seen_us  INTEGER NOT NULL,
    last_seen_us   INTEGER NOT NULL,        -- last connection or frame time written
    last_address   TEXT NOT NULL DEFAULT '', -- agent's address, HOST:PORT
    agent_version  TEXT NOT NULL DEFAULT '',
    width          INTEGER NOT NULL DEFAULT 0, -- frame size announced in Hello
    height         INTEGER NOT NULL DEFAULT 0,
    fps_milli      INTEGER NOT NULL DEFAULT 0  -- nominal fps x 1000 announced in Hello
);

-- History of each camera: state changes, recording starts and stops, errors.
CREATE TABLE camera_events (
    id        INTEGER PRIMARY KEY,
    camera_id TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,   -- live | stalled | offline | recording_started | recording_stopped | recording_error | disk_full | ...
    at_us     INTEGER NOT NULL,
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX camera_events_by_camera_time ON camera_events (camera_id, at_us);
CREATE INDEX camera_events_by_time ON camera_events (at_us);

-- One row per recording segment (a Matroska file of MJPEG frames).
-- Written as 'recording' before the file is created; set 'complete' only after
-- the file is finished and synced; 'interrupted' when repaired after a crash
-- or closed early by a write error.
CREATE TABLE recordings (
    id        INTEGER PRIMARY KEY,
    camera_id TEXT NOT NULL REFERENCES cameras(id),
    path      TEXT NOT NULL UNIQUE,  -- relative to the recordings directory
    start_us  INTEGER NOT NULL,      -- capture time of the first frame
    end_us    INTEGER NOT NULL,      -- capture time of the last frame
    frames    INTEGER NOT NULL DEFAULT 0,
    bytes     INTEGER NOT NULL DEFAULT 0, -- file size
    width     INTEGER NOT NULL,
    height    INTEGER NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('recording', 'complete', 'interrupted')),
    detail    TEXT NOT NULL DEFAULT ''    -- why interrupted
);
CREATE INDEX recordings_by_camera_time ON recordings (camera_id, start_us);
CREATE INDEX recordings_by_time ON recordings (start_us);
CREATE INDEX recordings_by_status ON recordings (status);

-- Small facts about the panel itself ('heartbeat_us': last time the engine was alive).
CREATE TABLE panel_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
