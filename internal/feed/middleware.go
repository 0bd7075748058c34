package feed

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// recorder remembers the status and size of a response for the access log.
// It implements Unwrap so http.ResponseController reaches the real writer
// to flush and set deadlines.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	// feedEnd and feedEvents are set by a feed when it ends.
	feedEnd    string
	feedEvents int
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

// accessLog logs one line per request once it is answered: for a feed,
// when the feed ends. The query string is logged with token= redacted.
func (s *Server) accessLog(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		elapsed := s.now().Sub(start)
		attrs := []any{
			"method", r.Method,
			"route", route,
			"path", r.URL.Path,
			"query", redactQuery(r.URL.RawQuery),
			"status", rec.status,
			"bytes", rec.bytes,
			"duration", elapsed,
			"remote", r.RemoteAddr,
		}
		if rec.feedEnd != "" {
			attrs = append(attrs, "events", rec.feedEvents, "ended", rec.feedEnd)
		}
		s.log.Info("request", attrs...)
		s.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		s.metrics.requestSeconds.WithLabelValues(route).Observe(elapsed.Seconds())
	})
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
