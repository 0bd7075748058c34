package api

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/feedd/feedd/internal/feed"
	"github.com/feedd/feedd/internal/sse"
)

// maxTypesFilter caps how many types one feed may filter on.
const maxTypesFilter = 64

// The reasons a feed ends, as logged and counted.
const (
	endClientLeft   = "client_left"
	endTokenExpired = "token_expired"
	endShutdown     = "shutdown"
	endSlow         = "slow" // read nothing for --write-timeout
	endWriteFailed  = "write_failed"
	endDBError      = "database_error"
)

// events serves GET /events: an SSE feed of the token user's notifications,
// replayed from the log after the client's cursor, then live.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	claims, _ := claimsOf(r.Context())
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
	ctx := r.Context()
	// The subscription reads what it needs of the log before the headers
	// are sent: a feed that cannot read the log gets an error status,
	// which EventSource does not retry, instead of a stream that ends at
	// once and is reopened for ever.
	sub, err := s.cfg.Engine.Subscribe(ctx, feed.Request{UserID: claims.Subject, Cursor: cursor, Resume: resume, Types: types})
	if err != nil {
		if ctx.Err() != nil {
			entryOf(ctx).ended = endClientLeft
			return
		}
		writeError(w, r, s.log, err)
		return
	}
	stream, err := openStream(w, r, s.cfg.WriteTimeout)
	if err != nil {
		sub.Close()
		s.log.Debug("feed could not start", "err", err)
		return
	}
	s.metrics.feedOpened()
	f := &liveFeed{s: s, sub: sub, stream: stream, exp: claims.ExpiresAt, entry: entryOf(ctx)}
	// The first write tells the client the feed is open; anything
	// committed after it is certain to be delivered.
	if err := stream.Send(sse.Event{Retry: s.cfg.Retry}); err != nil {
		f.end(f.failure(ctx, err))
		return
	}
	if r.ProtoMajor == 1 && s.detach(w, f) {
		return
	}
	f.end(f.pump(ctx))
}

// liveFeed is an open feed as the API runs it: a subscription, the stream
// it is written to, and the token's expiry.
type liveFeed struct {
	s      *Server
	sub    *feed.Subscription
	stream *sse.Stream
	exp    time.Time
	entry  *entry // its access-log entry
	sent   int    // events written, for the log
	buf    []byte
}

// pump writes what the subscription hands out, and a heartbeat after
// silence, until the client leaves, the token expires, the server shuts
// down or a write or a read of the log fails, and returns why the feed
// ended. Feeds in their handlers (HTTP/2) and detached ones (HTTP/1.1) run
// the same pump.
func (f *liveFeed) pump(ctx context.Context) string {
	s := f.s
	expiry := time.NewTimer(f.exp.Sub(s.now()))
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
		case <-f.sub.Ready():
			buf, err := f.sub.Next(ctx, f.buf[:0])
			if len(buf) > 0 {
				if werr := f.stream.WriteRaw(buf); werr != nil {
					return f.failure(ctx, werr)
				}
				f.sent += f.sub.Written()
			}
			// A buffer grown by large events is let go, so an idle feed
			// keeps only a small one.
			if f.buf = buf[:0]; cap(buf) > 2*feed.WriteChunk {
				f.buf = nil
			}
			if err != nil {
				return f.failure(ctx, dbError{err})
			}
			if len(buf) == 0 {
				continue // nothing was written: the silence goes on
			}
		}
		heartbeat.Reset(s.cfg.Heartbeat)
	}
}

// end releases the feed's slot, counts it closed and records how it ended
// for the access log.
func (f *liveFeed) end(reason string) {
	f.sub.Close()
	f.s.metrics.feedClosed(reason)
	f.entry.ended, f.entry.events = reason, f.sent
	f.s.log.Debug("feed ended", "reason", reason, "events", f.sent, "cursor", f.sub.Cursor())
}

// failure names why a feed ended on err.
func (f *liveFeed) failure(ctx context.Context, err error) string {
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
		if !feed.ValidTypeName(t) {
			return nil, errorf(http.StatusBadRequest,
				"types= must be a comma-separated list of event types (letters, digits and . _ : -, up to %d characters each)", feed.MaxTypeLen)
		}
		types[t] = true
	}
	return types, nil
}
