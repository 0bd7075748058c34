package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/feedtest"
)

// testSecret is the HMAC secret every test server verifies with.
const testSecret = "test-secret-test-secret-test-secret-0123"

// waitLong bounds every wait in these tests: generous, so a loaded CI
// machine does not flake, and only reached when something is broken.
const waitLong = feedtest.WaitLong

// testServer is a feedd under test: started through run() on a free
// loopback port (startServer), or as a process (startProcess).
type testServer struct {
	base   string
	dbPath string
	signer *auth.Signer
	stdout *syncBuffer
	stderr *syncBuffer
	// srv is the server started through run(), nil for a process.
	srv *feedtest.Server
}

// syncBuffer is a server's stdout or stderr as the test sees it.
type syncBuffer = feedtest.Buffer

var listenLine = feedtest.ListenLine

// storeEnv names the variable that runs these tests on another store:
// FEEDD_TEST_STORE=postgres runs every test that is not about the SQLite
// file on a fresh PostgreSQL database (see feedtest.PostgresURL). .ci/run
// runs the package once on each store.
const storeEnv = "FEEDD_TEST_STORE"

// onPostgres reports whether the tests run on PostgreSQL.
func onPostgres() bool { return os.Getenv(storeEnv) == "postgres" }

// sqliteOnly skips a test that is about the SQLite file itself when the
// tests run on PostgreSQL.
func sqliteOnly(t *testing.T) {
	t.Helper()
	if onPostgres() {
		t.Skip("about the SQLite file: runs on the SQLite store only")
	}
}

// freshDB returns a new database for a server: an SQLite file, or on
// PostgreSQL the URL of a new database.
func freshDB(t *testing.T) string {
	t.Helper()
	if onPostgres() {
		return feedtest.PostgresURL(t)
	}
	return filepath.Join(t.TempDir(), "feedd.db")
}

// startServer runs feedd with a fresh database (or dbPath, when args name
// one with --db) and waits until it listens. A test that names an SQLite
// file is about the file, and is skipped on PostgreSQL.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	dbPath := ""
	for i, a := range args {
		if a == "--db" && i+1 < len(args) {
			dbPath = args[i+1]
		}
	}
	if dbPath != "" && !db.IsPostgresURL(dbPath) {
		sqliteOnly(t)
	}
	if dbPath == "" {
		dbPath = freshDB(t)
	}
	full := append([]string{"serve", "--db", dbPath, "--addr", "127.0.0.1:0", "--log-level", "debug"}, args...)
	srv := feedtest.Start(t, run, testSecret, map[string]string{"FEEDD_JWT_SECRET": testSecret}, full...)
	return &testServer{base: srv.Base, dbPath: dbPath, signer: srv.Signer, stdout: srv.Stdout, stderr: srv.Stderr, srv: srv}
}

// stop asks the server to stop, as SIGTERM would.
func (s *testServer) stop() { s.srv.Stop() }

// shutdown stops the server as SIGTERM would and checks it exits cleanly.
func (s *testServer) shutdown(t *testing.T) {
	t.Helper()
	s.srv.Shutdown(t)
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
type sseEvent = feedtest.Event

// feedClient is an open /events stream read by a goroutine.
type feedClient struct {
	*feedtest.Feed
	events chan sseEvent
	ended  chan error // receives the reason the stream ended, then closes
}

// openFeed opens /events with query and header, checks for 200 and the
// first retry field, and returns once the server has registered the feed.
func (s *testServer) openFeed(t *testing.T, query string, header http.Header) *feedClient {
	t.Helper()
	f := feedtest.OpenFeed(t, s.base, query, header)
	return &feedClient{Feed: f, events: f.Events, ended: f.Ended}
}

func (s *testServer) openRaw(t *testing.T, query string, header http.Header) (*http.Response, context.CancelFunc) {
	t.Helper()
	return feedtest.OpenRaw(t, s.base, query, header)
}

// cancel closes the feed's connection.
func (f *feedClient) cancel() { f.Cancel() }

// next returns the next event, failing the test if none comes in time or
// the stream ends.
func (f *feedClient) next(t *testing.T) sseEvent {
	t.Helper()
	return f.Next(t)
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
