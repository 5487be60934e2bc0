-- PostgreSQL twin of migrations/sqlite/0008_backfill.sql: the same tables, columns,
-- keys and indexes in PostgreSQL types (panel/tests/catalog_backends.rs
-- compares the two).

-- Store-and-forward: a recording written from an agent's spool after an
-- outage (frames at their true capture times, received late) is marked
-- backfilled.
ALTER TABLE recordings ADD COLUMN backfilled BOOLEAN NOT NULL DEFAULT FALSE;
