-- Schema version 3: the archive (store/postgres/archive.rs). One sequence
-- and one hash chain for every node: an append locks `archive_head`'s one
-- row in its transaction. Events and message contents are sealed by
-- Sealgate with the archive keyring before they are written (with the same
-- associated data as the embedded backend: the sequence number, the
-- content's SHA-256); sequence numbers, content SHA-256 keys, queue ids,
-- chain hashes and checkpoints are in clear.

-- The chain's end: its last sequence number and link, events since the
-- last checkpoint, and a count of purges (a journal that stored content
-- before a purge committed stores it again: the purge may have removed it).
CREATE TABLE archive_head (
    one              boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq              bigint  NOT NULL,
    link             bytea   NOT NULL,
    since_checkpoint bigint  NOT NULL,
    purges           bigint  NOT NULL
);
INSERT INTO archive_head (seq, link, since_checkpoint, purges)
    VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000', 0, 0);

-- Each event's chain entry: the SHA-256 of its plaintext and its link.
-- Kept when a purge removes the event's record.
CREATE TABLE archive_chain (
    seq        bigint PRIMARY KEY,
    event_hash bytea  NOT NULL,
    link       bytea  NOT NULL
);

-- Each event's record (JSON, sealed).
CREATE TABLE archive_event (
    seq    bigint PRIMARY KEY,
    record bytea  NOT NULL
);

-- Message contents by SHA-256 (zstd, then sealed): the first `BlobStore`.
CREATE TABLE archive_blob (
    sha256 bytea PRIMARY KEY,
    data   bytea NOT NULL
);
ALTER TABLE archive_blob ALTER COLUMN data SET STORAGE EXTERNAL;

-- The content index: SHA-256 of a content -> its item (ingest's sequence).
CREATE TABLE archive_item (
    sha256 bytea  PRIMARY KEY,
    item   bigint NOT NULL
);

-- Later relays of an item's content: item, merge event's sequence number.
CREATE TABLE archive_merge (
    item bigint NOT NULL,
    seq  bigint NOT NULL,
    PRIMARY KEY (item, seq)
);

-- Queue ids journaled (journaling is idempotent per queue id).
CREATE TABLE archive_queue (
    queue_id text   PRIMARY KEY,
    seq      bigint NOT NULL
);

-- Signed checkpoints (JSON: covers, head, time, public key, signature).
CREATE TABLE archive_checkpoint (
    seq        bigint PRIMARY KEY,
    checkpoint text   NOT NULL
);

-- Event records a purge removed -> the purge event's sequence number.
CREATE TABLE archive_purged (
    seq   bigint PRIMARY KEY,
    purge bigint NOT NULL
);

-- Locked retention rules and their longest length.
CREATE TABLE archive_lock (
    name text    PRIMARY KEY,
    days integer NOT NULL
);
