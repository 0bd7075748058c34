-- Idempotency keys of admin publishes: the first answer to a key is kept
-- (for 24 hours) so that a retry gets it again instead of publishing twice.
--
-- meta holds small server state; pruned_through is the highest id retention
-- has deleted, so that a feed resuming from before it can be told.

-- +goose Up
CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    request_hash BLOB    NOT NULL,
    response     BLOB    NOT NULL,
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

CREATE TABLE meta (
    key   TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('pruned_through', 0);

-- +goose Down
DROP TABLE meta;
DROP TABLE idempotency_keys;
