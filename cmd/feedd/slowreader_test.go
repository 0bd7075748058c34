package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stalledFeed is a feed read over a raw TCP connection with a small
// receive buffer, so that the server's writes block as soon as the client
// stops reading.
type stalledFeed struct {
	conn net.Conn
	body *bufio.Reader
}

func openStalled(t *testing.T, s *testServer, query string, header string) *stalledFeed {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /events?%s HTTP/1.1\r\nHost: feedd\r\n%s\r\n", query, header)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: %d", resp.StatusCode)
	}
	return &stalledFeed{conn: conn, body: bufio.NewReader(resp.Body)}
}

// readIDs reads events until it has seen id last or the stream ends, and
// returns the ids in the order they came.
func (f *stalledFeed) readIDs(t *testing.T, last int64) []int64 {
	t.Helper()
	f.conn.SetReadDeadline(time.Now().Add(waitLong))
	var ids []int64
	for {
		line, err := f.body.ReadString('\n')
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return ids
		}
		if err != nil {
			t.Fatalf("reading the feed after %d events: %v", len(ids), err)
		}
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "id: "); ok {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
			if id == last {
				return ids
			}
		}
	}
}

// postLarge posts n events of about size bytes each to user, in batches
// that stay under the body limit, and returns their ids.
func postLarge(t *testing.T, s *testServer, user string, n, size int) []int64 {
	t.Helper()
	pad := strings.Repeat("x", size)
	perBatch := max(1, (900<<10)/size)
	var ids []int64
	for len(ids) < n {
		var items []string
		for i := len(ids); i < min(n, len(ids)+perBatch); i++ {
			items = append(items, fmt.Sprintf(`{"user":%q,"data":"%d %s"}`, user, i, pad))
		}
		status, body := s.do(t, http.MethodPost, "/admin/notifications/batch", s.adminToken(t),
			`{"notifications":[`+strings.Join(items, ",")+`]}`)
		var out struct{ Events []apiEvent }
		if err := json.Unmarshal(body, &out); status != http.StatusCreated || err != nil {
			t.Fatalf("batch: %d %.200s", status, body)
		}
		for _, e := range out.Events {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

func TestSlowReaderDoesNotHoldUpOthersAndLosesNothing(t *testing.T) {
	s := startServer(t)
	slow := openStalled(t, s, "token="+s.userToken(t, "slow", time.Hour), "")
	fast := s.openFeed(t, "token="+s.userToken(t, "fast", time.Hour), nil)

	// Far more than the socket buffers hold: the slow feed's writes block
	// and its queue in the hub overflows.
	want := postLarge(t, s, "slow", 300, 30<<10)

	// Meanwhile the tailer and every other feed go on.
	for i := range 20 {
		id := s.post(t, fmt.Sprintf(`{"user":"fast","data":"%d"}`, i))[0].ID
		if got := fast.nextIDs(t, 1); got[0] != id {
			t.Fatalf("fast feed got %v, want %d", got, id)
		}
	}

	// Reading again, the slow client gets everything, once, in order.
	got := slow.readIDs(t, want[len(want)-1])
	if !equalIDs(got, want) {
		t.Fatalf("slow reader got %d events, want %d: %s", len(got), len(want), firstDiff(got, want))
	}
}

func TestStalledReaderIsDroppedAndResumes(t *testing.T) {
	s := startServer(t, "--write-timeout", "300ms")
	tok := s.userToken(t, "slow", time.Hour)
	slow := openStalled(t, s, "token="+tok, "")
	want := postLarge(t, s, "slow", 300, 30<<10)

	// The server gives up on the stalled client after --write-timeout.
	deadline := time.Now().Add(waitLong)
	for !strings.Contains(s.stderr.String(), `msg="feed ended" reason=slow`) {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled feed was never dropped:\n%s", lastLines(s.stderr.String(), 8))
		}
		time.Sleep(10 * time.Millisecond) // polling the log with a deadline
	}
	got := slow.readIDs(t, want[len(want)-1])
	if len(got) == len(want) {
		t.Fatal("the stalled client received everything: the test did not stall the feed")
	}

	// Reconnecting with the last id it has, it gets the rest.
	last := int64(0)
	if len(got) > 0 {
		last = got[len(got)-1]
	}
	again := openStalled(t, s, "token="+tok, fmt.Sprintf("Last-Event-ID: %d\r\n", last))
	got = append(got, again.readIDs(t, want[len(want)-1])...)
	if !equalIDs(got, want) {
		t.Fatalf("across the drop the client got %d events, want %d: %s", len(got), len(want), firstDiff(got, want))
	}
}

func equalIDs(a, b []int64) bool { return firstDiff(a, b) == "" }

// firstDiff describes where two id lists first differ, "" if they do not.
func firstDiff(got, want []int64) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("index %d: got %d, want %d", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("lengths differ: got %d, want %d", len(got), len(want))
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
