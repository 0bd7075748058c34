package db

import (
	"context"
	"math"
	"slices"
	"strconv"
)

// queries are the SELECTs of events, built once per DB because they carry
// its data size limit as a literal: rows whose data_bytes is over it are
// left out of feeds and listings, and read without their data where they
// are read at all, so that a huge row inserted with SQL costs no feed a
// copy of it.
type queries struct {
	feed, feedLatest, after, listAll, listUser, get string
}

func newQueries(maxDataBytes int64) queries {
	if maxDataBytes <= 0 {
		maxDataBytes = math.MaxInt64
	}
	limit := strconv.FormatInt(maxDataBytes, 10)
	columns := "id, user_id, type, CASE WHEN data_bytes <= " + limit + " THEN data END, data_json, created_at"
	fits := " AND data_bytes <= " + limit
	// A user's feed: its own rows and the broadcasts, each half a range of
	// the (user_id, id) index, merged by id as SQLite streams them, so
	// neither half is sorted nor read past the LIMIT. ?1 user, ?2 after,
	// ?3 before, ?4 limit.
	feed := `
SELECT ` + columns + ` FROM events WHERE user_id = ?1 AND id > ?2 AND id < ?3` + fits + `
UNION ALL
SELECT ` + columns + ` FROM events WHERE user_id IS NULL AND id > ?2 AND id < ?3` + fits + `
ORDER BY id`
	return queries{
		feed:       feed + " LIMIT ?4",
		feedLatest: feed + " DESC LIMIT ?4",
		after:      "SELECT " + columns + " FROM events WHERE id > ? ORDER BY id LIMIT ?",
		listAll:    "SELECT " + columns + " FROM events WHERE id > ? AND id < ?" + fits + " ORDER BY id LIMIT ?",
		listUser:   "SELECT " + columns + " FROM events WHERE user_id = ? AND id > ? AND id < ?" + fits + " ORDER BY id LIMIT ?",
		get:        "SELECT " + columns + " FROM events WHERE id = ?",
	}
}

// reads are the reads of events both stores share: the queries, and the
// store's function that runs one and scans its rows.
type reads struct {
	sql   queries
	query func(ctx context.Context, q string, sizeHint int, args ...any) ([]Event, error)
}

// Feed returns the events a user's feed carries (addressed to the user, or
// broadcast) inside r, oldest first.
func (rd reads) Feed(ctx context.Context, userID string, r Range) ([]Event, error) {
	after, before, limit := r.bounds()
	return rd.query(ctx, rd.sql.feed, limit, userID, after, before, limit)
}

// FeedLatest is Feed for the newest events inside r: the last Limit of them,
// still returned oldest first.
func (rd reads) FeedLatest(ctx context.Context, userID string, r Range) ([]Event, error) {
	after, before, limit := r.bounds()
	evs, err := rd.query(ctx, rd.sql.feedLatest, limit, userID, after, before, limit)
	slices.Reverse(evs)
	return evs, err
}

// Tail returns every event of the log with id > after, oldest first, at
// most limit of them, rows too large to send included (marked TooLarge).
// The tailer reads new rows with it.
func (rd reads) Tail(ctx context.Context, after int64, limit int) ([]Event, error) {
	return rd.query(ctx, rd.sql.after, limit, after, limit)
}

// List returns the events addressed to userID inside r, oldest first; with
// userID "" it lists the whole log, broadcasts included.
func (rd reads) List(ctx context.Context, userID string, r Range) ([]Event, error) {
	after, before, limit := r.bounds()
	if userID == "" {
		return rd.query(ctx, rd.sql.listAll, limit, after, before, limit)
	}
	return rd.query(ctx, rd.sql.listUser, limit, userID, after, before, limit)
}

// Get returns one event, or ErrNotFound.
func (rd reads) Get(ctx context.Context, id int64) (Event, error) {
	evs, err := rd.query(ctx, rd.sql.get, 1, id)
	if err != nil {
		return Event{}, err
	}
	if len(evs) == 0 {
		return Event{}, ErrNotFound
	}
	return evs[0], nil
}
