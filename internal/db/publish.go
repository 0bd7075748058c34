package db

import (
	"context"
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
	stmts, err := db.insertStmts(ctx)
	if err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin append: %w", err)
	}
	defer tx.Rollback()
	ins := &inserter{tx: tx, stmts: stmts, now: now}
	defer ins.close()

	// The publishes without a key go in together, in as few statements as
	// their events need. Should that fail, they go in one by one below, so
	// that only the one at fault fails.
	together := 0
	for _, p := range ps {
		if p.Once == nil {
			together++
		}
	}
	done := together > 1 && appendTogether(ctx, ins, ps) == nil
	for _, p := range ps {
		if done && p.Once == nil {
			continue
		}
		if p.Err = applyPublish(ctx, ins, p); p.Err != nil {
			p.Created, p.Answer = nil, nil
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit append: %w", err)
	}
	return nil
}

// appendTogether inserts the events of every publish without a key inside
// one savepoint, and hands each publish its own. On an error nothing of
// them is left.
func appendTogether(ctx context.Context, ins *inserter, ps []*Publish) error {
	if _, err := ins.tx.ExecContext(ctx, "SAVEPOINT together"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	var evs []NewEvent
	for _, p := range ps {
		if p.Once == nil {
			evs = append(evs, p.Events...)
		}
	}
	created, err := ins.insert(ctx, evs)
	if err != nil {
		if _, rerr := ins.tx.ExecContext(ctx, "ROLLBACK TO together"); rerr != nil {
			return fmt.Errorf("%w (and rolling back: %v)", err, rerr)
		}
	} else {
		for _, p := range ps {
			if p.Once == nil {
				p.Created, created = created[:len(p.Events):len(p.Events)], created[len(p.Events):]
			}
		}
	}
	if _, rerr := ins.tx.ExecContext(ctx, "RELEASE together"); rerr != nil && err == nil {
		return fmt.Errorf("release savepoint: %w", rerr)
	}
	return err
}

// applyPublish applies one publish inside a savepoint of tx. A single
// event needs none: SQLite undoes a failed statement on its own.
func applyPublish(ctx context.Context, ins *inserter, p *Publish) error {
	tx, now := ins.tx, ins.now
	if len(p.Events) == 1 && p.Once == nil {
		created, err := ins.insert(ctx, p.Events)
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
		created, err := ins.insert(ctx, p.Events)
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
