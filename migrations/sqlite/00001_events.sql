-- The notification log. Rows are only appended (and pruned by retention or an
-- admin delete); ids come from AUTOINCREMENT so a deleted id is never reused.
--
-- Applications may insert rows themselves: set user_id (NULL for a broadcast),
-- type, data and, when data holds JSON rather than a plain string, data_json = 1.
-- id and created_at fill themselves in.

-- +goose Up
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT CHECK (user_id IS NULL OR length(CAST(user_id AS BLOB)) BETWEEN 1 AND 255),
    type       TEXT    NOT NULL DEFAULT 'message' CHECK (length(type) BETWEEN 1 AND 64),
    data       TEXT    NOT NULL,
    data_json  INTEGER NOT NULL DEFAULT 0 CHECK (data_json IN (0, 1)),
    created_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);

-- Serves "user_id = ? AND id > ? ORDER BY id" for a user and, with
-- "user_id IS NULL", for broadcasts, both without a sort.
CREATE INDEX events_user_id_id ON events (user_id, id);

-- +goose Down
DROP TABLE events;
