package api

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/feed"
)

// testSecret signs the tokens of these tests.
const testSecret = "api-test-secret-api-test-secret-0123456"

// waitLong bounds every wait: reached only when something is broken.
const waitLong = 10 * time.Second

// apiEnv is a server over a real database and a running engine.
type apiEnv struct {
	store  *db.DB
	engine *feed.Engine
	srv    *Server
	// ended receives the route of every access-log line as it is logged:
	// a feed's is logged when the feed ends.
	ended chan string
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "api.db"), db.Options{})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = store.Migrate(ctx)
	must(t, err)
	verifier, err := auth.NewVerifier(auth.Config{Secret: []byte(testSecret)})
	must(t, err)
	e := &apiEnv{store: store, ended: make(chan string, 1024)}
	metrics := NewMetrics()
	e.engine = feed.NewEngine(store, feed.Options{Metrics: metrics})
	must(t, e.engine.Run(ctx))
	t.Cleanup(func() {
		e.engine.Close()
		e.engine.Wait()
	})
	e.srv = NewServer(Config{Engine: e.engine, Log: store, Verifier: verifier, Metrics: metrics,
		Logger: slog.New(routeHandler(e.ended)), Heartbeat: time.Hour, Retry: time.Second})
	return e
}

// commit publishes evs through the engine and returns their ids.
func (e *apiEnv) commit(t *testing.T, evs ...db.NewEvent) []int64 {
	t.Helper()
	p := &db.Publish{Events: evs}
	must(t, e.engine.Publish(context.Background(), p))
	must(t, p.Err)
	ids := make([]int64, len(p.Created))
	for i, c := range p.Created {
		ids[i] = c.ID
	}
	return ids
}

// token mints a user token for sub.
func token(t *testing.T, sub string) string {
	t.Helper()
	signer, err := auth.NewSigner([]byte(testSecret))
	must(t, err)
	tok, err := signer.Mint(sub, time.Hour, false, "", "", time.Now())
	must(t, err)
	return tok
}

// waitEnded waits for the access-log line of a request on route: for a
// feed, it is written when the feed has ended and freed its slot.
func (e *apiEnv) waitEnded(t *testing.T, route string) {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		select {
		case r := <-e.ended:
			if r == route {
				return
			}
		case <-timeout:
			t.Fatalf("no request on %s ended within %s", route, waitLong)
		}
	}
}

// routeHandler is a slog handler that sends the route of every access-log
// line to routes.
func routeHandler(routes chan<- string) slog.Handler { return &routeLog{routes: routes} }

type routeLog struct{ routes chan<- string }

func (h *routeLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *routeLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *routeLog) WithGroup(string) slog.Handler            { return h }
func (h *routeLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "request" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "route" {
			h.routes <- strings.Clone(a.Value.String())
			return false
		}
		return true
	})
	return nil
}

// must fails the test on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
