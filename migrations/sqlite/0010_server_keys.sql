-- How the recording servers of one catalog reach each other: a panel shows
-- another's live cameras by connecting to its agents' port as a viewer,
-- pinning the certificate it registered here and proving its own server's
-- secret (HMAC over a nonce, as a camera does).
ALTER TABLE servers ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''; -- sha256:... of its TLS certificate; '' for plain TCP
ALTER TABLE servers ADD COLUMN secret BLOB CHECK (secret IS NULL OR length(secret) = 32);
