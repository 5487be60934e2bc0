-- Who may connect. Each camera has its own secret, made by `panel camera add`;
-- an agent proves it holds it (HMAC over a per-connection nonce) without
-- sending it. Revoking keeps the row so a revoked camera is named as such.
CREATE TABLE camera_credentials (
    camera_id  TEXT PRIMARY KEY REFERENCES cameras(id) ON DELETE CASCADE,
    secret     BLOB NOT NULL CHECK (length(secret) = 32),
    created_us INTEGER NOT NULL,
    revoked_us INTEGER                -- NULL while the secret is valid
);

-- Connections the panel refused before they became a camera: wrong secret,
-- unknown camera id, replayed handshake, plain TCP on the TLS port, garbage.
-- Kept to the newest 10,000 rows.
CREATE TABLE auth_failures (
    id         INTEGER PRIMARY KEY,
    at_us      INTEGER NOT NULL,
    address    TEXT NOT NULL,         -- the peer, HOST:PORT
    claimed_id TEXT,                  -- the camera id it claimed; NULL if it never got that far
    code       TEXT NOT NULL,         -- wrong_secret | unknown_camera | revoked | replayed | no_proof | not_tls | tls | protocol | timeout | rate_limited
    reason     TEXT NOT NULL          -- in words, as logged
);
CREATE INDEX auth_failures_by_time ON auth_failures (at_us);

-- Panels allowed to send exports here when this machine runs `panel
-- receive` (`panel sender add`). Same scheme as cameras: a secret each,
-- proven over a nonce, never sent.
CREATE TABLE dispatch_senders (
    id         TEXT PRIMARY KEY,
    secret     BLOB NOT NULL CHECK (length(secret) = 32),
    created_us INTEGER NOT NULL,
    revoked_us INTEGER
);
