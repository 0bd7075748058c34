package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/feedtest"
)

// cluster is several feedd processes on one PostgreSQL database, one of
// which may be down at a time.
type cluster struct {
	mu    sync.Mutex
	procs []*proc // nil while killed
}

// pick returns the base URL of a random running process.
func (c *cluster) pick(rng *rand.Rand) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var up []*proc
	for _, p := range c.procs {
		if p != nil {
			up = append(up, p)
		}
	}
	return up[rng.IntN(len(up))]
}

// TestPostgresClusterLosesNothing runs three feedd processes on one
// database. Publishers post through random processes while subscribers
// read, drop and resume by Last-Event-ID on random processes; midway one
// process is killed with SIGKILL and later started again. Every subscriber
// ends with exactly the log's events for its user, in order, each once.
func TestPostgresClusterLosesNothing(t *testing.T) {
	url := feedtest.PostgresURL(t)
	c := &cluster{}
	for range 3 {
		c.procs = append(c.procs, startProcess(t, url, "--poll-interval", "50ms"))
	}
	users := []string{"ann", "ben", "cid"}
	const publishers, posts = 3, 60

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var answered atomic.Int64
	var pubs sync.WaitGroup
	for w := range publishers {
		pubs.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < posts && ctx.Err() == nil; {
				p := c.pick(rng)
				body := fmt.Sprintf(`{"user":%q,"data":"w%d-%d"}`, users[rng.IntN(len(users))], w, i)
				if rng.IntN(5) == 0 {
					body = fmt.Sprintf(`{"broadcast":true,"data":"w%d-%d"}`, w, i)
				}
				status, _, err := postTo(http.DefaultClient, p.base+"/admin/notifications", p.adminToken(t), body)
				if err == nil && status == http.StatusCreated {
					answered.Add(1)
					i++
				}
			}
		})
	}

	var subs sync.WaitGroup
	got := make([][]int64, len(users))
	stop := make(chan struct{})
	for i, user := range users {
		subs.Go(func() { c.subscribe(ctx, t, user, stop, uint64(i), &got[i]) })
	}

	// Midway, kill one process, then start it again.
	for answered.Load() < publishers*posts/2 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond) // polling a counter the publishers move
	}
	c.mu.Lock()
	victim := c.procs[1]
	c.procs[1] = nil
	c.mu.Unlock()
	victim.signal(t, syscall.SIGKILL)
	victim.wait(t)
	restarted := startProcess(t, url, "--poll-interval", "50ms")
	c.mu.Lock()
	c.procs[1] = restarted
	c.mu.Unlock()

	pubs.Wait()
	if ctx.Err() != nil {
		t.Fatalf("publishers did not finish: %d answered", answered.Load())
	}
	want := make([][]int64, len(users))
	for i, user := range users {
		want[i] = userLog(t, restarted.testServer, user)
	}
	// Subscribers read until they have the log's last event for them.
	for i := range users {
		for !hasLast(&c.mu, got, i, want[i]) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond) // polling the subscribers' progress
		}
	}
	close(stop)
	subs.Wait()
	if ctx.Err() != nil {
		t.Fatal("the subscribers did not catch up within two minutes")
	}
	for i, user := range users {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("%s got %d events, the log holds %d for them:\ngot  %v\nwant %v", user, len(got[i]), len(want[i]), got[i], want[i])
		}
	}
	t.Logf("%d notifications answered 201 through 3 processes, one killed and restarted", answered.Load())
}

// hasLast reports whether subscriber i has received the last of want.
func hasLast(mu *sync.Mutex, got [][]int64, i int, want []int64) bool {
	mu.Lock()
	defer mu.Unlock()
	return len(want) == 0 || (len(got[i]) > 0 && got[i][len(got[i])-1] >= want[len(want)-1])
}

// subscribe reads user's feed from random processes, dropping it after a
// few events and resuming by Last-Event-ID, until stop; it appends the ids
// it receives, in order, to *ids under c.mu.
func (c *cluster) subscribe(ctx context.Context, t *testing.T, user string, stop <-chan struct{}, seed uint64, ids *[]int64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	last := int64(0)
	for {
		select {
		case <-stop:
			return
		default:
		}
		p := c.pick(rng)
		reqCtx, cancel := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, p.base+"/events?token="+p.userToken(t, user, time.Hour), nil)
		req.Header.Set("Last-Event-ID", strconv.FormatInt(last, 10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			continue // the process is down: another one
		}
		if resp.StatusCode != http.StatusOK {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			cancel()
			continue
		}
		f, _ := feedtest.Read(resp.Body, cancel)
		for n := 1 + rng.IntN(8); n > 0; n-- {
			var ev feedtest.Event
			select {
			case ev = <-f.Events:
			case <-f.Ended:
				n = 0
				continue
			case <-stop:
				n = 0
				continue
			}
			id, err := strconv.ParseInt(ev.ID, 10, 64)
			if err != nil || strings.HasPrefix(ev.Type, "feed.") {
				continue
			}
			c.mu.Lock()
			*ids = append(*ids, id)
			c.mu.Unlock()
			last = id
		}
		f.Cancel()
		for range f.Ended { // the reader has stopped
		}
	}
}

// userLog lists, through s, the ids of the events user's feed carries:
// their own and the broadcasts, oldest first.
func userLog(t *testing.T, s *testServer, user string) []int64 {
	t.Helper()
	var ids []int64
	after := int64(0)
	tok := s.userToken(t, user, time.Hour)
	for {
		status, body := s.do(t, http.MethodGet, fmt.Sprintf("/v1/notifications?after=%d&limit=1000", after), tok, "")
		var page struct {
			Events    []apiEvent
			HasMore   bool  `json:"has_more"`
			NextAfter int64 `json:"next_after"`
		}
		if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil {
			t.Fatalf("history of %s: %d %s", user, status, body)
		}
		ids = append(ids, eventIDs(page.Events)...)
		if !page.HasMore {
			return ids
		}
		after = page.NextAfter
	}
}
