package feed

import (
	"context"
	"fmt"
	"time"

	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/sse"
)

// replayPage is how many rows a subscription reads per query when it
// replays or catches up from the log.
const replayPage = 500

// WriteChunk is about how many bytes Next hands out at a time, so that a
// catch-up of large events never sits whole in memory.
const WriteChunk = 32 << 10

// Request is what a feed asks for.
type Request struct {
	UserID string
	// Cursor is the id of the last event the client has, when Resume is
	// set; without it the feed is live only.
	Cursor int64
	Resume bool
	// Types limits the feed to these event types; nil means every type.
	Types map[string]bool
}

// Subscription is one open feed. It keeps every delivery promise: it was
// registered with the hub before it read the log, so no row committed
// since is missed; it replays what the log holds after the cursor in
// pages, after a notice if events there are gone; it goes on with what
// the hub queues for it, dropping what the replay already sent (the seam,
// decided by id); and when its queue overflowed it catches up from the log
// by its cursor. It hands all that out as encoded SSE bytes, shared with
// other feeds where they can be. One goroutine at a time may use it.
type Subscription struct {
	e      *Engine
	sub    *subscriber
	userID string
	types  map[string]bool
	// cursor is the id of the newest event handled: sent, or filtered out.
	cursor int64

	notice []byte      // to send before anything else
	page   []db.Event  // replayed rows read but not yet handed out
	more   bool        // the log may hold more rows after page
	queue  []*delivery // live rows taken from the hub, from index next on
	next   int

	// What the last Next handed out, for Written: how many events, and
	// when the live ones among them were committed.
	handed int
	lags   []time.Time
}

// Subscribe opens a feed. It registers it with the hub first (failing with
// ErrTooManyFeeds or ErrServerFull), then reads what the feed sends before
// going live: for a resumed feed, the notice its cursor calls for and the
// first page of its replay; for a live-only one, where the log ends. So a
// log that cannot be read fails here, before a transport has answered.
func (e *Engine) Subscribe(ctx context.Context, req Request) (*Subscription, error) {
	sub, err := e.hub.subscribe(req.UserID)
	if err != nil {
		return nil, err
	}
	s := &Subscription{e: e, sub: sub, userID: req.UserID, types: req.Types}
	if err := s.prepare(ctx, req.Cursor, req.Resume); err != nil {
		e.hub.unsubscribe(sub)
		return nil, err
	}
	s.signal()
	return s, nil
}

// prepare sets the cursor and reads what the feed sends first. The queue
// may already hold rows at or below the cursor: the cursor drops them.
func (s *Subscription) prepare(ctx context.Context, cursor int64, resume bool) error {
	if !resume {
		last, err := s.e.store.LastID(ctx)
		s.cursor = last
		return err
	}
	b, err := s.e.store.Bounds(ctx, cursor)
	if err != nil {
		return err
	}
	s.cursor = cursor
	if notice := gapNotice(b, cursor); notice != nil {
		s.notice, _ = sse.AppendEvent(nil, *notice) // fixed type, no id: always encodable
		if notice.Type == resetType {
			s.cursor = b.Issued
		}
	}
	s.page, err = s.e.store.Feed(ctx, s.userID, db.Range{After: s.cursor, Limit: replayPage})
	s.more = len(s.page) == replayPage
	return err
}

// gapNotice is the event that tells a client resuming after cursor what
// its cursor cannot give it, or nil. If the cursor is beyond every id this
// log ever issued (the database was replaced without feedd knowing, by an
// older copy say), feed.reset names the log's newest id and the feed goes
// on after it, so that the events the log writes next are not taken for
// ones the client already has. If the cursor is an id that a lost copy of
// this database gave out (a backup was restored since; see db.DB.Start),
// or retention deleted events after it, feed.truncated names the next id
// the log holds and why the events between are missing. Neither has an
// id, so the client's cursor moves only with the events it really gets.
func gapNotice(b db.Bounds, cursor int64) *sse.Event {
	next := b.Next
	if next == 0 {
		next = b.Issued + 1 // nothing after the cursor yet: the next id the log will write
	}
	switch {
	case cursor > b.Issued:
		return &sse.Event{Type: resetType, Data: fmt.Sprintf(`{"last_event_id":%d,"newest_id":%d}`, cursor, b.Issued)}
	case b.Lost:
		return &sse.Event{Type: truncatedType,
			Data: fmt.Sprintf(`{"last_event_id":%d,"oldest_retained_id":%d,"reason":"restored"}`, cursor, next)}
	case cursor < b.PrunedThrough:
		return &sse.Event{Type: truncatedType,
			Data: fmt.Sprintf(`{"last_event_id":%d,"oldest_retained_id":%d,"reason":"retention"}`, cursor, next)}
	}
	return nil
}

// Ready is signalled when Next has something to hand out.
func (s *Subscription) Ready() <-chan struct{} { return s.sub.wake }

// signal makes Ready fire, so that Next is called again.
func (s *Subscription) signal() {
	select {
	case s.sub.wake <- struct{}{}:
	default:
	}
}

// Next appends to dst what the feed sends next, about WriteChunk bytes at
// most (or one event, if larger), and returns it: dst unchanged when there
// is nothing. When more is waiting it leaves Ready signalled. An error is
// a failed read of the log.
func (s *Subscription) Next(ctx context.Context, dst []byte) ([]byte, error) {
	s.handed, s.lags = 0, s.lags[:0]
	dst = append(dst, s.notice...)
	s.notice = nil
	for len(dst) < WriteChunk {
		switch {
		case len(s.page) > 0:
			e := s.page[0]
			s.page = s.page[1:]
			s.cursor = e.ID
			if !s.wants(e.Type) {
				continue
			}
			wire, err := encode(dst, e)
			if err != nil {
				continue // the tailer warned about it; listings leave it out too
			}
			dst = wire
			s.handed++
		case s.more:
			page, err := s.e.store.Feed(ctx, s.userID, db.Range{After: s.cursor, Limit: replayPage})
			if err != nil {
				s.signal() // try again when called again
				return dst, err
			}
			s.page, s.more = page, len(page) == replayPage
		case s.next < len(s.queue):
			d := s.queue[s.next]
			s.next++
			if d.id <= s.cursor {
				continue // the replay or a catch-up sent it already
			}
			s.cursor = d.id
			if s.wants(d.typ) {
				dst = append(dst, d.wire...)
				s.handed++
				s.lags = append(s.lags, d.committed)
			}
		default:
			// Take what is queued, giving back the consumed queue.
			q, overflow := s.sub.take(s.queue)
			s.queue, s.next = q, 0
			if overflow {
				// Some rows were dropped from the queue: read them, and
				// everything else after the cursor, from the log.
				s.more = true
				continue
			}
			if len(q) == 0 {
				return dst, nil
			}
		}
	}
	s.signal()
	return dst, nil
}

// Written records that what the last Next handed out reached the client,
// and returns how many events that was.
func (s *Subscription) Written() int {
	n := s.handed
	s.e.metrics.Delivered(n, s.lags)
	s.handed, s.lags = 0, s.lags[:0]
	return n
}

// Cursor returns the id of the newest event the feed has handled.
func (s *Subscription) Cursor() int64 { return s.cursor }

// Close frees the feed's slot at once. The subscription is not used after.
func (s *Subscription) Close() { s.e.hub.unsubscribe(s.sub) }

// wants reports whether the feed's types filter lets typ through. The
// events the server itself sends (feed.*) are not filtered: they do not
// come from the log.
func (s *Subscription) wants(typ string) bool {
	return s.types == nil || s.types[typ]
}
