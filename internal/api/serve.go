package api

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Listen holds the settings of the HTTP server that serves the API.
type Listen struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// Certificate, if set, serves HTTPS (and HTTP/2).
	Certificate *tls.Certificate
}

// Serve serves the API on ln until Shutdown, then returns nil; it returns
// an error only when serving failed. No server-wide write timeout: feeds
// bound each write themselves.
func (s *Server) Serve(ln net.Listener, o Listen) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Shutdown closes the listener, then ends the feeds, which would
	// otherwise keep their connections busy for ever.
	srv.RegisterOnShutdown(s.closeFeeds)
	s.mu.Lock()
	if s.isDraining() {
		// Shutdown came first and found no server to stop.
		s.mu.Unlock()
		return nil
	}
	s.srv = srv // Shutdown stops it, even before it serves
	s.mu.Unlock()
	var err error
	if o.Certificate != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*o.Certificate}}
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(s.listener(ln))
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server cleanly: /readyz answers 503 for delay, so
// that a load balancer stops sending clients, then the listener closes,
// open feeds end (their clients reconnect and resume) and requests in
// flight finish. Past ctx's deadline it closes what is left.
func (s *Server) Shutdown(ctx context.Context, delay time.Duration) {
	s.mu.Lock()
	s.drain()
	s.mu.Unlock()
	if delay > 0 {
		s.log.Info("shutting down: not ready, still serving", "for", delay)
		wait := time.NewTimer(delay)
		defer wait.Stop()
		select {
		case <-wait.C:
		case <-ctx.Done():
		}
	}
	s.log.Info("shutting down: closing the listener, ending feeds, finishing requests")
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			s.log.Warn("requests still running at the shutdown deadline; closing them", "err", err)
			srv.Close()
		}
	}
	s.closeFeeds()
	// Feeds that went on outside their handlers are not the http.Server's
	// to wait for; Shutdown has asked them to end.
	if err := s.waitFeeds(ctx); err != nil {
		s.log.Warn("feeds still open at the shutdown deadline; closed them", "err", err)
	}
}
