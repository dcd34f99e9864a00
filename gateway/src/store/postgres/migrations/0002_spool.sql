-- Schema version 2: the spool's tables. Everything that holds message
-- content or a subject (chunks, records, inspections, sealed copies) is
-- sealed by Sealgate with the spool keyring before it is written; only
-- ids, sizes, chunk numbers and the receiving node are in clear.

-- Message bytes in chunks, stored while a message is received (by `node`)
-- and part of the queue once its envelope is in `spool_message`.
CREATE TABLE spool_chunk (
    id   bigint  NOT NULL,
    n    integer NOT NULL,
    node text    NOT NULL,
    data bytea   NOT NULL,
    PRIMARY KEY (id, n)
);
ALTER TABLE spool_chunk ALTER COLUMN data SET STORAGE EXTERNAL;

-- Queued messages: the envelope record (sealed) and its size.
CREATE TABLE spool_message (
    id     bigint PRIMARY KEY,
    size   bigint NOT NULL,
    record bytea  NOT NULL
);

-- What the inspect stage found (sealed); goes with its message.
CREATE TABLE spool_inspection (
    id     bigint PRIMARY KEY REFERENCES spool_message ON DELETE CASCADE,
    record bytea NOT NULL
);

-- Sealed copies per recipient (sealed again at rest); go with their message.
CREATE TABLE spool_sealed (
    id   bigint  NOT NULL REFERENCES spool_message ON DELETE CASCADE,
    idx  integer NOT NULL,
    data bytea   NOT NULL,
    PRIMARY KEY (id, idx)
);
ALTER TABLE spool_sealed ALTER COLUMN data SET STORAGE EXTERNAL;

-- Records of finished messages (sealed).
CREATE TABLE spool_done (
    id     bigint PRIMARY KEY,
    record bytea  NOT NULL
);
