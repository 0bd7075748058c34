package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/auth"
)

// testSecret is the HMAC secret every test server verifies with.
const testSecret = "test-secret-test-secret-test-secret-0123"

// waitLong bounds every wait in these tests: generous, so a loaded CI
// machine does not flake, and only reached when something is broken.
const waitLong = 10 * time.Second

// testServer is a feedd started through run() on a free loopback port.
type testServer struct {
	base   string
	dbPath string
	signer *auth.Signer
	stop   context.CancelFunc
	done   chan error
	stdout *syncBuffer
	stderr *syncBuffer
}

// syncBuffer is a goroutine-safe bytes.Buffer that tells waitFor about
// each write.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // signalled after each write; made on first use
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.signal() <- struct{}{}:
	default:
	}
	return n, err
}

// signal returns the channel writes are signalled on; b.mu is held.
func (b *syncBuffer) signal() chan struct{} {
	if b.wrote == nil {
		b.wrote = make(chan struct{}, 1)
	}
	return b.wrote
}

// waitFor waits until what was written satisfies ok, woken by each write,
// or fails the test after waitLong, or returns false early if stop fires.
func (b *syncBuffer) waitFor(t *testing.T, what string, stop <-chan error, ok func(string) bool) bool {
	t.Helper()
	b.mu.Lock()
	wrote := b.signal()
	b.mu.Unlock()
	timeout := time.NewTimer(waitLong)
	defer timeout.Stop()
	for !ok(b.String()) {
		select {
		case <-wrote:
		case <-timeout.C:
			t.Fatalf("no %s within %s; got:\n%s", what, waitLong, b)
		case <-stop:
			return false
		}
	}
	return true
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listenLine = regexp.MustCompile(`feedd listening on (https?://[^ ]+)`)

// startServer runs feedd with a fresh database (or dbPath, when args name
// one with --db) and waits until it listens.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "feedd.db")
	for i, a := range args {
		if a == "--db" && i+1 < len(args) {
			dbPath = args[i+1]
		}
	}
	full := append([]string{"serve", "--db", dbPath, "--addr", "127.0.0.1:0", "--log-level", "debug"}, args...)
	env := map[string]string{"FEEDD_JWT_SECRET": testSecret}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{dbPath: dbPath, stop: cancel, done: make(chan error, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() { s.done <- run(ctx, full, func(k string) string { return env[k] }, s.stdout, s.stderr) }()

	listening := func(out string) bool { return listenLine.MatchString(out) }
	if !s.stdout.waitFor(t, "listening line", s.done, listening) {
		t.Fatalf("feedd exited before listening\nstdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
	}
	s.base = listenLine.FindStringSubmatch(s.stdout.String())[1]
	signer, err := auth.NewSigner([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	s.signer = signer
	t.Cleanup(func() { s.shutdown(t) })
	return s
}

// shutdown stops the server as SIGTERM would and checks it exits cleanly.
func (s *testServer) shutdown(t *testing.T) {
	t.Helper()
	s.stop()
	select {
	case err, ok := <-s.done:
		if !ok {
			return // the test already collected run's result
		}
		if err != nil {
			t.Errorf("feedd exited with %v", err)
		}
		close(s.done)
	case <-time.After(waitLong):
		t.Errorf("feedd did not stop within %s", waitLong)
	}
}

func (s *testServer) userToken(t *testing.T, sub string, ttl time.Duration) string {
	t.Helper()
	tok, err := s.signer.Mint(sub, ttl, false, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *testServer) adminToken(t *testing.T) string {
	t.Helper()
	tok, err := s.signer.Mint("", time.Hour, true, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends a request with token (if any) as a Bearer header and body (if
// any) as JSON, and returns the status and body.
func (s *testServer) do(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		header.Set("Content-Type", "application/json")
	}
	status, _, b := send(t, s, method, path, header, body)
	return status, b
}

// send makes a request with the given headers and returns the status, the
// response headers and the body.
func send(t *testing.T, s *testServer, method, path string, header http.Header, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// apiEvent is an event as the admin and history APIs show it.
type apiEvent struct {
	ID        int64           `json:"id"`
	User      string          `json:"user"`
	Broadcast bool            `json:"broadcast"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	CreatedAt string          `json:"created_at"`
}

// post publishes body and returns the created events, failing on any
// answer but 201.
func (s *testServer) post(t *testing.T, body string) []apiEvent {
	t.Helper()
	status, b := s.do(t, http.MethodPost, "/admin/notifications", s.adminToken(t), body)
	if status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", body, status, b)
	}
	var out struct{ Events []apiEvent }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out.Events
}

// sseEvent is one event as a client parses it.
type sseEvent struct {
	ID, Type, Data string
}

// feedClient is an open /events stream read by a goroutine.
type feedClient struct {
	events chan sseEvent
	ended  chan error // receives the reason the stream ended, then closes
	cancel context.CancelFunc
}

// openFeed opens /events with query and header, checks for 200 and the
// first retry field, and returns once the server has registered the feed.
func (s *testServer) openFeed(t *testing.T, query string, header http.Header) *feedClient {
	t.Helper()
	resp, cancel := s.openRaw(t, query, header)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("GET /events?%s: %d %s", query, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	f := &feedClient{events: make(chan sseEvent, 1024), ended: make(chan error, 1), cancel: cancel}
	retried := make(chan struct{})
	go f.read(resp.Body, retried)
	select {
	case <-retried:
	case err := <-f.ended:
		t.Fatalf("feed ended before its retry field: %v", err)
	case <-time.After(waitLong):
		t.Fatal("no retry field from /events")
	}
	t.Cleanup(cancel)
	return f
}

func (s *testServer) openRaw(t *testing.T, query string, header http.Header) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/events?"+query, nil)
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

// read parses the stream the way a browser's EventSource does (for the
// plain LF line endings feedd writes) until it ends.
func (f *feedClient) read(body io.Reader, retried chan<- struct{}) {
	sc := bufio.NewScanner(body)
	var ev sseEvent
	var data []string
	hasData, sawRetry := false, false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData {
				ev.Data = strings.Join(data, "\n")
				f.events <- ev
			}
			ev, data, hasData = sseEvent{ID: ev.ID}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			ev.ID = value
		case "event":
			ev.Type = value
		case "data":
			data, hasData = append(data, value), true
		case "retry":
			if !sawRetry {
				sawRetry = true
				close(retried)
			}
		}
	}
	f.ended <- sc.Err()
	close(f.ended)
}

// next returns the next event, failing the test if none comes in time or
// the stream ends.
func (f *feedClient) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev := <-f.events:
		return ev
	case err := <-f.ended:
		t.Fatalf("feed ended (%v) while an event was expected", err)
	case <-time.After(waitLong):
		t.Fatal("no event within", waitLong)
	}
	return sseEvent{}
}

// nextIDs reads n events and returns their ids.
func (f *feedClient) nextIDs(t *testing.T, n int) []int64 {
	t.Helper()
	out := make([]int64, n)
	for i := range out {
		ev := f.next(t)
		id, err := strconv.ParseInt(ev.ID, 10, 64)
		if err != nil {
			t.Fatalf("event id %q: %v", ev.ID, err)
		}
		out[i] = id
	}
	return out
}
