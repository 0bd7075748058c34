package feed

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/feedd/feedd/internal/db"
)

// tailPage is how many rows the tailer reads per query.
const tailPage = 512

// tailer reads each new row of the log once and hands it to the hub. It
// polls every interval, so rows that other processes insert are seen, and a
// local commit hands its rows over at once.
type tailer struct {
	store    Store
	hub      *hub
	interval time.Duration
	log      *slog.Logger
	metrics  Metrics
	wake     chan struct{}
	// committed carries rows this process has just committed, in commit
	// order (see handOver).
	committed chan []db.Event
	// failing is set while reads fail, so that a database that is down
	// is logged once, not at every poll.
	failing bool
}

func newTailer(store Store, hub *hub, interval time.Duration, log *slog.Logger, m Metrics) *tailer {
	return &tailer{store: store, hub: hub, interval: interval, log: log, metrics: m,
		wake: make(chan struct{}, 1), committed: make(chan []db.Event, 64)}
}

// wakeUp makes the tailer read new rows now instead of at its next poll.
func (t *tailer) wakeUp() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// handOver gives the tailer rows this process has just committed, in the
// order of their commits. When they are the very next rows of the log, the
// tailer dispatches them as they are, without reading them back; otherwise
// (another process wrote in between, or the hand-over queue is full) it
// reads the log as on a wake.
func (t *tailer) handOver(evs []db.Event) {
	select {
	case t.committed <- evs:
	default:
		t.wakeUp()
	}
}

// run dispatches the rows after cursor (the newest row at start-up: feeds
// read older rows from the log) until ctx is done.
func (t *tailer) run(ctx context.Context, cursor int64) {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.wake:
		case evs := <-t.committed:
			if next, ok := t.dispatchNext(evs, cursor); ok {
				cursor = next
				continue
			}
		}
		cursor = t.poll(ctx, cursor)
	}
}

// poll dispatches every row after cursor and returns the new cursor. On a
// database error it leaves the cursor where the last good read left it, so
// the next poll retries, and logs the first failure and the recovery.
func (t *tailer) poll(ctx context.Context, cursor int64) int64 {
	start, read := time.Now(), 0
	defer func() { t.metrics.Polled(time.Since(start), read) }()
	for {
		rows, err := t.store.Tail(ctx, cursor, tailPage)
		if err != nil {
			if ctx.Err() == nil && !t.failing {
				t.log.Error("tailer read failed; retrying at every poll", "after", cursor, "err", err)
			}
			t.failing = ctx.Err() == nil
			return cursor
		}
		if t.failing {
			t.log.Info("tailer reads again", "after", cursor)
			t.failing = false
		}
		if len(rows) == 0 {
			return cursor
		}
		read += len(rows)
		t.dispatch(rows)
		cursor = rows[len(rows)-1].ID
		if len(rows) < tailPage {
			return cursor
		}
	}
}

// dispatchNext dispatches evs, rows committed by this process, if they are
// exactly the rows that follow cursor in the log: the ids cursor+1, +2, ...
// with none missing. Then no other row can come before or between them, and
// it returns the new cursor. Otherwise it dispatches nothing.
func (t *tailer) dispatchNext(evs []db.Event, cursor int64) (int64, bool) {
	start := time.Now()
	slices.SortFunc(evs, func(a, b db.Event) int { return cmp.Compare(a.ID, b.ID) })
	for i, e := range evs {
		if e.ID != cursor+1+int64(i) {
			return cursor, false
		}
	}
	t.dispatch(evs)
	t.metrics.Polled(time.Since(start), len(evs))
	return cursor + int64(len(evs)), true
}

// dispatch encodes rows, each once, and hands them to the hub.
func (t *tailer) dispatch(rows []db.Event) {
	ds := make([]*delivery, 0, len(rows))
	for _, e := range rows {
		wire, err := encode(nil, e)
		if err != nil {
			t.log.Warn("skipping a row that cannot be sent as an event; feeds and listings leave it out", "id", e.ID, "err", err)
			continue
		}
		ds = append(ds, &delivery{id: e.ID, userID: e.UserID, typ: e.Type, wire: wire, committed: e.CreatedAt})
	}
	t.hub.dispatch(ds)
}
