-- Schema version 4: the web console's users and sessions.

-- Console users: the record as JSON (role, domains, the password's argon2id
-- PHC string, the TOTP secret sealed by Sealgate's console keyring, the
-- failure count and lock), listed in the order they were added.
CREATE TABLE console_user (
    seq    bigint GENERATED ALWAYS AS IDENTITY,
    name   text PRIMARY KEY,
    record jsonb NOT NULL
);

-- Console sessions under the SHA-256 of their cookie (never the cookie).
CREATE TABLE console_session (
    key        text PRIMARY KEY,
    user_name  text NOT NULL REFERENCES console_user (name) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    record     jsonb NOT NULL
);
CREATE INDEX console_session_user ON console_session (user_name);
