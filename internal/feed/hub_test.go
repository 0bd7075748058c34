package feed

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// waitLong bounds every wait in this package's tests: only reached when
// something is broken.
const waitLong = 10 * time.Second

// hubRow returns a delivery for the log row id addressed to user ("" for a
// broadcast).
func hubRow(id int64, user string) *delivery {
	return &delivery{id: id, userID: user, typ: "message", wire: fmt.Appendf(nil, "id: %d\ndata: x\n\n", id)}
}

// mustSubscribe subscribes user to h and fails the test on an error.
func mustSubscribe(t *testing.T, h *hub, user string) *subscriber {
	t.Helper()
	s, err := h.subscribe(user)
	if err != nil {
		t.Fatalf("subscribe %q: %v", user, err)
	}
	return s
}

// takeIDs takes what s has queued and returns the ids, failing the test if
// the queue overflowed.
func takeIDs(t *testing.T, s *subscriber) []int64 {
	t.Helper()
	q, overflow := s.take(nil)
	if overflow {
		t.Fatalf("feed of %q overflowed", s.userID)
	}
	ids := make([]int64, len(q))
	for i, d := range q {
		ids[i] = d.id
	}
	return ids
}

// woken reports whether s has a wake-up signal pending, consuming it.
func woken(s *subscriber) bool {
	select {
	case <-s.wake:
		return true
	default:
		return false
	}
}

func TestHubCapsFeedsPerUser(t *testing.T) {
	h := newHub(HubOptions{MaxConnsPerUser: 2})
	a1 := mustSubscribe(t, h, "alice")
	mustSubscribe(t, h, "alice")
	if _, err := h.subscribe("alice"); !errors.Is(err, ErrTooManyFeeds) {
		t.Fatalf("third feed for alice: err %v, want ErrTooManyFeeds", err)
	}
	mustSubscribe(t, h, "bob") // the cap is per user
	if n := h.feeds(); n != 3 {
		t.Fatalf("feeds() = %d, want 3", n)
	}

	h.unsubscribe(a1)
	if n := h.feeds(); n != 2 {
		t.Fatalf("after an unsubscribe feeds() = %d, want 2", n)
	}
	mustSubscribe(t, h, "alice") // the freed slot is usable at once
	if _, err := h.subscribe("alice"); !errors.Is(err, ErrTooManyFeeds) {
		t.Fatalf("alice over the cap again: err %v, want ErrTooManyFeeds", err)
	}
}

func TestHubWithoutCapAcceptsManyFeeds(t *testing.T) {
	h := newHub(HubOptions{})
	subs := make([]*subscriber, 100)
	for i := range subs {
		subs[i] = mustSubscribe(t, h, "alice")
	}
	if n := h.feeds(); n != 100 {
		t.Fatalf("feeds() = %d, want 100", n)
	}
	for _, s := range subs {
		h.unsubscribe(s)
	}
	if n := h.feeds(); n != 0 {
		t.Fatalf("after unsubscribing all, feeds() = %d", n)
	}
}

func TestHubDispatchRoutesRowsToTheirUsers(t *testing.T) {
	h := newHub(HubOptions{})
	alice1 := mustSubscribe(t, h, "alice")
	alice2 := mustSubscribe(t, h, "alice")
	bob := mustSubscribe(t, h, "bob")

	h.dispatch([]*delivery{hubRow(11, "alice"), hubRow(12, "bob"), hubRow(13, ""), hubRow(14, "carol")})
	for _, tc := range []struct {
		name string
		s    *subscriber
		want []int64
	}{
		{"alice's first feed", alice1, []int64{11, 13}},
		{"alice's second feed", alice2, []int64{11, 13}},
		{"bob", bob, []int64{12, 13}},
	} {
		if !woken(tc.s) {
			t.Errorf("%s was not woken", tc.name)
		}
		if got := takeIDs(t, tc.s); !slices.Equal(got, tc.want) {
			t.Errorf("%s got %v, want %v", tc.name, got, tc.want)
		}
	}
	h.unsubscribe(bob)
	h.dispatch([]*delivery{hubRow(15, "bob"), hubRow(16, "")})
	if got := takeIDs(t, bob); len(got) != 0 {
		t.Errorf("an unsubscribed feed still got %v", got)
	}
	if got := takeIDs(t, alice1); !slices.Equal(got, []int64{16}) {
		t.Errorf("alice got %v after bob left, want [16]", got)
	}
}

func TestSubscriberOverflow(t *testing.T) {
	const queueLen = 4
	for _, tc := range []struct {
		name     string
		rows     int
		overflow bool
	}{
		{"queue just full", queueLen, false},
		{"one past the queue", queueLen + 1, true},
		{"ten times the queue", queueLen * 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(HubOptions{QueueLen: queueLen})
			s := mustSubscribe(t, h, "alice")
			for id := range int64(tc.rows) {
				h.dispatch([]*delivery{hubRow(id+1, "alice")})
			}
			if !woken(s) {
				t.Fatal("no wake-up signal after dispatch")
			}
			q, overflow := s.take(nil)
			if overflow != tc.overflow {
				t.Fatalf("overflow = %v, want %v", overflow, tc.overflow)
			}
			switch {
			case tc.overflow && len(q) != 0:
				t.Fatalf("an overflowed queue still holds %d rows; the feed reads them from the log", len(q))
			case !tc.overflow && len(q) != tc.rows:
				t.Fatalf("queue holds %d rows, want %d", len(q), tc.rows)
			}
			if q, overflow := s.take(q); overflow || len(q) != 0 {
				t.Fatalf("second take = %d rows, overflow %v; want an empty queue and no overflow", len(q), overflow)
			}
			// After the take the queue works normally again.
			h.dispatch([]*delivery{hubRow(1000, "alice")})
			if got := takeIDs(t, s); !slices.Equal(got, []int64{1000}) {
				t.Fatalf("after the take the feed got %v, want [1000]", got)
			}
		})
	}
}

func TestDispatchNeverBlocksOnAFeedThatDoesNotRead(t *testing.T) {
	const queueLen = 8
	h := newHub(HubOptions{QueueLen: queueLen})
	idle := mustSubscribe(t, h, "alice")   // never takes
	reader := mustSubscribe(t, h, "alice") // takes at the end
	done := make(chan struct{})
	go func() {
		defer close(done)
		for id := int64(1); id <= queueLen*10; id += 2 {
			h.dispatch([]*delivery{hubRow(id, "alice"), hubRow(id+1, "")})
		}
	}()
	select {
	case <-done:
	case <-time.After(waitLong):
		t.Fatal("dispatch blocked on a feed that does not read")
	}
	for _, s := range []*subscriber{idle, reader} {
		if q, overflow := s.take(nil); !overflow || len(q) != 0 {
			t.Fatalf("feed got %d rows, overflow %v; want an overflow", len(q), overflow)
		}
	}
}

func TestHubConcurrentSubscribeAndDispatch(t *testing.T) {
	const (
		users   = 4
		churns  = 200
		rows    = 2000
		perUser = 3
	)
	h := newHub(HubOptions{QueueLen: 16, MaxConnsPerUser: perUser + 1})
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// Long-lived feeds that read what they are given and check its order.
	errs := make(chan error, users*perUser)
	for u := range users {
		for range perUser {
			s := mustSubscribe(t, h, fmt.Sprint("u", u))
			wg.Go(func() {
				defer h.unsubscribe(s)
				var last int64
				var spare []*delivery
				for {
					select {
					case <-stop:
						return
					case <-s.wake:
					}
					q, _ := s.take(spare)
					for _, d := range q {
						if d.id <= last {
							errs <- fmt.Errorf("feed of %s got %d after %d", s.userID, d.id, last)
							return
						}
						if d.userID != "" && d.userID != s.userID {
							errs <- fmt.Errorf("feed of %s got a row for %s", s.userID, d.userID)
							return
						}
						last = d.id
					}
					spare = q
				}
			})
		}
	}
	// Feeds that come and go while rows are dispatched.
	var churners sync.WaitGroup
	for u := range users {
		churners.Go(func() {
			for range churns {
				s, err := h.subscribe(fmt.Sprint("u", u))
				if err != nil {
					errs <- fmt.Errorf("churning subscribe: %v", err)
					return
				}
				h.feeds()
				h.unsubscribe(s)
			}
		})
	}
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		for id := int64(1); id <= rows; id++ {
			user := ""
			if id%3 != 0 {
				user = fmt.Sprint("u", id%users)
			}
			h.dispatch([]*delivery{hubRow(id, user)})
		}
	}()

	churners.Wait()
	select {
	case <-dispatched:
	case <-time.After(waitLong):
		t.Fatal("dispatch did not finish")
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := h.feeds(); n != 0 {
		t.Fatalf("feeds() = %d after every feed left", n)
	}
}

func TestSubscriberQueueIsBoundedInBytes(t *testing.T) {
	big := func(id int64) *delivery {
		return &delivery{id: id, userID: "alice", typ: "message", wire: make([]byte, 400)}
	}
	h := newHub(HubOptions{QueueLen: 100, QueueBytes: 1000})
	s := mustSubscribe(t, h, "alice")
	h.dispatch([]*delivery{big(1), big(2)}) // 800 bytes: fits
	if got := takeIDs(t, s); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("took %v, want [1 2]", got)
	}
	h.dispatch([]*delivery{big(3), big(4), big(5)}) // 1200 bytes: over
	if q, overflow := s.take(nil); !overflow || len(q) != 0 {
		t.Fatalf("after 1200 bytes: overflow %v with %d queued, want an empty overflowed queue", overflow, len(q))
	}
	h.dispatch([]*delivery{big(6)}) // the byte count starts again after take
	if got := takeIDs(t, s); !slices.Equal(got, []int64{6}) {
		t.Fatalf("took %v after the overflow, want [6]", got)
	}
}
