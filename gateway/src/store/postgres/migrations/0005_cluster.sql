-- Schema version 4: the nodes of a cluster, and which node works each
-- queued message. Nothing here is message content: node names, numbers,
-- times, versions, configuration hashes, counters.

-- Every node that ever started on this database. `number` goes into the
-- queue ids the node makes (1..63, so two nodes never make the same id);
-- a name keeps its number. `retry_asked` is raised by `queue retry --all`
-- on any node; each node polls its own row and retries its mail.
CREATE TABLE nodes (
    node           text        PRIMARY KEY,
    number         smallint    NOT NULL UNIQUE CHECK (number BETWEEN 1 AND 63),
    started        timestamptz NOT NULL,
    last_heartbeat timestamptz NOT NULL,
    version        text        NOT NULL,
    config_hash    text        NOT NULL,
    index_seq      bigint      NOT NULL DEFAULT 0,
    retry_asked    bigint      NOT NULL DEFAULT 0
);

-- The node working each queued message and until when its claim holds
-- without renewal (the database's clock, never a node's). Messages queued
-- before this version belong to no node and are taken by the first.
ALTER TABLE spool_message
    ADD COLUMN owner       text        NOT NULL DEFAULT '',
    ADD COLUMN lease_until timestamptz NOT NULL DEFAULT '-infinity';
CREATE INDEX spool_message_owner ON spool_message (owner);
CREATE INDEX spool_message_lease ON spool_message (lease_until);
