// Package feed is feedd itself: publishing notifications, the tailer that
// reads new rows once and the hub that hands them to open feeds, resuming a
// feed from the log, and the HTTP surface (/events, /admin/*, /v1/*).
package feed

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
)

// Config is what a Server needs. DB, Verifier, Hub and Tailer are required.
type Config struct {
	DB       *db.DB
	Verifier *auth.Verifier
	Hub      *Hub
	Tailer   *Tailer
	// Committer groups concurrent publishes into shared transactions; nil
	// commits each publish on its own.
	Committer *Committer
	// Metrics are the metrics /metrics serves; nil gives the server its own.
	Metrics *Metrics
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Heartbeat is the silence after which a feed gets a comment line.
	Heartbeat time.Duration
	// Retry is the reconnection delay told to clients.
	Retry time.Duration
	// WriteTimeout bounds each write to a feed; a client that does not
	// read for that long is disconnected (and resumes when it reconnects).
	WriteTimeout time.Duration
	// Limits bound what a request may carry.
	Limits Limits
	// CORSOrigins lists the origins whose pages may open feeds and read
	// history cross-origin; "*" allows any. Admin endpoints never get CORS.
	CORSOrigins []string
}

// Server serves feedd's HTTP API.
type Server struct {
	cfg     Config
	limits  Limits
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler

	drainOnce sync.Once
	draining  chan struct{} // closed: /readyz answers 503
	closeOnce sync.Once
	closing   chan struct{} // closed: open feeds end
	detached  detachedFeeds // feeds that went on outside their handlers
}

// NewServer returns a Server for cfg.
func NewServer(cfg Config) *Server {
	s := &Server{cfg: cfg, limits: cfg.Limits.withDefaults(), log: cfg.Logger, now: cfg.Now, draining: make(chan struct{}), closing: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.metrics = cfg.Metrics; s.metrics == nil {
		s.metrics = NewMetrics()
	}
	s.handler = s.routes()
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain starts a shutdown: from now on /readyz answers 503, so that load
// balancers stop sending new clients. Open feeds go on until CloseFeeds.
// Safe to call more than once.
func (s *Server) Drain() {
	s.drainOnce.Do(func() { close(s.draining) })
}

// CloseFeeds ends every open feed cleanly, so that its client reconnects
// (to this server once it is back, or to another) and resumes by its last
// id. Feeds opened afterwards end at once. Safe to call more than once.
func (s *Server) CloseFeeds() {
	s.Drain()
	s.closeOnce.Do(func() { close(s.closing) })
}

func (s *Server) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.isDraining() {
		writeError(w, r, s.log, errorf(http.StatusServiceUnavailable, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.DB.Health(); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := s.cfg.DB.Ping(ctx); err != nil {
		s.log.Error("readiness: database unreachable", "err", err)
		writeError(w, r, s.log, errorf(http.StatusServiceUnavailable, "database unavailable"))
		return
	}
	pending, err := s.cfg.DB.Pending(ctx)
	if err != nil || pending {
		s.log.Error("readiness: database not migrated", "pending", pending, "err", err)
		writeError(w, r, s.log, errorf(http.StatusServiceUnavailable, "database not migrated: run feedd migrate up"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
