package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/feed"
)

// A stop ends within 10 seconds: at most maxShutdownDelay of answering
// /readyz with 503, then at most stopBudget minus that delay for requests to
// finish, leaving a second to checkpoint and close the database.
const (
	maxShutdownDelay = 5 * time.Second
	stopBudget       = 9 * time.Second
)

// serve runs the server until ctx is cancelled, then shuts down gracefully.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := c.serveFlagSet()
	if err := parse(fs, "feedd [serve] [flags]", args, getenv, stdout); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	log, err := c.logger(stderr)
	if err != nil {
		return err
	}
	verifier, signer, err := c.keys(stdout, func(msg string) { log.Warn(msg) }, true)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return usagef("--addr %s: %v", c.addr, err)
	}
	defer ln.Close()

	store, err := db.Open(ctx, c.db, db.Options{Synchronous: c.sync, ManualCheckpoints: true, MaxDataBytes: int64(c.maxDataBytes)})
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the database", "err", err)
		}
	}()
	if n, err := store.Migrate(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Info("applied migrations", "count", n, "db", c.db)
	}
	if err := store.Start(ctx, time.Now()); err != nil {
		if _, ok := errors.AsType[*db.StorageError](err); !ok {
			return err
		}
		log.Warn("the database cannot be written; publishes answer 503 until it can", "err", err)
	}
	last, err := store.LastID(ctx)
	if err != nil {
		return err
	}

	hub := feed.NewHub(feed.HubOptions{MaxConnsPerUser: c.maxConnsPerUser, MaxFeeds: c.feedLimit()})
	metrics := feed.NewMetrics()
	tailer := feed.NewTailer(store, hub, last, c.pollInterval, log, metrics)
	committer := feed.NewCommitter(store, tailer, metrics, time.Now)
	api := feed.NewServer(feed.Config{
		DB:           store,
		Verifier:     verifier,
		Hub:          hub,
		Tailer:       tailer,
		Committer:    committer,
		Metrics:      metrics,
		Logger:       log,
		Heartbeat:    c.heartbeat,
		Retry:        c.retry,
		WriteTimeout: c.writeTimeout,
		CORSOrigins:  c.origins,
		Limits: feed.Limits{
			MaxBodyBytes: c.maxBodyBytes,
			MaxDataBytes: c.maxDataBytes,
			MaxUsers:     c.maxUsers,
		},
	})

	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: c.readHeader,
		ReadTimeout:       c.readTimeout,
		IdleTimeout:       c.idleTimeout,
		MaxHeaderBytes:    c.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if c.certificate != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*c.certificate}}
	}
	// Shutdown closes the listener, then ends the feeds, which would
	// otherwise keep their connections busy for ever.
	srv.RegisterOnShutdown(api.CloseFeeds)

	var background sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		stopBackground()
		background.Wait()
	}()
	background.Go(func() { tailer.Run(bgCtx) })
	background.Go(func() { committer.Run(bgCtx) })
	background.Go(func() { maintain(bgCtx, store, log) })
	if c.retention > 0 {
		background.Go(func() { feed.Prune(bgCtx, store, c.retention, time.Now, log) })
	}

	serveErr := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
		} else {
			serveErr <- srv.Serve(api.Listener(ln))
		}
	}()
	scheme := "http"
	if c.tlsCert != "" {
		scheme = "https"
	}
	// One write, so that a reader never sees the first line alone.
	io.WriteString(stdout, banner(scheme, ln.Addr().String(), c, signer))
	log.Info("feedd started", "addr", ln.Addr().String(), "db", c.db, "tls", c.tlsCert != "")

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	api.Drain()
	if c.shutdownDelay > 0 {
		log.Info("shutting down: not ready, still serving", "for", c.shutdownDelay)
		time.Sleep(c.shutdownDelay)
	}
	log.Info("shutting down: closing the listener, ending feeds, finishing requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), stopBudget-c.shutdownDelay)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("requests still running at the shutdown deadline; closing them", "err", err)
		srv.Close()
	}
	// Feeds that went on outside their handlers are not the http.Server's
	// to wait for; Shutdown has asked them to end.
	if err := api.WaitFeeds(shutdownCtx); err != nil {
		log.Warn("feeds still open at the shutdown deadline; closed them", "err", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("feedd stopped")
	return nil
}

// banner says where feedd listens and, when it holds the secret, gives
// ready-to-paste commands with fresh tokens.
func banner(scheme, addr string, c config, signer *auth.Signer) string {
	base := scheme + "://" + dialable(addr)
	var b strings.Builder
	fmt.Fprintf(&b, "feedd listening on %s (database %s)\n", base, c.db)
	if signer == nil {
		b.WriteString("Tokens are verified with --jwt-public-key; mint them where the private key lives.\n")
		return b.String()
	}
	const demoUser = "demo"
	now := time.Now()
	userTok, err1 := signer.Mint(demoUser, 24*time.Hour, false, c.jwtIssuer, c.jwtAudience, now)
	adminTok, err2 := signer.Mint("", 24*time.Hour, true, c.jwtIssuer, c.jwtAudience, now)
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintf(&b, "Could not mint demo tokens: %v\n", err)
		return b.String()
	}
	fmt.Fprintf(&b, `
Demo page (user %q, token valid 24h):
  %s/#token=%s

Subscribe as %q:
  curl -N '%s/events?token=%s'

Post a notification to %q (admin token valid 24h):
  curl -X POST %s/admin/notifications -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"user":"%s","type":"greeting","data":{"text":"hello"}}'

Mint more tokens with: feedd token --sub USER   (or --admin)
`, demoUser, base, userTok, demoUser, base, url.QueryEscape(userTok), demoUser, base, adminTok, demoUser)
	return b.String()
}

// dialable turns a listen address into one a client can connect to: an
// unspecified host (":8080", "0.0.0.0:8080") becomes the loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// maintainEvery is how often feedd checks its database's storage and
// copies the WAL into the database file.
const maintainEvery = time.Second

// maintain runs the database's upkeep every maintainEvery until ctx is
// done: db.Maintain (the heartbeat that restores rely on, and finding out
// whether storage trouble began or ended) and a WAL checkpoint, away from
// the commits (see db.Options.ManualCheckpoints).
func maintain(ctx context.Context, store *db.DB, log *slog.Logger) {
	tick := time.NewTicker(maintainEvery)
	defer tick.Stop()
	var fault error
	for {
		select {
		case <-ctx.Done():
			// The last heartbeat, at the stop: a restore then skips no
			// more ids than the time since asks for.
			if err := store.Maintain(context.WithoutCancel(ctx), time.Now()); err != nil {
				log.Warn("could not record the stop in the database", "err", err)
			}
			return
		case <-tick.C:
		}
		err := store.Maintain(ctx, time.Now())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && fault == nil:
			log.Error("the database cannot be written; publishes answer 503 and /readyz is not ready until it can", "err", err)
		case err == nil && fault != nil:
			log.Info("the database can be written again; ready")
		}
		fault = err
		if err != nil {
			continue
		}
		if err := store.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			log.Warn("WAL checkpoint failed; retrying in a second", "err", err)
		}
	}
}
