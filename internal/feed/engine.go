// Package feed is feedd's delivery engine, free of any transport: the
// committer that groups publishes into shared transactions, the tailer
// that reads each new row of the log once, the hub that hands rows to the
// open feeds they are for, retention, and the Subscription that keeps
// every promise a feed makes (register first, replay in pages, gap
// notices, the seam by id, overflow catch-up) and hands out ready-encoded
// Server-Sent Events bytes. It declares the Store it needs.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/feedd/feedd/internal/db"
)

// Options tune an Engine. Zero fields take the defaults noted.
type Options struct {
	// PollInterval is how often the tailer looks for rows other processes
	// wrote; default 100ms.
	PollInterval time.Duration
	// Retention deletes events older than it; 0 keeps everything.
	Retention time.Duration
	// Hub bounds the open feeds and what each may have queued.
	Hub HubOptions
	// Metrics counts what the engine does; nil counts nothing.
	Metrics Metrics
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// listener is a store that can tell the engine at once when another
// process committed rows (PostgreSQL's LISTEN/NOTIFY); the tailer's poll
// stays the safety net for wake-ups that are lost.
type listener interface {
	Listen(ctx context.Context, wake func())
}

// upkeepEvery is how often the engine runs the store's upkeep (see
// Store.Maintain).
const upkeepEvery = time.Second

// Engine delivers a log's notifications to subscriptions. Run starts its
// background work (the committer, the tailer, the store's upkeep and
// retention); Close stops it and Wait waits for it to end.
type Engine struct {
	store   Store
	opts    Options
	log     *slog.Logger
	metrics Metrics
	now     func() time.Time

	hub       *hub
	tailer    *tailer
	committer *committer

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// NewEngine returns an engine over store. It does nothing until Run.
func NewEngine(store Store, opts Options) *Engine {
	e := &Engine{store: store, opts: opts, log: opts.Logger, metrics: opts.Metrics, now: opts.Now}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.metrics == nil {
		e.metrics = uncounted{}
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.opts.PollInterval <= 0 {
		e.opts.PollInterval = 100 * time.Millisecond
	}
	e.hub = newHub(opts.Hub)
	e.tailer = newTailer(store, e.hub, e.opts.PollInterval, e.log, e.metrics)
	e.committer = newCommitter(store, e.tailer, e.metrics, e.now)
	return e
}

// Run makes the store ready (see Store.Start: a store that cannot be
// written yet is logged, and publishes fail until its upkeep finds it
// writable), then starts the engine's background work, which goes on until
// ctx ends or Close.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.store.Start(ctx, e.now()); err != nil {
		if _, ok := errors.AsType[*db.StorageError](err); !ok {
			return err
		}
		e.log.Warn("the database cannot be written; publishes answer 503 until it can", "err", err)
	}
	last, err := e.store.LastID(ctx)
	if err != nil {
		return fmt.Errorf("start the tailer: %w", err)
	}
	ctx, e.stop = context.WithCancel(ctx)
	e.wg.Go(func() { e.tailer.run(ctx, last) })
	e.wg.Go(func() { e.committer.run(ctx) })
	e.wg.Go(func() { e.upkeep(ctx) })
	if l, ok := e.store.(listener); ok {
		e.wg.Go(func() { l.Listen(ctx, e.tailer.wakeUp) })
	}
	if e.opts.Retention > 0 {
		e.wg.Go(func() { prune(ctx, e.store, e.opts.Retention, e.now, e.log) })
	}
	return nil
}

// Close stops the background work: the committer commits what is queued,
// and later publishes fail with ErrStopped. Safe to call more than once,
// and before Run.
func (e *Engine) Close() {
	if e.stop != nil {
		e.stop()
	}
}

// Wait waits until the background work has ended after Close.
func (e *Engine) Wait() { e.wg.Wait() }

// Publish appends p with the next group commit and returns once it is
// committed (then p.Err tells whether p itself was appended) or the commit
// failed. A client that leaves meanwhile does not undo it.
func (e *Engine) Publish(ctx context.Context, p *db.Publish) error {
	return e.committer.publish(ctx, p)
}

// upkeep runs the store's upkeep every upkeepEvery, and once more at the
// stop, logging when writes stop or start working again.
func (e *Engine) upkeep(ctx context.Context) {
	tick := time.NewTicker(upkeepEvery)
	defer tick.Stop()
	var fault error
	for {
		select {
		case <-ctx.Done():
			// The last heartbeat, at the stop: a restore then skips no
			// more ids than the time since asks for.
			if err := e.store.Maintain(context.WithoutCancel(ctx), e.now()); err != nil {
				e.log.Warn("could not record the stop in the database", "err", err)
			}
			return
		case <-tick.C:
		}
		err := e.store.Maintain(ctx, e.now())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && fault == nil:
			e.log.Error("the database cannot be written; publishes answer 503 and /readyz is not ready until it can", "err", err)
		case err == nil && fault != nil:
			e.log.Info("the database can be written again; ready")
		}
		fault = err
	}
}
