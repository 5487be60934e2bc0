-- PostgreSQL twin of migrations/sqlite/0011_paths_per_server.sql: the same tables, columns,
-- keys and indexes in PostgreSQL types (panel/tests/catalog_backends.rs
-- compares the two).

-- A recording's path is unique on its server, not across servers: two
-- servers may hold a file of the same name (a camera's frames a server
-- wrote but had not acknowledged when it died, sent again to another).
ALTER TABLE recordings DROP CONSTRAINT recordings_path_key;
ALTER TABLE recordings ADD UNIQUE (server_id, path);
