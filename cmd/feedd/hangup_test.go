package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitNoFeeds polls /metrics until no feed is open.
func waitNoFeeds(t *testing.T, s *testServer) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for value(s.scrape(t), "feedd_feeds_open", nil) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("feeds still open after their clients left")
		}
		time.Sleep(10 * time.Millisecond) // polling a server's state: nothing to wait on
	}
}

// TestHangUpsAreNotDatabaseErrors has clients leave while their feeds open,
// at every stage (before the request is read, during the replay, just
// after the headers): each is counted as a client that left, and none is
// logged as an error.
func TestHangUpsAreNotDatabaseErrors(t *testing.T) {
	s := startServer(t)
	for range 3 {
		var b strings.Builder
		b.WriteString(`{"notifications":[`)
		for i := range 1000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"user":"alice","data":"%s"}`, strings.Repeat("x", 200))
		}
		b.WriteString(`]}`)
		if status, body := s.do(t, http.MethodPost, "/admin/notifications/batch", s.adminToken(t), b.String()); status != http.StatusCreated {
			t.Fatalf("batch: %d %s", status, body)
		}
	}
	addr := strings.TrimPrefix(s.base, "http://")
	request := "GET /events?last_event_id=0&token=" + s.userToken(t, "alice", time.Hour) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	var wg sync.WaitGroup
	// Fewer than --max-conns-per-user (32), so that every one opens.
	for i := range 30 {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(request)); err != nil {
				t.Error(err)
				return
			}
			// A third leave at once, a third after the status line, a
			// third after some of the replay.
			switch i % 3 {
			case 1:
				bufio.NewReader(conn).ReadString('\n')
			case 2:
				buf := make([]byte, 64<<10)
				for n := 0; n < len(buf); {
					m, err := conn.Read(buf[n:])
					if err != nil {
						break
					}
					n += m
				}
			}
		})
	}
	wg.Wait()
	waitNoFeeds(t, s)
	families := s.scrape(t)
	if n := value(families, "feedd_feeds_closed_total", map[string]string{"reason": "database_error"}); n > 0 {
		t.Errorf("%v feeds whose clients left were counted as database errors", n)
	}
	if logs := s.stderr.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("clients leaving were logged as errors:\n%s", grepLines(logs, "level=ERROR"))
	}
}

// grepLines returns the lines of text that contain word.
func grepLines(text, word string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// TestChurnFreesSlots has clients open and drop feeds, each holding at most
// one at a time and closing its connection before it opens the next, each
// at up to 500 feeds a second: the user never reaches the limit of open
// feeds, because the server frees each slot within milliseconds of seeing
// the connection close (at this rate the limit allows about 20 ms).
func TestChurnFreesSlots(t *testing.T) {
	const churners, limit, rounds = 3, 32, 100
	s := startServer(t, "--max-conns-per-user", fmt.Sprint(limit))
	addr := strings.TrimPrefix(s.base, "http://")
	request := "GET /events?token=" + s.userToken(t, "alice", time.Hour) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	var mu sync.Mutex
	refused := 0
	var wg sync.WaitGroup
	for range churners {
		wg.Go(func() {
			pace := time.NewTicker(2 * time.Millisecond)
			defer pace.Stop()
			for range rounds {
				<-pace.C
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				conn.Write([]byte(request))
				status, err := bufio.NewReader(conn).ReadString('\n')
				conn.Close()
				if err != nil {
					t.Error(err)
					return
				}
				if strings.Contains(status, " 429 ") {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if refused > 0 {
		t.Fatalf("%d of %d opens were refused with 429, though each of %d clients closed its feed before opening the next and the limit is %d",
			refused, churners*rounds, churners, limit)
	}
	waitNoFeeds(t, s)
}
