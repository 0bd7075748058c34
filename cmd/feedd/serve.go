package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/feedd/feedd/internal/api"
	"github.com/feedd/feedd/internal/auth"
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
	a, err := newApp(ctx, c, log, stdout)
	if err != nil {
		return err
	}
	defer a.close()
	return a.run(ctx, stdout)
}

// app is feedd serve wired together: the listener, the database, the
// delivery engine and the HTTP API over them.
type app struct {
	c      config
	log    *slog.Logger
	signer *auth.Signer
	ln     net.Listener
	store  store
	engine *feed.Engine
	api    *api.Server
}

// newApp opens what the server needs, in the order a failure is cheapest
// to report: the keys, the listen address, then the database, migrated.
func newApp(ctx context.Context, c config, log *slog.Logger, stdout io.Writer) (*app, error) {
	verifier, signer, err := c.keys(stdout, func(msg string) { log.Warn(msg) }, true)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, usagef("--addr %s: %v", c.addr, err)
	}
	store, err := openStore(ctx, c, true)
	if err != nil {
		ln.Close()
		return nil, err
	}
	a := &app{c: c, log: log, signer: signer, ln: ln, store: store}
	if n, err := store.Migrate(ctx); err != nil {
		a.close()
		return nil, err
	} else if n > 0 {
		log.Info("applied migrations", "count", n, "db", c.dbName())
	}
	metrics := api.NewMetrics()
	a.engine = feed.NewEngine(store, feed.Options{
		PollInterval: c.pollInterval,
		Retention:    c.retention,
		Hub:          feed.HubOptions{MaxConnsPerUser: c.maxConnsPerUser, MaxFeeds: c.feedLimit()},
		Metrics:      metrics,
		Logger:       log,
	})
	a.api = api.NewServer(api.Config{
		Engine:       a.engine,
		Log:          store,
		Verifier:     verifier,
		Metrics:      metrics,
		Logger:       log,
		Heartbeat:    c.heartbeat,
		Retry:        c.retry,
		WriteTimeout: c.writeTimeout,
		CORSOrigins:  c.origins,
		Limits:       c.limits(),
	})
	return a, nil
}

// run serves until ctx is cancelled, then stops: the API first (no new
// publishes, feeds ended, requests finished), then the engine, which
// commits what is queued; close then closes the database.
func (a *app) run(ctx context.Context, stdout io.Writer) error {
	if err := a.engine.Run(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer a.engine.Wait()
	defer a.engine.Close()
	served := make(chan error, 1)
	go func() {
		served <- a.api.Serve(a.ln, api.Listen{
			ReadHeaderTimeout: a.c.readHeader,
			ReadTimeout:       a.c.readTimeout,
			IdleTimeout:       a.c.idleTimeout,
			MaxHeaderBytes:    a.c.maxHeaderBytes,
			Certificate:       a.c.certificate,
		})
	}()
	scheme := "http"
	if a.c.certificate != nil {
		scheme = "https"
	}
	// One write, so that a reader never sees the first line alone.
	io.WriteString(stdout, banner(scheme, a.ln.Addr().String(), a.c, a.signer))
	a.log.Info("feedd started", "addr", a.ln.Addr().String(), "db", a.c.dbName(), "tls", a.c.certificate != nil)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), stopBudget)
	defer cancel()
	a.api.Shutdown(stopCtx, a.c.shutdownDelay)
	if err := <-served; err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	a.log.Info("feedd stopped")
	return nil
}

// close closes the listener and the database, after a checkpoint.
func (a *app) close() {
	a.ln.Close()
	if err := a.store.Close(); err != nil {
		a.log.Error("closing the database", "err", err)
	}
}

// banner says where feedd listens and, when it holds the secret, gives
// ready-to-paste commands with fresh tokens.
func banner(scheme, addr string, c config, signer *auth.Signer) string {
	base := scheme + "://" + dialable(addr)
	var b strings.Builder
	fmt.Fprintf(&b, "feedd listening on %s (database %s)\n", base, c.dbName())
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
