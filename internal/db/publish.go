package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Publish is one publish request: events to append as a unit, optionally
// guarded by an idempotency key. AppendMany fills in the results.
type Publish struct {
	Events []NewEvent
	Once   *Once

	// Created are the appended events, with their ids; with Once and
	// Replayed, the events the first request with the key created.
	Created  []Event
	Replayed bool
	// Err is why this publish, and only it, was not appended.
	Err error
}

// AppendMany appends many publishes in one transaction, so that they share
// one commit (group commit). One that fails is undone alone and gets its
// Err, the others go on. AppendMany returns an error when the transaction
// as a whole fails; then none was appended. When it returns nil, every
// publish without Err is committed.
//
// The publishes without an idempotency key go in together, in as few
// statements as their events need. Should one of their rows be refused,
// the transaction is dropped and done again with each publish in a
// savepoint of its own, so that only the one at fault fails.
func (db *DB) AppendMany(ctx context.Context, ps []*Publish, now time.Time) error {
	if err := db.Health(); err != nil {
		return err
	}
	if err := db.appendMany(ctx, ps, now); err != nil {
		return db.fail(classify(err))
	}
	// Committed, but to the file the connections have open: if it was
	// removed (or replaced) meanwhile, the rows went with it. One check
	// after the commit covers both; the fault then stops the next
	// publishes before they write.
	if err := db.checkFile(); err != nil {
		return db.fail(err)
	}
	return nil
}

func (db *DB) appendMany(ctx context.Context, ps []*Publish, now time.Time) error {
	// Prepared before the transaction takes the one writer connection:
	// preparing on the pool afterwards would wait for it forever.
	stmts, err := db.insertStmts(ctx)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(ps, func(p *Publish) bool { return p.Once == nil }) {
		err := db.appendTx(ctx, stmts, ps, now, true)
		if !errors.Is(err, errRowRefused) {
			return err
		}
	}
	return db.appendTx(ctx, stmts, ps, now, false)
}

// errRowRefused is a row the log's constraints refused.
var errRowRefused = errors.New("a row was refused")

// appendTx is one try of AppendMany. together puts the publishes without
// a key in together; if one of their rows is refused, it returns
// errRowRefused and the transaction is rolled back.
func (db *DB) appendTx(ctx context.Context, stmts insertStmts, ps []*Publish, now time.Time, together bool) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin append: %w", err)
	}
	defer tx.Rollback()
	ins := &inserter{tx: tx, stmts: stmts, now: now}
	defer ins.close()

	if together {
		if err := appendTogether(ctx, ins, ps); err != nil {
			return err
		}
	}
	for _, p := range ps {
		if together && p.Once == nil {
			continue
		}
		if p.Err = classify(applyPublish(ctx, ins, p)); p.Err != nil {
			p.Created = nil
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit append: %w", err)
	}
	return nil
}

// appendTogether inserts the events of every publish without a key and
// hands each publish its own. It needs no savepoint: on an error the
// whole transaction is dropped.
func appendTogether(ctx context.Context, ins *inserter, ps []*Publish) error {
	var evs []NewEvent
	for _, p := range ps {
		if p.Once == nil {
			evs = append(evs, p.Events...)
		}
	}
	created, err := ins.insert(ctx, evs, ignoreInsert)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.Once == nil {
			p.Created, created = created[:len(p.Events):len(p.Events)], created[len(p.Events):]
			p.Err = nil
		}
	}
	return nil
}

// applyPublish applies one publish inside a savepoint of tx. A single
// event needs none: SQLite undoes a failed statement on its own.
func applyPublish(ctx context.Context, ins *inserter, p *Publish) error {
	tx, now := ins.tx, ins.now
	if len(p.Events) == 1 && p.Once == nil {
		created, err := ins.insert(ctx, p.Events, plainInsert)
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
		created, err := ins.insert(ctx, p.Events, plainInsert)
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
