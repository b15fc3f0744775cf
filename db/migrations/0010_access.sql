-- API keys of operators and admins. Only the SHA-256 of each key is kept: the key itself is
-- shown once, when it is created, and cannot be recovered from the database.
CREATE TABLE api_keys (
    key_id     text PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL CHECK (role IN ('operator', 'admin')),
    key_hash   bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
