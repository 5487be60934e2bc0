-- One-time codes that let a camera agent fetch its camera's secret
-- (`panel camera add --pair`, then `camera-agent pair HOST:PORT CODE`). Only
-- the key derived from each code is kept (SHA-256, see the protocol's
-- pairing section). A code works once, until it expires.
CREATE TABLE pairing_codes (
    id         INTEGER PRIMARY KEY,
    camera_id  TEXT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    code_key   BLOB NOT NULL UNIQUE CHECK (length(code_key) = 32),
    created_us INTEGER NOT NULL,
    expires_us INTEGER NOT NULL,
    used_us    INTEGER,               -- NULL until an agent paired with it
    used_by    TEXT                   -- the agent's HOST:PORT
);
