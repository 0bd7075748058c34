package feed

import (
	"context"
	"time"

	"github.com/feedd/feedd/internal/db"
)

// Store is the log the engine keeps notifications in: internal/db's SQLite
// database, or any store that passes its contract suite.
type Store interface {
	// AppendMany appends publishes in one transaction (see db.DB).
	AppendMany(ctx context.Context, ps []*db.Publish, now time.Time) error
	// Tail returns the rows after an id, oldest first, for the tailer.
	Tail(ctx context.Context, after int64, limit int) ([]db.Event, error)
	// Feed returns a user's feed (own rows and broadcasts) in a range.
	Feed(ctx context.Context, userID string, r db.Range) ([]db.Event, error)
	// LastID returns the newest id in the log.
	LastID(ctx context.Context) (int64, error)
	// Bounds returns what a feed resuming after cursor must know.
	Bounds(ctx context.Context, cursor int64) (db.Bounds, error)
	// Prune deletes up to limit of the rows created before cutoff.
	Prune(ctx context.Context, cutoff time.Time, limit int) (int64, error)
	// Start makes the log ready for a server (see db.DB.Start).
	Start(ctx context.Context, now time.Time) error
	// Maintain is the store's upkeep, run about once a second.
	Maintain(ctx context.Context, now time.Time) error
}

// Metrics is told what the engine does, to count it; nil counts nothing.
type Metrics interface {
	// Written counts events committed through this engine.
	Written(events int)
	// Polled observes one read of new rows by the tailer.
	Polled(took time.Duration, rows int)
	// Delivered counts events that reached a client, and the commit
	// times of the live ones among them.
	Delivered(events int, committed []time.Time)
}

// uncounted is the Metrics of an engine given none.
type uncounted struct{}

func (uncounted) Written(int)                {}
func (uncounted) Polled(time.Duration, int)  {}
func (uncounted) Delivered(int, []time.Time) {}
