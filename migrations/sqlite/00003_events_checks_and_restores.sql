-- The events table again, so that what other programs insert with SQL is
-- held to what the API accepts, and so that it works with older SQLite:
--
-- * created_at defaults to the time in milliseconds since the Unix epoch,
--   computed with julianday(), which every SQLite has; the first version's
--   unixepoch('subsec') needs 3.42, and Debian 12's sqlite3 shell and
--   Python's sqlite3 module are 3.40.
-- * type must be an event type as the API takes it: 1 to 64 of
--   A-Za-z0-9._:- and not starting with "feed.", which the server keeps for
--   the events it sends itself (feed.truncated, feed.reset); a NUL ends
--   text for SQLite's functions, so the byte length must match too. A row with
--   another type was never delivered, or was delivered as if the server had
--   sent it; such rows are not copied (their ids stay used).
-- * data_bytes is the size of data, kept with the row, so that a feed can
--   leave out a row too large to send without reading its data.
--
-- meta.active_at is the last time (ms) a feedd server was known to be using
-- this database; id_gaps lists the ids a server skipped at start because a
-- lost copy of this database may have issued them (see README, "Backups and
-- restores").

-- +goose Up
CREATE TABLE events_v3 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT CONSTRAINT user_id_is_1_to_255_bytes
               CHECK (user_id IS NULL OR length(CAST(user_id AS BLOB)) BETWEEN 1 AND 255),
    type       TEXT    NOT NULL DEFAULT 'message' CONSTRAINT type_is_an_event_type
               CHECK (length(type) BETWEEN 1 AND 64
                      AND length(CAST(type AS BLOB)) = length(type)
                      AND type NOT GLOB '*[^A-Za-z0-9._:-]*'
                      AND substr(type, 1, 5) <> 'feed.'),
    data       TEXT    NOT NULL,
    data_json  INTEGER NOT NULL DEFAULT 0 CONSTRAINT data_json_is_0_or_1 CHECK (data_json IN (0, 1)),
    created_at INTEGER NOT NULL DEFAULT (CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)),
    data_bytes INTEGER GENERATED ALWAYS AS (length(CAST(data AS BLOB))) STORED
);

INSERT INTO events_v3 (id, user_id, type, data, data_json, created_at)
SELECT id, user_id, type, data, data_json, created_at FROM events
WHERE length(type) BETWEEN 1 AND 64
  AND length(CAST(type AS BLOB)) = length(type)
  AND type NOT GLOB '*[^A-Za-z0-9._:-]*'
  AND substr(type, 1, 5) <> 'feed.';

-- Keep the sequence: ids deleted or left out above are never issued again.
DELETE FROM sqlite_sequence WHERE name = 'events_v3';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'events_v3', seq FROM sqlite_sequence WHERE name = 'events';

DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE INDEX events_user_id_id ON events (user_id, id);

INSERT INTO meta (key, value) VALUES ('active_at', COALESCE((SELECT MAX(created_at) FROM events), 0));

CREATE TABLE id_gaps (
    after_id INTEGER PRIMARY KEY,
    next_id  INTEGER NOT NULL,
    made_at  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE id_gaps;
DELETE FROM meta WHERE key = 'active_at';

CREATE TABLE events_v2 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT CHECK (user_id IS NULL OR length(CAST(user_id AS BLOB)) BETWEEN 1 AND 255),
    type       TEXT    NOT NULL DEFAULT 'message' CHECK (length(type) BETWEEN 1 AND 64),
    data       TEXT    NOT NULL,
    data_json  INTEGER NOT NULL DEFAULT 0 CHECK (data_json IN (0, 1)),
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
INSERT INTO events_v2 (id, user_id, type, data, data_json, created_at)
SELECT id, user_id, type, data, data_json, created_at FROM events;
DELETE FROM sqlite_sequence WHERE name = 'events_v2';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'events_v2', seq FROM sqlite_sequence WHERE name = 'events';
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
CREATE INDEX events_user_id_id ON events (user_id, id);
