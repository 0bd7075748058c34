package db

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrKeyReused is returned by AppendOnce when the idempotency key was first
// used with a different request.
var ErrKeyReused = errors.New("idempotency key was used with a different request")

// keysPrunedPerAppend bounds how many expired idempotency keys one
// AppendOnce deletes, so the table stays small without a background job.
const keysPrunedPerAppend = 100

// Once makes an append idempotent: the first request with Key stores its
// answer, and a retry with the same Hash within TTL gets that answer again.
type Once struct {
	Key  string
	Hash []byte // a digest of the request
	TTL  time.Duration
	// Render builds the answer to keep from the created events.
	Render func([]Event) ([]byte, error)
}

// AppendOnce is Append guarded by an idempotency key, in one transaction:
// if the key is new it appends evs and keeps the rendered answer; if it was
// seen with the same hash it appends nothing and returns the kept answer
// with created false; with another hash it fails with ErrKeyReused. The
// single writer serialises concurrent duplicates, so exactly one appends.
func (db *DB) AppendOnce(ctx context.Context, once Once, evs []NewEvent, now time.Time) (answer []byte, created bool, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("begin append: %w", err)
	}
	defer tx.Rollback()

	expired := now.Add(-once.TTL).UnixMilli()
	var hash []byte
	err = tx.QueryRowContext(ctx,
		"SELECT request_hash, response FROM idempotency_keys WHERE key = ? AND created_at >= ?",
		once.Key, expired).Scan(&hash, &answer)
	switch {
	case err == nil && bytes.Equal(hash, once.Hash):
		return answer, false, nil
	case err == nil:
		return nil, false, ErrKeyReused
	case !errors.Is(err, sql.ErrNoRows):
		return nil, false, fmt.Errorf("look up idempotency key: %w", err)
	}

	out, err := insertEvents(ctx, tx, evs, now)
	if err != nil {
		return nil, false, err
	}
	if answer, err = once.Render(out); err != nil {
		return nil, false, fmt.Errorf("render answer: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT OR REPLACE INTO idempotency_keys (key, request_hash, response, created_at) VALUES (?, ?, ?, ?)",
		once.Key, once.Hash, answer, now.UnixMilli()); err != nil {
		return nil, false, fmt.Errorf("keep idempotency key: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		"DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
		expired, keysPrunedPerAppend); err != nil {
		return nil, false, fmt.Errorf("prune idempotency keys: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("commit append: %w", err)
	}
	return answer, true, nil
}
