-- feedd's log on PostgreSQL, for many feedd processes on one database. The
-- same tables as on SQLite, with the same rules for what other programs
-- insert, plus what keeps one order across processes and transactions.
--
-- Ids: a trigger gives each new row its id, after taking a lock that every
-- inserting transaction takes and keeps until it ends (a transaction-scoped
-- advisory lock). So ids are handed out in commit order: a transaction that
-- took id 10 has committed, or rolled back, before any other can take id
-- 11, and a reader that has seen 11 can never later find 10 appearing. An
-- id set by the inserter is replaced. The sequence has no cache, and ids
-- that a rolled-back transaction took are never reused.
--
-- Data with a NUL byte (which the API accepts in JSON strings, and SSE
-- carries) is kept in data_nul, as bytes, since text cannot hold a NUL.
--
-- A statement-level trigger notifies channel feedd_events at commit, so
-- that every feedd process reads new rows at once.

-- +goose Up
CREATE SEQUENCE events_id_seq AS bigint CACHE 1;

CREATE TABLE events (
    id         bigint  PRIMARY KEY,
    user_id    text    CONSTRAINT user_id_is_1_to_255_bytes
               CHECK (user_id IS NULL OR octet_length(user_id) BETWEEN 1 AND 255),
    type       text    NOT NULL DEFAULT 'message' CONSTRAINT type_is_an_event_type
               CHECK (type ~ '^[A-Za-z0-9._:-]{1,64}$' AND type NOT LIKE 'feed.%'),
    data       text    NOT NULL,
    -- data that holds a NUL, which PostgreSQL's text cannot: then data is ''
    data_nul   bytea   CONSTRAINT data_nul_replaces_data CHECK (data_nul IS NULL OR data = ''),
    data_json  boolean NOT NULL DEFAULT false,
    created_at bigint  NOT NULL DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint,
    data_bytes integer GENERATED ALWAYS AS (coalesce(octet_length(data_nul), octet_length(data))) STORED
);

-- Serves "user_id = $1 AND id > $2 ORDER BY id" for a user and, with
-- "user_id IS NULL", for broadcasts.
CREATE INDEX events_user_id_id ON events (user_id, id);
CREATE INDEX events_created_at ON events (created_at);

-- +goose StatementBegin
CREATE FUNCTION feedd_assign_event_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- 7716 is feedd's lock: every inserting transaction holds it to its end.
    PERFORM pg_advisory_xact_lock(7716);
    NEW.id := nextval('events_id_seq');
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER events_assign_id BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION feedd_assign_event_id();

-- +goose StatementBegin
CREATE FUNCTION feedd_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('feedd_events', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION feedd_notify_events();

CREATE TABLE idempotency_keys (
    key          text   PRIMARY KEY,
    request_hash bytea  NOT NULL,
    response     bytea  NOT NULL,
    created_at   bigint NOT NULL
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- pruned_through: the highest id retention deleted; active_at: the last
-- time (ms) a feedd process was known to use the database.
CREATE TABLE meta (
    key   text   PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO meta (key, value) VALUES ('pruned_through', 0), ('active_at', 0);

CREATE TABLE id_gaps (
    after_id bigint PRIMARY KEY,
    next_id  bigint NOT NULL,
    made_at  bigint NOT NULL
);

-- +goose Down
DROP TABLE id_gaps;
DROP TABLE meta;
DROP TABLE idempotency_keys;
DROP TABLE events;
DROP FUNCTION feedd_notify_events();
DROP FUNCTION feedd_assign_event_id();
DROP SEQUENCE events_id_seq;
