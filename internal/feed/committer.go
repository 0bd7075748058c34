package feed

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/feedd/feedd/internal/db"
)

// maxGroup caps how many publishes share one transaction.
const maxGroup = 256

// maxYields caps how many times the committer yields to let a group grow.
const maxYields = 4

// ErrStopped is the answer to a publish that arrives after the engine
// stopped, during a shutdown.
var ErrStopped = errors.New("the server is shutting down")

// committer gives concurrent publishes a shared transaction (group commit):
// while one transaction commits, the publishes that arrive queue up and go
// together into the next. Each is still all-or-nothing on its own, and
// none is answered before its commit.
type committer struct {
	store   Store
	tailer  *tailer
	metrics Metrics
	now     func() time.Time
	in      chan *pendingPublish
	stopped chan struct{}
}

type pendingPublish struct {
	p    *db.Publish
	done chan error // the transaction's outcome; p.Err is the publish's own
}

// newCommitter returns a committer that appends to store and hands what it
// committed to tailer. It does nothing until run.
func newCommitter(store Store, tailer *tailer, m Metrics, now func() time.Time) *committer {
	return &committer{store: store, tailer: tailer, metrics: m, now: now,
		in: make(chan *pendingPublish, maxGroup*4), stopped: make(chan struct{})}
}

// run commits queued publishes until ctx is done, then commits what is
// still queued and returns.
func (c *committer) run(ctx context.Context) {
	defer close(c.stopped)
	group := make([]*pendingPublish, 0, maxGroup)
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case pp := <-c.in:
					c.commit(append(group[:0], pp))
				default:
					return
				}
			}
		case pp := <-c.in:
			group = append(group[:0], pp)
			// Let the handlers that are ready to publish queue up first:
			// on a busy server the group grows, and a commit costs about
			// the same for one publish as for dozens. While yielding
			// brings more, yield again (a few times at most); a lone
			// publish is committed at once.
			for range maxYields {
				runtime.Gosched()
				n := len(group)
				group = c.drain(group)
				if len(group) == n || len(group) == maxGroup {
					break
				}
			}
			c.commit(group)
		}
	}
}

// drain adds what is queued to group, up to maxGroup publishes.
func (c *committer) drain(group []*pendingPublish) []*pendingPublish {
	for len(group) < maxGroup {
		select {
		case pp := <-c.in:
			group = append(group, pp)
		default:
			return group
		}
	}
	return group
}

// commit appends a group in one transaction and answers each publish.
func (c *committer) commit(group []*pendingPublish) {
	ps := make([]*db.Publish, len(group))
	for i, pp := range group {
		ps[i] = pp.p
	}
	// Not the request's context: a client that leaves must not undo the
	// others' publishes. The write is bounded by SQLite's busy timeout.
	err := c.store.AppendMany(context.Background(), ps, c.now())
	if err == nil {
		var created []db.Event
		for _, p := range ps {
			created = append(created, p.Created...)
		}
		if len(created) > 0 {
			c.tailer.handOver(created)
		}
		c.metrics.Written(len(created))
	}
	for _, pp := range group {
		pp.done <- err
	}
}

// publish appends p with the next group and returns once it is committed
// (then p.Err tells whether p itself was appended) or the commit failed.
func (c *committer) publish(ctx context.Context, p *db.Publish) error {
	pp := &pendingPublish{p: p, done: make(chan error, 1)}
	select {
	case c.in <- pp:
	case <-c.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if the client leaves: the
	// publish may be committed.
	select {
	case err := <-pp.done:
		return err
	case <-c.stopped:
		// Run drains the queue before it closes stopped, so the answer is
		// already there unless this publish raced in after the drain.
		select {
		case err := <-pp.done:
			return err
		default:
			return ErrStopped
		}
	}
}
