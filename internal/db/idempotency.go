package db

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrKeyReused is a publish whose idempotency key was first used with a
// different request.
var ErrKeyReused = errors.New("idempotency key was used with a different request")

// keysPrunedPerAppend bounds how many expired idempotency keys one keyed
// publish deletes, so the table stays small without a background job.
const keysPrunedPerAppend = 100

// Once makes a publish idempotent: the first request with Key is appended
// and what it created is kept; a retry with the same Hash within TTL
// appends nothing and gets the same events again (Publish.Replayed); a
// request with the same Key and another Hash fails with ErrKeyReused. The
// single writer serialises concurrent duplicates, so exactly one appends.
type Once struct {
	Key  string
	Hash []byte // a digest of the request
	TTL  time.Duration
}

// kept is what the log keeps of a keyed publish: the ids it created and
// their creation time, enough, with the request's own events, to give a
// retry the same events.
type kept struct {
	IDs       []int64 `json:"ids"`
	CreatedAt int64   `json:"created_at"` // ms since the epoch
}

// checkOnce looks up the key of p inside tx. It reports whether p is a
// retry, filling in p.Created as first created, or fails with ErrKeyReused.
func checkOnce(ctx context.Context, tx *sql.Tx, p *Publish, now time.Time) (retry bool, err error) {
	var hash, answer []byte
	err = tx.QueryRowContext(ctx,
		"SELECT request_hash, response FROM idempotency_keys WHERE key = ? AND created_at >= ?",
		p.Once.Key, now.Add(-p.Once.TTL).UnixMilli()).Scan(&hash, &answer)
	switch {
	case err == nil && bytes.Equal(hash, p.Once.Hash):
		created, err := replay(p.Events, answer)
		if err != nil {
			return false, fmt.Errorf("read idempotency key: %w", err)
		}
		p.Created, p.Replayed = created, true
		return true, nil
	case err == nil:
		return false, ErrKeyReused
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return false, nil
}

// replay rebuilds the events a keyed publish of evs created from what was
// kept of it. Keys kept by feedd before version 3 of the schema hold the
// rendered answer, {"events":[{"id":..,"created_at":"RFC 3339"},...]}.
func replay(evs []NewEvent, answer []byte) ([]Event, error) {
	var k kept
	if err := json.Unmarshal(answer, &k); err != nil || k.IDs == nil {
		var old struct {
			Events []struct {
				ID        int64     `json:"id"`
				CreatedAt time.Time `json:"created_at"`
			} `json:"events"`
		}
		if err := json.Unmarshal(answer, &old); err != nil || len(old.Events) == 0 {
			return nil, errors.New("kept answer is unreadable")
		}
		k.CreatedAt = old.Events[0].CreatedAt.UnixMilli()
		for _, e := range old.Events {
			k.IDs = append(k.IDs, e.ID)
		}
	}
	if len(k.IDs) != len(evs) {
		return nil, fmt.Errorf("kept %d ids for %d events", len(k.IDs), len(evs))
	}
	created := time.UnixMilli(k.CreatedAt).UTC()
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = Event{ID: k.IDs[i], UserID: e.UserID, Type: e.Type, Data: e.Data, DataJSON: e.DataJSON, CreatedAt: created}
	}
	return out, nil
}

// keptAnswer encodes what is kept of p, created at now.
func keptAnswer(p *Publish, now time.Time) ([]byte, error) {
	k := kept{IDs: make([]int64, len(p.Created)), CreatedAt: now.UnixMilli()}
	for i, e := range p.Created {
		k.IDs[i] = e.ID
	}
	answer, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("keep idempotency key: %w", err)
	}
	return answer, nil
}

// keepOnce stores what p created under its key inside tx and deletes a few
// expired keys.
func keepOnce(ctx context.Context, tx *sql.Tx, p *Publish, now time.Time) error {
	answer, err := keptAnswer(p, now)
	if err != nil {
		return err
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
	return nil
}
