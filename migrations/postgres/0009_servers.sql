-- PostgreSQL twin of migrations/sqlite/0009_servers.sql: the same tables, columns,
-- keys and indexes in PostgreSQL types (panel/tests/catalog_backends.rs
-- compares the two).

-- Several recording servers on one catalog. Each panel is a server with an
-- id (its config's `server_id`) and an address, and says it is alive every
-- few seconds; a server whose heartbeat is old is unreachable. The rows a
-- panel writes name the server that wrote them: a camera the server it is
-- (or was last) connected to, a recording the server holding its file.
-- '' is "no server yet" (a camera enrolled but never connected) or, in a
-- catalog from before servers, the one panel there was.
CREATE TABLE servers (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL DEFAULT '',  -- where agents and other panels reach it, HOST:PORT
    instance     TEXT NOT NULL DEFAULT '',  -- which panel: its host and data directory (another given the same id is refused while this one runs)
    started_us   BIGINT NOT NULL,
    heartbeat_us BIGINT NOT NULL,          -- the last time it said it was alive
    stopped_us   BIGINT                    -- set by a clean stop; NULL while it runs (or if it died)
);

ALTER TABLE cameras ADD COLUMN server_id TEXT NOT NULL DEFAULT '';
ALTER TABLE camera_events ADD COLUMN server_id TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN server_id TEXT NOT NULL DEFAULT '';
ALTER TABLE exports ADD COLUMN server_id TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_failures ADD COLUMN server_id TEXT NOT NULL DEFAULT '';
ALTER TABLE panoramas ADD COLUMN server_id TEXT NOT NULL DEFAULT '';
CREATE INDEX recordings_by_server ON recordings (server_id, status);
