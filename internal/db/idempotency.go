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
	p := &Publish{Events: evs, Once: &once}
	if err := db.AppendMany(ctx, []*Publish{p}, now); err != nil {
		return nil, false, err
	}
	return p.Answer, !p.Replayed, p.Err
}

// checkOnce looks up the key of p inside tx. It reports whether p is a
// retry, filling in the kept answer, or fails with ErrKeyReused.
func checkOnce(ctx context.Context, tx *sql.Tx, p *Publish, now time.Time) (retry bool, err error) {
	var hash, answer []byte
	err = tx.QueryRowContext(ctx,
		"SELECT request_hash, response FROM idempotency_keys WHERE key = ? AND created_at >= ?",
		p.Once.Key, now.Add(-p.Once.TTL).UnixMilli()).Scan(&hash, &answer)
	switch {
	case err == nil && bytes.Equal(hash, p.Once.Hash):
		p.Answer, p.Replayed = answer, true
		return true, nil
	case err == nil:
		return false, ErrKeyReused
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return false, nil
}

// keepOnce stores the answer to p's key inside tx and deletes a few
// expired keys.
func keepOnce(ctx context.Context, tx *sql.Tx, p *Publish, now time.Time) error {
	answer, err := p.Once.Render(p.Created)
	if err != nil {
		return fmt.Errorf("render answer: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		"INSERT OR REPLACE INTO idempotency_keys (key, request_hash, response, created_at) VALUES (?, ?, ?, ?)",
		p.Once.Key, p.Once.Hash, answer, now.UnixMilli()); err != nil {
		return fmt.Errorf("keep idempotency key: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		"DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
		now.Add(-p.Once.TTL).UnixMilli(), keysPrunedPerAppend); err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	p.Answer = answer
	return nil
}
