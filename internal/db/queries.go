package db

import (
	"math"
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
