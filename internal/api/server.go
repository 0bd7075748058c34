// Package api is feedd's HTTP surface and nothing else: the routes, the
// middleware, JSON in and out, one writeError, the feed pump (in the
// handler over HTTP/2, detached over HTTP/1.1) and the demo page. What it
// serves comes from the delivery engine (internal/feed) and the log.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/feed"
)

// Log is what the API reads and changes of the log itself, besides what
// goes through the engine: listings, single events and readiness.
type Log interface {
	Feed(ctx context.Context, userID string, r db.Range) ([]db.Event, error)
	FeedLatest(ctx context.Context, userID string, r db.Range) ([]db.Event, error)
	List(ctx context.Context, userID string, r db.Range) ([]db.Event, error)
	Get(ctx context.Context, id int64) (db.Event, error)
	Delete(ctx context.Context, id int64) error
	// Health returns why writes cannot succeed, or nil.
	Health() error
	Ping(ctx context.Context) error
	// Pending reports whether migrations are pending.
	Pending(ctx context.Context) (bool, error)
}

// Config is what a Server needs. Engine, Log and Verifier are required.
type Config struct {
	Engine   *feed.Engine
	Log      Log
	Verifier *auth.Verifier
	// Metrics are the metrics /metrics serves; the engine should count
	// into the same. nil gives the server its own.
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

	mu  sync.Mutex
	srv *http.Server // the one Serve runs, for Shutdown
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

// drain starts a shutdown: from now on /readyz answers 503, so that load
// balancers stop sending new clients. Open feeds go on until closeFeeds.
// Safe to call more than once.
func (s *Server) drain() {
	s.drainOnce.Do(func() { close(s.draining) })
}

// closeFeeds ends every open feed cleanly, so that its client reconnects
// (to this server once it is back, or to another) and resumes by its last
// id. Feeds opened afterwards end at once. Safe to call more than once.
func (s *Server) closeFeeds() {
	s.drain()
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
	if err := s.cfg.Log.Health(); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := s.cfg.Log.Ping(ctx); err != nil {
		s.log.Error("readiness: database unreachable", "err", err)
		writeError(w, r, s.log, errorf(http.StatusServiceUnavailable, "database unavailable"))
		return
	}
	pending, err := s.cfg.Log.Pending(ctx)
	if err != nil || pending {
		s.log.Error("readiness: database not migrated", "pending", pending, "err", err)
		writeError(w, r, s.log, errorf(http.StatusServiceUnavailable, "database not migrated: run feedd migrate up"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
