package feed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/sse"
)

// replayPage is how many rows a feed reads per query when it replays or
// catches up from the log.
const replayPage = 500

// writeChunk is how many encoded bytes a feed gathers before it writes
// them out, so that a catch-up of large events never sits whole in memory.
const writeChunk = 32 << 10

// maxTypesFilter caps how many types one feed may filter on.
const maxTypesFilter = 64

// feedConn is the state of one open feed, owned by its request goroutine.
type feedConn struct {
	s      *Server
	stream *sse.Stream
	sub    *subscriber
	userID string
	types  map[string]bool // nil: every type
	cursor int64           // id of the newest event handled (sent or filtered out)
	sent   int             // events written, for the log
	buf    []byte
	// pending counts the events gathered in buf, and lags holds the commit
	// times of those that are live, for the metrics.
	pending int
	lags    []time.Time
	spare   []*delivery
}

// events serves GET /events: an SSE feed of the token user's notifications,
// replayed from the log after the client's cursor, then live.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	claims, _ := auth.ClaimsFrom(r.Context())
	cursor, resume, err := parseCursor(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	types, err := parseTypes(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	sub, err := s.cfg.Hub.subscribe(claims.Subject)
	switch {
	case errors.Is(err, ErrTooManyFeeds):
		writeError(w, r, s.log, errorf(http.StatusTooManyRequests,
			"this user already has the maximum number of open feeds; close one and retry"))
		return
	case errors.Is(err, ErrServerFull):
		w.Header().Set("Retry-After", "5")
		writeError(w, r, s.log, errorf(http.StatusServiceUnavailable,
			"the server has its maximum number of open feeds; retry later"))
		return
	}
	f := &feedConn{s: s, sub: sub, userID: claims.Subject, types: types}
	ctx := r.Context()
	// What the feed needs of the log before it goes live is read before
	// the headers are sent: a feed that cannot read the log gets an error
	// status, which EventSource does not retry, instead of a stream that
	// ends at once and is reopened for ever.
	first, err := f.prepare(ctx, cursor, resume)
	if err != nil {
		s.cfg.Hub.unsubscribe(sub)
		if ctx.Err() != nil {
			setFeedEnd(w, endClientLeft, 0)
			return
		}
		writeError(w, r, s.log, err)
		return
	}
	f.stream, err = sse.NewStream(w, r, s.cfg.WriteTimeout)
	if err != nil {
		s.cfg.Hub.unsubscribe(sub)
		s.log.Debug("feed could not start", "err", err)
		return
	}
	s.metrics.feedOpened()
	reason := f.open(ctx, first)
	if reason == "" && r.ProtoMajor == 1 && f.detach(w, claims.ExpiresAt) {
		return
	}
	if reason == "" {
		reason = f.live(ctx, claims.ExpiresAt)
	}
	f.end(reason)
	setFeedEnd(w, reason, f.sent)
}

// setFeedEnd tells the access log how a feed served by w ended.
func setFeedEnd(w http.ResponseWriter, reason string, sent int) {
	if rec, ok := w.(*recorder); ok {
		rec.feedEnd, rec.feedEvents = reason, sent
	}
}

// end releases the feed's slot and counts it closed.
func (f *feedConn) end(reason string) {
	f.s.cfg.Hub.unsubscribe(f.sub)
	f.s.metrics.feedClosed(reason)
	f.s.log.Debug("feed ended", "reason", reason, "events", f.sent, "cursor", f.cursor)
}

// opening is what a feed sends before it goes live: a notice about its
// cursor, if it needs one, and the first page of its replay.
type opening struct {
	notice *sse.Event
	page   []db.Event
}

// prepare reads what the feed sends first and sets its cursor. The hub
// registered the feed before this point, so every row committed from now on
// will be queued for it. A live-only feed starts after the newest row
// committed so far; a resumed one first reads the log after its cursor.
// Either way the queue may also hold rows at or below the cursor, and the
// cursor drops them.
func (f *feedConn) prepare(ctx context.Context, cursor int64, resume bool) (opening, error) {
	if !resume {
		last, err := f.s.cfg.DB.LastID(ctx)
		f.cursor = last
		return opening{}, err
	}
	notice, cursor, err := f.s.gapNotice(ctx, cursor)
	if err != nil {
		return opening{}, err
	}
	f.cursor = cursor
	page, err := f.s.cfg.DB.Feed(ctx, f.userID, db.Range{After: cursor, Limit: replayPage})
	return opening{notice: notice, page: page}, err
}

// open sends what prepare read: the first write tells the client the feed
// is open (anything committed after it is certain to be delivered), then
// the notice and the replay. It returns why the feed ended if it did, or
// "" when the feed is ready to go live.
func (f *feedConn) open(ctx context.Context, first opening) string {
	if err := f.stream.Send(sse.Event{Retry: f.s.cfg.Retry}); err != nil {
		return f.failure(ctx, err)
	}
	if first.notice != nil {
		if err := f.stream.Send(*first.notice); err != nil {
			return f.failure(ctx, err)
		}
	}
	if err := f.replay(first.page); err != nil {
		return f.failure(ctx, err)
	}
	if len(first.page) == replayPage {
		if err := f.catchUp(ctx); err != nil {
			return f.failure(ctx, err)
		}
	}
	return ""
}

// live streams what the hub queues, with heartbeats, until the client
// leaves, the token expires or the server shuts down, and returns why the
// feed ended.
func (f *feedConn) live(ctx context.Context, exp time.Time) string {
	s := f.s
	expiry := time.NewTimer(exp.Sub(s.now()))
	defer expiry.Stop()
	heartbeat := time.NewTimer(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return endClientLeft
		case <-s.closing:
			return endShutdown
		case <-expiry.C:
			return endTokenExpired
		case <-heartbeat.C:
			if err := f.stream.Comment(""); err != nil {
				return f.failure(ctx, err)
			}
		case <-f.sub.wake:
			if err := f.deliverQueued(ctx); err != nil {
				return f.failure(ctx, err)
			}
		}
		heartbeat.Reset(s.cfg.Heartbeat)
	}
}

// failure names why a feed ended on err.
func (f *feedConn) failure(ctx context.Context, err error) string {
	var dbErr dbError
	switch {
	case ctx.Err() != nil:
		return endClientLeft
	case errors.As(err, &dbErr):
		f.s.log.Error("feed could not read the log", "err", err)
		return endDBError
	case errors.Is(err, os.ErrDeadlineExceeded):
		return endSlow
	}
	return endWriteFailed
}

// dbError marks a failed log read, as opposed to a failed write to the client.
type dbError struct{ error }

func (e dbError) Unwrap() error { return e.error }

// deliverQueued writes what the hub queued. If the queue overflowed the
// feed first catches up from the log by its cursor.
func (f *feedConn) deliverQueued(ctx context.Context) error {
	q, overflow := f.sub.take(f.spare)
	f.spare = q
	if overflow {
		if err := f.catchUp(ctx); err != nil {
			return err
		}
	}
	for _, d := range q {
		if d.id <= f.cursor {
			continue
		}
		f.cursor = d.id
		if f.wants(d.typ) {
			f.buf = append(f.buf, d.wire...)
			f.sent++
			f.pending++
			f.lags = append(f.lags, d.committed)
			if err := f.writeIfFull(); err != nil {
				return err
			}
		}
	}
	return f.flush()
}

// writeIfFull writes the gathered bytes once they reach writeChunk.
func (f *feedConn) writeIfFull() error {
	if len(f.buf) < writeChunk {
		return nil
	}
	return f.flush()
}

// flush writes what has been gathered, if anything. A buffer grown by
// large events is let go, so an idle feed keeps only a small one.
func (f *feedConn) flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	err := f.stream.WriteRaw(f.buf)
	if err == nil {
		f.s.metrics.sent(f.pending, f.lags)
	}
	f.buf, f.pending, f.lags = f.buf[:0], 0, f.lags[:0]
	if cap(f.buf) > 2*writeChunk {
		f.buf = nil
	}
	return err
}

// catchUp sends every event of the user's feed after the cursor, page by
// page, until the log has no more.
func (f *feedConn) catchUp(ctx context.Context) error {
	for {
		evs, err := f.s.cfg.DB.Feed(ctx, f.userID, db.Range{After: f.cursor, Limit: replayPage})
		if err != nil {
			return dbError{err}
		}
		if err := f.replay(evs); err != nil {
			return err
		}
		if len(evs) < replayPage {
			return nil
		}
	}
}

// replay sends one page read from the log.
func (f *feedConn) replay(evs []db.Event) error {
	for _, e := range evs {
		f.cursor = e.ID
		if !f.wants(e.Type) {
			continue
		}
		wire, err := encode(f.buf, e)
		if err != nil {
			continue // the tailer warned about it; listings leave it out too
		}
		f.buf = wire
		f.sent++
		f.pending++
		if err := f.writeIfFull(); err != nil {
			return err
		}
	}
	return f.flush()
}

// Events the server sends on its own when a resuming client's cursor does
// not lead straight on to the log's next event.
const (
	truncatedType = "feed.truncated" // retention deleted events after the cursor
	resetType     = "feed.reset"     // the cursor is beyond every id the log issued
)

// gapNotice tells a resuming client what its cursor cannot give it, and
// returns the cursor to replay from. If the cursor is beyond every id this
// log ever issued (the database was replaced without feedd knowing, by an
// older copy say), feed.reset names the log's newest id and the feed goes
// on after it, so that the events the log writes next are not taken for
// ones the client already has. If the cursor is an id that a lost copy of
// this database gave out (a backup was restored since; see db.Start), or
// retention deleted events after it, feed.truncated names the next id the
// log holds and why the events between are missing. Neither notice has an
// id, so the client's cursor moves only with the events it really receives.
func (s *Server) gapNotice(ctx context.Context, cursor int64) (*sse.Event, int64, error) {
	b, err := s.cfg.DB.Bounds(ctx, cursor)
	if err != nil {
		return nil, cursor, err
	}
	next := b.Next
	if next == 0 {
		next = b.Issued + 1 // nothing after the cursor yet: the next id the log will write
	}
	switch {
	case cursor > b.Issued:
		data := fmt.Sprintf(`{"last_event_id":%d,"newest_id":%d}`, cursor, b.Issued)
		return &sse.Event{Type: resetType, Data: data}, b.Issued, nil
	case b.Lost:
		data := fmt.Sprintf(`{"last_event_id":%d,"oldest_retained_id":%d,"reason":"restored"}`, cursor, next)
		return &sse.Event{Type: truncatedType, Data: data}, cursor, nil
	case cursor < b.PrunedThrough:
		data := fmt.Sprintf(`{"last_event_id":%d,"oldest_retained_id":%d,"reason":"retention"}`, cursor, next)
		return &sse.Event{Type: truncatedType, Data: data}, cursor, nil
	}
	return nil, cursor, nil
}

// wants reports whether the feed's types= filter lets typ through. The
// events the server itself sends (feed.*) are not filtered: they do not
// come from the log.
func (f *feedConn) wants(typ string) bool {
	return f.types == nil || f.types[typ]
}

// parseCursor reads the resume cursor: the Last-Event-ID header, else the
// last_event_id (or lastEventId) query parameter. An empty value is no cursor.
func parseCursor(r *http.Request) (cursor int64, ok bool, err error) {
	if vs := r.Header.Values("Last-Event-ID"); len(vs) > 0 {
		if len(vs) > 1 {
			return 0, false, errorf(http.StatusBadRequest, "Last-Event-ID is given %d times; give it once", len(vs))
		}
		if v := strings.TrimSpace(vs[0]); v != "" {
			return cursorValue("Last-Event-ID", v)
		}
	}
	q := r.URL.Query()
	for _, name := range []string{"last_event_id", "lastEventId"} {
		v, err := single(q, name)
		if err != nil {
			return 0, false, err
		}
		if v != "" {
			return cursorValue(name, v)
		}
	}
	return 0, false, nil
}

func cursorValue(name, v string) (int64, bool, error) {
	id, err := parseID(v)
	if err != nil {
		return 0, false, errorf(http.StatusBadRequest,
			"%s must be the id of an event (an integer from 0 to 9223372036854775807); use 0 to replay all history", name)
	}
	return id, true, nil
}

// parseTypes reads types=a,b. Absent or empty means every type.
func parseTypes(r *http.Request) (map[string]bool, error) {
	v, err := single(r.URL.Query(), "types")
	if err != nil || v == "" {
		return nil, err
	}
	names := strings.Split(v, ",")
	if len(names) > maxTypesFilter {
		return nil, errorf(http.StatusBadRequest, "types= lists %d types; the limit is %d", len(names), maxTypesFilter)
	}
	types := make(map[string]bool, len(names))
	for _, t := range names {
		if t == "" || len(t) > maxTypeLen || !isTypeName(t) {
			return nil, errorf(http.StatusBadRequest,
				"types= must be a comma-separated list of event types (letters, digits and . _ : -, up to %d characters each)", maxTypeLen)
		}
		types[t] = true
	}
	return types, nil
}
