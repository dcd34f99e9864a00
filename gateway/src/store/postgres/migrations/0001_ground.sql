-- Schema version 1: the small shared stores. Applied once, in one
-- transaction, by `sealgate store init` (store/postgres/migrate.rs).

-- API tokens: only each token's SHA-256 is stored.
CREATE TABLE api_tokens (
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    name       text PRIMARY KEY,
    role       text NOT NULL CHECK (role IN ('archivist', 'auditor', 'admin')),
    sha256     text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX api_tokens_sha256 ON api_tokens (sha256);

-- Legal holds, listed in placement order.
CREATE TABLE legal_holds (
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    name       text PRIMARY KEY,
    query      text,
    addresses  text[] NOT NULL,
    created_at timestamptz NOT NULL
);

-- The audit log: each line as stored (JSON naming the SHA-256 of the line
-- before), in chain order. `audit_head` is the chain's end: appends lock
-- its one row, so two nodes never chain to the same entry.
CREATE TABLE audit_log (
    seq  bigint PRIMARY KEY,
    line text NOT NULL
);
CREATE TABLE audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, 'genesis');

-- Destinations that once took mail over TLS (domains lower-case).
CREATE TABLE tls_memory (
    domain text PRIMARY KEY,
    since  timestamptz NOT NULL
);

-- Derived records (fetched MTA-STS policies), sealed with the spool keyring.
CREATE TABLE cache (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);
ALTER TABLE cache ALTER COLUMN value SET STORAGE EXTERNAL;

-- Recipients' public keys and certificates, one per kind and id; `changes`
-- counts every change, the stamp keystores reload on.
CREATE TABLE key_records (
    kind  text NOT NULL,
    id    text NOT NULL,
    entry jsonb NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE key_records_stamp (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    changes bigint NOT NULL
);
INSERT INTO key_records_stamp (changes) VALUES (0);
