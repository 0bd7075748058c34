package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Publish is one publish request: events to append as a unit, optionally
// guarded by an idempotency key. AppendMany fills in the results.
type Publish struct {
	Events []NewEvent
	Once   *Once

	// Created are the appended events, with their ids.
	Created []Event
	// Answer is, with Once, the answer kept for the key: the one rendered
	// now, or the first one when Replayed.
	Answer   []byte
	Replayed bool
	// Err is why this publish, and only it, was not appended.
	Err error
}

// AppendMany appends many publishes in one transaction, so that they share
// one commit (group commit). Each is applied inside a savepoint: one that
// fails is undone alone and gets its Err, the others go on. AppendMany
// returns an error when the transaction as a whole fails; then none was
// appended. When it returns nil, every publish without Err is committed.
func (db *DB) AppendMany(ctx context.Context, ps []*Publish, now time.Time) error {
	// Prepared before the transaction takes the one writer connection:
	// preparing on the pool afterwards would wait for it forever.
	insert, err := db.prepared(ctx, db.w,
		"INSERT INTO events (user_id, type, data, data_json, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id")
	if err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin append: %w", err)
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, insert)
	defer stmt.Close()

	for _, p := range ps {
		if p.Err = applyPublish(ctx, tx, stmt, p, now); p.Err != nil {
			p.Created, p.Answer = nil, nil
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit append: %w", err)
	}
	return nil
}

// applyPublish applies one publish inside a savepoint of tx. A single
// event needs none: SQLite undoes a failed statement on its own.
func applyPublish(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, p *Publish, now time.Time) error {
	if len(p.Events) == 1 && p.Once == nil {
		created, err := insertEvents(ctx, stmt, p.Events, now)
		p.Created = created
		return err
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT publish"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	err := func() error {
		if p.Once != nil {
			if retry, err := checkOnce(ctx, tx, p, now); retry || err != nil {
				return err
			}
		}
		created, err := insertEvents(ctx, stmt, p.Events, now)
		if err != nil {
			return err
		}
		p.Created = created
		if p.Once != nil {
			return keepOnce(ctx, tx, p, now)
		}
		return nil
	}()
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO publish"); rerr != nil {
			return fmt.Errorf("%w (and rolling back: %v)", err, rerr)
		}
	}
	if _, rerr := tx.ExecContext(ctx, "RELEASE publish"); rerr != nil && err == nil {
		return fmt.Errorf("release savepoint: %w", rerr)
	}
	return err
}
