-- Refused connections are counted, not listed one by one: a row stands for
-- a burst of attempts from one host, for one reason, claiming one camera,
-- with no pause over 10 minutes between them. A flood of wrong secrets is
-- one row with its count, and cannot push an earlier attack out of the
-- table. `at_us` is the latest attempt, `first_us` the first.
ALTER TABLE auth_failures ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_failures ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE auth_failures ADD COLUMN first_us INTEGER NOT NULL DEFAULT 0;
-- The `rejected` row in the claimed camera's history, kept up to date.
ALTER TABLE auth_failures ADD COLUMN event_id INTEGER;

UPDATE auth_failures SET
    first_us = at_us,
    host = CASE
        WHEN instr(address, ']') > 0 THEN substr(address, 2, instr(address, ']') - 2)
        WHEN instr(address, ':') > 0 THEN substr(address, 1, instr(address, ':') - 1)
        ELSE address
    END;

CREATE INDEX auth_failures_by_burst ON auth_failures (host, code, claimed_id, at_us);
