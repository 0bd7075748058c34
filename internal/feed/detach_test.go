package feed

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

	"github.com/feedd/feedd/internal/auth"
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
// the retry field has arrived (the feed has gone live by then, or is about
// to).
func openRaw(t *testing.T, e *logEnv, ts *httptest.Server) (*http.Response, *bufio.Reader) {
	t.Helper()
	signer, err := auth.NewSigner([]byte(catchupSecret))
	must(t, err)
	tok, err := signer.Mint("alice", time.Hour, false, "", "", time.Now())
	must(t, err)
	resp, err := ts.Client().Get(ts.URL + "/events?token=" + tok)
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

// waitFeeds polls until the hub holds n feeds.
func waitFeeds(t *testing.T, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for h.Feeds() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the hub holds %d feeds, want %d", h.Feeds(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDetached polls until n feeds have left their handlers.
func waitDetached(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		s.detached.mu.Lock()
		got := len(s.detached.conns)
		s.detached.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d feeds left their handlers, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A feed that left its handler still delivers, still frees its slot as
// soon as its client leaves, and ends cleanly when the server closes
// feeds: WaitFeeds returns once it has.
func TestDetachedFeedDeliversAndEndsCleanly(t *testing.T) {
	e := newLogEnv(t, 64)
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)

	_, br := openRaw(t, e, ts)
	ids := e.commit(t, time.Now(), logRow("alice", "m"))
	e.poll()
	if line, err := br.ReadString('\n'); err != nil || line != "id: "+strconv.FormatInt(ids[0], 10)+"\n" {
		t.Fatalf("read %q, %v; want the event's id line", line, err)
	}

	resp2, _ := openRaw(t, e, ts)
	waitDetached(t, e.srv, 2)
	resp2.Body.Close()
	waitFeeds(t, e.hub, 1)
	waitDetached(t, e.srv, 1)

	e.srv.CloseFeeds()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := e.srv.WaitFeeds(ctx); err != nil {
		t.Fatalf("WaitFeeds: %v", err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("the feed did not end cleanly: %v (read %q)", err, rest)
	}
	waitFeeds(t, e.hub, 0)
}

// Past its deadline WaitFeeds cuts off the feeds that have not ended.
func TestWaitFeedsClosesWhatOutlivesTheDeadline(t *testing.T) {
	e := newLogEnv(t, 64)
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	_, br := openRaw(t, e, ts)
	waitDetached(t, e.srv, 1)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the feed was never asked to end: it is cut off
	if err := e.srv.WaitFeeds(ctx); err == nil {
		t.Fatal("WaitFeeds past its deadline reported every feed ended by itself")
	}
	if _, err := io.ReadAll(br); err == nil {
		t.Fatal("the cut-off feed's response ended cleanly")
	}
	waitFeeds(t, e.hub, 0)
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
