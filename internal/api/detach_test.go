package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/db"
)

// The writer a feed uses after the takeover frames every write as one
// chunk, skips empty writes (an empty chunk would end the response) and
// ends the response with the zero chunk.
func TestChunkedConnFramesEachWrite(t *testing.T) {
	server, client := net.Pipe()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	cw := newChunkedConn(server)
	for _, p := range []string{"id: 1\ndata: a\n\n", "", strings.Repeat("x", 300)} {
		if n, err := cw.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	cw.finish()
	server.Close()
	raw := <-got
	want := "f\r\nid: 1\ndata: a\n\n\r\n12c\r\n" + strings.Repeat("x", 300) + "\r\n0\r\n\r\n"
	if string(raw) != want {
		t.Fatalf("wire %q, want %q", raw, want)
	}
	body, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(raw)))
	if err != nil || string(body) != "id: 1\ndata: a\n\n"+strings.Repeat("x", 300) {
		t.Fatalf("dechunked %q, %v", body, err)
	}
	if cw.bytes != int64(len(body)) {
		t.Errorf("counted %d body bytes, want %d", cw.bytes, len(body))
	}
}

// openRaw opens alice's feed over HTTP/1.1 and returns the response once
// the retry field has arrived.
func openRaw(t *testing.T, ts *httptest.Server) (*http.Response, *bufio.Reader) {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + "/events?token=" + token(t, "alice"))
	must(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
		t.Fatalf("GET /events: %d over %s", resp.StatusCode, resp.Proto)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("first line %q, %v", line, err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "\n" {
		t.Fatalf("after the retry field %q, %v; want the blank line that ends it", line, err)
	}
	return resp, br
}

// nextID reads up to the next id line of a feed and returns it.
func nextID(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("feed ended while an event was expected: %v", err)
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			return strings.TrimSuffix(id, "\n")
		}
	}
}

// detachedCount returns how many feeds are running outside their handlers.
func detachedCount(s *Server) int {
	s.detached.mu.Lock()
	defer s.detached.mu.Unlock()
	return len(s.detached.conns)
}

// A feed that left its handler still delivers, still frees its slot as
// soon as its client leaves, and ends cleanly when the server closes
// feeds: waitFeeds returns once it has.
func TestDetachedFeedDeliversAndEndsCleanly(t *testing.T) {
	e := newAPIEnv(t)
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)

	_, br := openRaw(t, ts)
	// The event arrives after the retry field, so the feed has left its
	// handler (the handler sends the retry field, then detaches).
	ids := e.commit(t, db.NewEvent{UserID: "alice", Type: "m", Data: "x"})
	if id := nextID(t, br); id != strconv.FormatInt(ids[0], 10) {
		t.Fatalf("read id %s, want %d", id, ids[0])
	}
	if n := detachedCount(e.srv); n != 1 {
		t.Fatalf("%d feeds left their handlers, want 1", n)
	}

	resp2, br2 := openRaw(t, ts)
	ids = e.commit(t, db.NewEvent{UserID: "alice", Type: "m", Data: "x"})
	for _, r := range []*bufio.Reader{br, br2} {
		if id := nextID(t, r); id != strconv.FormatInt(ids[0], 10) {
			t.Fatalf("read id %s, want %d", id, ids[0])
		}
	}
	resp2.Body.Close()
	e.waitEnded(t, "/events")
	if n := detachedCount(e.srv); n != 1 {
		t.Fatalf("after one client left, %d feeds run outside their handlers, want 1", n)
	}

	e.srv.closeFeeds()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := e.srv.waitFeeds(ctx); err != nil {
		t.Fatalf("waitFeeds: %v", err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("the feed did not end cleanly: %v (read %q)", err, rest)
	}
	if n := detachedCount(e.srv); n != 0 {
		t.Fatalf("%d feeds still outside their handlers after waitFeeds", n)
	}
}

// Past its deadline waitFeeds cuts off the feeds that have not ended.
func TestWaitFeedsClosesWhatOutlivesTheDeadline(t *testing.T) {
	e := newAPIEnv(t)
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	_, br := openRaw(t, ts)
	// The event arrives after the retry field: the feed has left its handler.
	e.commit(t, db.NewEvent{UserID: "alice", Type: "m", Data: "x"})
	nextID(t, br)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the feed was never asked to end: it is cut off
	if err := e.srv.waitFeeds(ctx); err == nil {
		t.Fatal("waitFeeds past its deadline reported every feed ended by itself")
	}
	if _, err := io.ReadAll(br); err == nil {
		t.Fatal("the cut-off feed's response ended cleanly")
	}
	e.waitEnded(t, "/events")
}

// The writer moves the connection's deadline at most once per
// deadlineSlack, ignores the clearing that follows each write, and a write
// the client does not read still fails at the deadline.
func TestChunkedConnDeadlines(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	defer server.Close()
	cw := newChunkedConn(server)
	now := time.Now()
	must(t, cw.SetWriteDeadline(now.Add(time.Hour)))
	must(t, cw.SetWriteDeadline(now.Add(time.Hour+deadlineSlack/2)))
	must(t, cw.SetWriteDeadline(time.Time{}))
	if !cw.deadline.Equal(now.Add(time.Hour)) {
		t.Fatalf("deadline moved to %v within the slack, or cleared", cw.deadline)
	}
	must(t, cw.SetWriteDeadline(now.Add(time.Hour+2*deadlineSlack)))
	if !cw.deadline.Equal(now.Add(time.Hour + 2*deadlineSlack)) {
		t.Fatalf("deadline %v not moved forward past the slack", cw.deadline)
	}

	stalled := newChunkedConn(server)
	must(t, stalled.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
	if _, err := stalled.Write([]byte("data: x\n\n")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write nobody reads returned %v, want a deadline error", err)
	}
}
