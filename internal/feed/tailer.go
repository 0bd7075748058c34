package feed

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/sse"
)

// tailPage is how many rows the tailer reads per query.
const tailPage = 512

// Tailer reads each new row of the log once and hands it to the hub. It
// polls every interval, so rows that other processes insert are seen, and a
// local publish wakes it at once.
type Tailer struct {
	db       *db.DB
	hub      *Hub
	after    int64
	interval time.Duration
	log      *slog.Logger
	metrics  *Metrics
	wake     chan struct{}
	// committed carries rows this process has just committed, in commit
	// order (see Committed).
	committed chan []db.Event
}

// NewTailer returns a tailer that feeds hub from the rows after the id after
// (the newest row at start-up: feeds read older rows from the log). It
// records its polls in m; nil gives it metrics of its own.
func NewTailer(store *db.DB, hub *Hub, after int64, interval time.Duration, log *slog.Logger, m *Metrics) *Tailer {
	if m == nil {
		m = NewMetrics()
	}
	return &Tailer{db: store, hub: hub, after: after, interval: interval, log: log, metrics: m,
		wake: make(chan struct{}, 1), committed: make(chan []db.Event, 64)}
}

// Wake makes the tailer read new rows now instead of at its next poll.
func (t *Tailer) Wake() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Committed hands the tailer rows this process has just committed, in
// the order of their commits. When they are the very next rows of the log,
// the tailer dispatches them as they are, without reading them back;
// otherwise (another process wrote in between, or the hand-over queue is
// full) it reads the log as on a wake.
func (t *Tailer) Committed(evs []db.Event) {
	select {
	case t.committed <- evs:
	default:
		t.Wake()
	}
}

// Run polls until ctx is done.
func (t *Tailer) Run(ctx context.Context) {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	cursor := t.after
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
// database error it logs and leaves the cursor where the last good read
// left it, so the next poll retries.
func (t *Tailer) poll(ctx context.Context, cursor int64) int64 {
	start, read := time.Now(), 0
	defer func() { t.metrics.polled(start, read) }()
	for {
		rows, err := t.db.Tail(ctx, cursor, tailPage)
		if err != nil {
			if ctx.Err() == nil {
				t.log.Error("tailer read failed; retrying at the next poll", "after", cursor, "err", err)
			}
			return cursor
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
func (t *Tailer) dispatchNext(evs []db.Event, cursor int64) (int64, bool) {
	start := time.Now()
	slices.SortFunc(evs, func(a, b db.Event) int { return cmp.Compare(a.ID, b.ID) })
	for i, e := range evs {
		if e.ID != cursor+1+int64(i) {
			return cursor, false
		}
	}
	t.dispatch(evs)
	t.metrics.polled(start, len(evs))
	return cursor + int64(len(evs)), true
}

// dispatch encodes rows, each once, and hands them to the hub.
func (t *Tailer) dispatch(rows []db.Event) {
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

// encode appends the SSE encoding of a log row to dst, or fails, leaving
// dst as it was, for a row that must not be sent (see sendable).
func encode(dst []byte, e db.Event) ([]byte, error) {
	if err := sendable(e); err != nil {
		return dst, err
	}
	return sse.AppendEvent(dst, sse.Event{ID: strconv.FormatInt(e.ID, 10), Type: e.Type, Data: e.Data})
}

// sendable says why a log row must not be sent as an event, or returns nil.
// Rows the API writes can always be sent; the schema holds rows that other
// programs insert with SQL to the same rules. Should one slip through
// anyway, feeds skip it and listings leave it out, so the two agree, and
// no row can pass for an event the server sends itself (feed.*).
func sendable(e db.Event) error {
	switch {
	case e.TooLarge:
		return errors.New("its data is over --max-data-bytes")
	case e.Type == "" || len(e.Type) > maxTypeLen || !isTypeName(e.Type):
		return errors.New("its type is not an event type")
	case strings.HasPrefix(e.Type, reservedPrefix):
		return errors.New("its type starts with feed., which is reserved for the server")
	}
	return nil
}

// listable leaves out of evs, in place, the rows that feeds skip.
func listable(evs []db.Event) []db.Event {
	return slices.DeleteFunc(evs, func(e db.Event) bool { return sendable(e) != nil })
}
