package feed

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// recorder remembers the status and size of a response for the access log.
// It implements Unwrap so http.ResponseController reaches the real writer
// to flush, set deadlines and take the connection over.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	// feedEnd and feedEvents are set by a feed when it ends.
	feedEnd    string
	feedEvents int
	// line logs the request once it is answered. A feed that goes on after
	// its handler returns (see detach) takes it and logs it at its end.
	line accessLine
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// takeLine hands the access-log line over to a feed that logs it itself.
func (rec *recorder) takeLine() accessLine {
	line := rec.line
	rec.line = nil
	return line
}

// accessLine logs the access-log line of a request that has been answered,
// and counts it in the metrics. For a feed, events and ended say how many
// events it sent and why it ended ("" for other requests).
type accessLine func(status int, bytes int64, events int, ended string)

// accessLog logs one line per request once it is answered: for a feed,
// when the feed ends. The query string is logged with token= redacted.
func (s *Server) accessLog(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, line: s.accessLine(route, r, s.now())}
		next.ServeHTTP(rec, r)
		if rec.line != nil {
			rec.line(rec.status, rec.bytes, rec.feedEvents, rec.feedEnd)
		}
	})
}

// accessLine returns the access-log line of r, started at start. It keeps
// only what it logs, not r.
func (s *Server) accessLine(route string, r *http.Request, start time.Time) accessLine {
	method, path, query, remote := r.Method, r.URL.Path, redactQuery(r.URL.RawQuery), r.RemoteAddr
	return func(status int, bytes int64, events int, ended string) {
		elapsed := s.now().Sub(start)
		attrs := []any{
			"method", method,
			"route", route,
			"path", path,
			"query", query,
			"status", status,
			"bytes", bytes,
			"duration", elapsed,
			"remote", remote,
		}
		if ended != "" {
			attrs = append(attrs, "events", events, "ended", ended)
		}
		s.log.Info("request", attrs...)
		s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		s.metrics.requestSeconds.WithLabelValues(route).Observe(elapsed.Seconds())
	}
}

// redactQuery returns a query string safe to log: every token value is
// replaced. A query that does not parse is dropped whole, since it might
// hold a token in a form we do not recognise.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "[unparsable query omitted]"
	}
	if _, ok := q["token"]; ok {
		q["token"] = []string{"REDACTED"}
	}
	return q.Encode()
}

// cors lets the configured origins open feeds and read history from pages
// served elsewhere. Requests from other origins get no CORS headers, so
// the browser keeps their pages from reading the answer.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && s.originAllowed(origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
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
