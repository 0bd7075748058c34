// Package feedtest helps tests drive a feedd server from outside: start
// one through its run function, mint its tokens, make requests and read
// its feeds as a browser's EventSource would (with sse.Decoder). Only
// tests import it.
package feedtest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/sse"
)

// WaitLong bounds every wait: generous, so that a loaded machine does not
// flake, and only reached when something is broken.
const WaitLong = 10 * time.Second

// Run is a feedd entry point: cmd/feedd's run.
type Run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Buffer is a goroutine-safe bytes.Buffer that wakes WaitFor on each
// write: a server's stdout or stderr.
type Buffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // signalled after each write; made on first use
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.signal() <- struct{}{}:
	default:
	}
	return n, err
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// signal returns the channel writes are signalled on; b.mu is held.
func (b *Buffer) signal() chan struct{} {
	if b.wrote == nil {
		b.wrote = make(chan struct{}, 1)
	}
	return b.wrote
}

// WaitFor waits until what was written satisfies ok, woken by each write.
// It fails the test after WaitLong, and returns false early when stop
// delivers (the writer is gone, say).
func (b *Buffer) WaitFor(t *testing.T, what string, stop <-chan struct{}, ok func(string) bool) bool {
	t.Helper()
	b.mu.Lock()
	wrote := b.signal()
	b.mu.Unlock()
	timeout := time.NewTimer(WaitLong)
	defer timeout.Stop()
	for !ok(b.String()) {
		select {
		case <-wrote:
		case <-timeout.C:
			t.Fatalf("no %s within %s; got:\n%s", what, WaitLong, b)
		case <-stop:
			return false
		}
	}
	return true
}

// ListenLine is the banner line that says where feedd listens.
var ListenLine = regexp.MustCompile(`feedd listening on (https?://[^ ]+)`)

// Server is a feedd started through its Run on a free loopback port.
type Server struct {
	Base   string // http://127.0.0.1:port
	Stdout *Buffer
	Stderr *Buffer
	Signer *auth.Signer // mints with the server's secret

	stop   context.CancelFunc
	exited chan struct{} // closed when run returned
	err    error         // what run returned, once exited is closed
}

// Start runs feedd serve with args (which should name --db and
// --addr 127.0.0.1:0) and env, and returns once it prints where it
// listens. secret is the HMAC secret the server verifies with. The server
// is stopped at the end of the test, which fails if it does not exit
// cleanly.
func Start(t *testing.T, run Run, secret string, env map[string]string, args ...string) *Server {
	t.Helper()
	signer, err := auth.NewSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Stdout: &Buffer{}, Stderr: &Buffer{}, Signer: signer, stop: cancel, exited: make(chan struct{})}
	go func() {
		s.err = run(ctx, args, func(k string) string { return env[k] }, s.Stdout, s.Stderr)
		close(s.exited)
	}()
	if !s.Stdout.WaitFor(t, "listening line", s.exited, ListenLine.MatchString) {
		t.Fatalf("feedd exited before listening: %v\nstdout:\n%s\nstderr:\n%s", s.err, s.Stdout, s.Stderr)
	}
	s.Base = ListenLine.FindStringSubmatch(s.Stdout.String())[1]
	t.Cleanup(func() { s.Shutdown(t) })
	return s
}

// Stop asks the server to stop, as SIGTERM would, without waiting.
func (s *Server) Stop() { s.stop() }

// Shutdown stops the server and fails the test unless it exits cleanly
// within WaitLong. It may be called more than once.
func (s *Server) Shutdown(t *testing.T) {
	t.Helper()
	s.stop()
	select {
	case <-s.exited:
		if s.err != nil {
			t.Errorf("feedd exited with %v", s.err)
			s.err = nil // reported once
		}
	case <-time.After(WaitLong):
		t.Errorf("feedd did not stop within %s", WaitLong)
	}
}

// Token mints a token with the server's secret: a user token for sub, or
// an admin token.
func (s *Server) Token(t *testing.T, sub string, ttl time.Duration, admin bool) string {
	t.Helper()
	tok, err := s.Signer.Mint(sub, ttl, admin, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Event is one event as EventSource dispatches it.
type Event struct {
	ID, Type, Data string
}

// Feed is an open /events stream read by a goroutine.
type Feed struct {
	Events chan Event
	Ended  chan error // receives why the stream ended, then closes
	cancel context.CancelFunc
}

// OpenFeed opens GET base+"/events?"+query with header, checks for 200
// and the first retry field, and returns once the server has registered
// the feed. The feed is closed at the end of the test.
func OpenFeed(t *testing.T, base, query string, header http.Header) *Feed {
	t.Helper()
	resp, cancel := OpenRaw(t, base, query, header)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("GET /events?%s: %d %s", query, resp.StatusCode, b)
	}
	f, retried := Read(resp.Body, cancel)
	select {
	case <-retried:
	case err := <-f.Ended:
		t.Fatalf("feed ended before its retry field: %v", err)
	case <-time.After(WaitLong):
		t.Fatal("no retry field from /events")
	}
	t.Cleanup(cancel)
	return f
}

// OpenRaw sends GET base+"/events?"+query with header and returns the
// response, whatever its status, and what closes it.
func OpenRaw(t *testing.T, base, query string, header http.Header) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return resp, func() { cancel(); resp.Body.Close() }
}

// Read reads the event stream of body in a goroutine of its own until it
// ends; cancel closes it. retried is closed when the first retry field
// has arrived.
func Read(body io.Reader, cancel context.CancelFunc) (f *Feed, retried <-chan struct{}) {
	f = &Feed{Events: make(chan Event, 1024), Ended: make(chan error, 1), cancel: cancel}
	r := make(chan struct{})
	go f.read(body, r)
	return f, r
}

// Cancel closes the feed's connection.
func (f *Feed) Cancel() { f.cancel() }

// read decodes the stream until it ends.
func (f *Feed) read(body io.Reader, retried chan<- struct{}) {
	dec := sse.NewDecoder(body)
	sawRetry := false
	for {
		kind, ev, err := dec.Step()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			f.Ended <- err
			close(f.Ended)
			return
		}
		switch kind {
		case sse.KindRetry:
			if !sawRetry {
				sawRetry = true
				close(retried)
			}
		case sse.KindEvent:
			typ := ev.Type
			if typ == "message" {
				typ = ""
			}
			f.Events <- Event{ID: ev.ID, Type: typ, Data: ev.Data}
		}
	}
}

// Next returns the next event, failing the test if none comes within
// WaitLong or the stream ends.
func (f *Feed) Next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-f.Events:
		return ev
	case err := <-f.Ended:
		t.Fatalf("feed ended (%v) while an event was expected", err)
	case <-time.After(WaitLong):
		t.Fatal("no event within", WaitLong)
	}
	return Event{}
}
