package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/feed"
)

// entry is the access-log entry of one request, kept in its context: the
// recorder adds the status and size of the answer as it is written, and a
// feed how it ended. A feed that goes on after its handler returns (see
// detach) takes the entry along and logs it when it ends.
type entry struct {
	route    string // the route template
	status   int
	bytes    int64
	events   int    // a feed's events
	ended    string // why a feed ended; "" for other requests
	detached bool
	line     accessLine
}

// log writes the entry's access-log line.
func (e *entry) log() { e.line(e.status, e.bytes, e.events, e.ended) }

type entryKey struct{}

// entryOf returns the access-log entry of the request with ctx; one that
// no accessLog middleware serves gets a throwaway entry.
func entryOf(ctx context.Context) *entry {
	if e, ok := ctx.Value(entryKey{}).(*entry); ok {
		return e
	}
	return &entry{line: func(int, int64, int, string) {}}
}

// recorder adds the status and size of a response to its entry. It
// implements Unwrap so http.ResponseController reaches the real writer to
// flush, set deadlines and take the connection over.
type recorder struct {
	http.ResponseWriter
	e *entry
}

func (rec *recorder) WriteHeader(code int) {
	if rec.e.status == 0 {
		rec.e.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.e.status == 0 {
		rec.e.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.e.bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// accessLine logs the access-log line of a request that has been answered,
// and counts it in the metrics. For a feed, events and ended say how many
// events it sent and why it ended ("" for other requests).
type accessLine func(status int, bytes int64, events int, ended string)

// accessLog logs one line per request once it is answered: for a feed,
// when the feed ends. The line holds nothing a client wrote unless it has
// the shape feedd expects there (see methodLabel, loggedPath and
// redactQuery), so that no token, and no text made up to fill the log,
// reaches it.
func (s *Server) accessLog(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &entry{route: route, line: s.accessLine(route, r, s.now())}
		next.ServeHTTP(&recorder{ResponseWriter: w, e: e}, r.WithContext(context.WithValue(r.Context(), entryKey{}, e)))
		if !e.detached {
			e.log()
		}
	})
}

// accessLine returns the access-log line of r, started at start. It keeps
// only what it logs, not r.
func (s *Server) accessLine(route string, r *http.Request, start time.Time) accessLine {
	method, path, query, remote := methodLabel(r.Method), loggedPath(route, r.URL.Path), redactQuery(r.URL.RawQuery), r.RemoteAddr
	return func(status int, bytes int64, events int, ended string) {
		elapsed := s.now().Sub(start)
		attrs := []any{"method", method, "route", route}
		if path != "" {
			attrs = append(attrs, "path", path)
		}
		attrs = append(attrs,
			"query", query,
			"status", status,
			"bytes", bytes,
			"duration", elapsed,
			"remote", remote,
		)
		if ended != "" {
			attrs = append(attrs, "events", events, "ended", ended)
		}
		s.log.Info("request", attrs...)
		s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		s.metrics.requestSeconds.WithLabelValues(route).Observe(elapsed.Seconds())
	}
}

// standardMethods returns the request methods that logs and metrics name
// as they are: those of RFC 9110 and PATCH.
func standardMethods() []string {
	return []string{
		http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
	}
}

// methodLabel names a request method for logs and metrics: a standard
// method as it is, any other (a client may send any token there) as
// "other", so that neither holds text a client made up.
func methodLabel(method string) string {
	if slices.Contains(standardMethods(), method) {
		return method
	}
	return "other"
}

// maxLoggedPath caps the path the access log shows.
const maxLoggedPath = 64

// loggedPath returns what the access log shows of the path of a request to
// route, or "" for nothing. A route without variables is its own path, so
// the route says it all. The only routes with a variable take digits
// ({id:[0-9]+}), and their path is shown, up to maxLoggedPath bytes. The
// path of an unmatched request, or under /assets/, was chosen by the client
// and is never shown.
func loggedPath(route, path string) string {
	if !strings.Contains(route, "{") || len(path) > maxLoggedPath {
		return ""
	}
	return path
}

// Bounds on what the access log shows of a query.
const (
	maxLoggedParams = 10  // parameters shown; the rest are counted
	maxLoggedTypes  = 256 // bytes of a types= value
	maxLoggedUser   = 64  // bytes of a user= value
	maxLoggedID     = 20  // digits of a cursor, after=, before= or limit=
)

// redactQuery returns a query string safe to log. Of the parameters feedd
// reads, a value of the shape it expects is shown (cursors, after=,
// before= and limit= are digits, types= event type names, user= a short
// user id); every other value, the token's above all, is REDACTED. A name
// feedd does not read is shown only when it is a short plain word (see
// plainName), else it is REDACTED too. Past maxLoggedParams parameters the
// rest are only counted.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var b strings.Builder
	shown, more := 0, 0
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		if shown == maxLoggedParams {
			more++
			continue
		}
		rawName, rawValue, _ := strings.Cut(part, "=")
		name, nameErr := url.QueryUnescape(rawName)
		value, valueErr := url.QueryUnescape(rawValue)
		switch {
		case nameErr != nil || !plainName(name):
			name, value = "REDACTED", "REDACTED"
		case valueErr != nil || !loggableValue(name, value):
			value = "REDACTED"
		}
		if shown > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(name) + "=" + url.QueryEscape(value))
		shown++
	}
	if more > 0 {
		fmt.Fprintf(&b, "&[%d more]", more)
	}
	return b.String()
}

// loggableValue reports whether the value of query parameter name has the
// shape feedd expects of it, and so may be logged.
func loggableValue(name, v string) bool {
	switch name {
	case "last_event_id", "lastEventId", "after", "before", "limit":
		return len(v) <= maxLoggedID && strings.Trim(v, "0123456789") == ""
	case "types":
		if len(v) > maxLoggedTypes {
			return false
		}
		for t := range strings.SplitSeq(v, ",") {
			if !feed.ValidTypeName(t) {
				return false
			}
		}
		return true
	case "user":
		return len(v) <= maxLoggedUser && auth.ValidateSubject(v) == nil
	}
	return false
}

// cors lets the configured origins open feeds and read history from pages
// served elsewhere. Requests from other origins get no CORS headers, so
// the browser keeps their pages from reading the answer.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && s.originAllowed(origin) {
			h := w.Header()
			// With "*" any origin may read, and "*" says so without
			// repeating what the client sent.
			allow := "*"
			if !slices.Contains(s.cfg.CORSOrigins, "*") {
				allow = origin // one of the configured origins
			}
			h.Set("Access-Control-Allow-Origin", allow)
			h.Set("Access-Control-Allow-Headers", "Authorization, Last-Event-ID")
			h.Set("Access-Control-Allow-Methods", "GET")
			h.Set("Access-Control-Max-Age", "600")
		}
		w.Header().Add("Vary", "Origin")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) originAllowed(origin string) bool {
	return slices.Contains(s.cfg.CORSOrigins, "*") || slices.Contains(s.cfg.CORSOrigins, origin)
}

// preflight answers a CORS preflight; cors has set the headers if allowed.
func preflight(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}
