package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/feedtest"
)

// soak turns TestSeamUnderConcurrency into a longer run with more feeds:
//
//	go test -race -run TestSeamUnderConcurrency ./cmd/feedd/ -soak 2m
//
// (the package list must come before -soak: go test wants it before any
// flag it does not know itself).
var soak = flag.Duration("soak", 0, "run TestSeamUnderConcurrency this long instead of a fixed count")

// seamRun is one run of TestSeamUnderConcurrency: its shape, and what its
// publishers and subscribers share.
type seamRun struct {
	s          *testServer
	users      []string
	feeds      int // per user
	publishers int
	notes      int       // notifications to post, or with -soak
	until      time.Time // post until then
	burst      int       // notifications for one user in one batch: more than a feed's queue holds
	dropMax    int       // a connection is dropped after 1 to dropMax events
	sample     int64     // events with an id that is a multiple of sample get their data checked
	seed       uint64
	ttl        time.Duration
	admin      string
	client     *http.Client // the publishers'

	mu                                              sync.Mutex // guards the ledger: every event answered 201
	created                                         map[int64]seamEntry
	notesPosted, burstPosted, posts, batches, bcast int

	published chan struct{}      // closed once want is complete
	want      map[string][]int64 // the ids each user's feeds must receive
}

// seamEntry is what a subscriber must receive for one created event.
type seamEntry struct {
	user      string // "" for a broadcast
	typ, data string // as the SSE client sees them
}

// Ways a subscriber gives its cursor when it connects.
const (
	seamByHeader   = iota // Last-Event-ID header
	seamByQuery           // last_event_id=
	seamByPolyfill        // lastEventId=
	seamCursorKinds
)

var seamCursorNames = [seamCursorKinds]string{"Last-Event-ID", "last_event_id", "lastEventId"}

// TestSeamUnderConcurrency: many feeds across several users randomly drop
// and reconnect with Last-Event-ID (or last_event_id, lastEventId) while
// concurrent publishers post single, multicast and broadcast notifications.
// Each feed's received ids must equal exactly what its user should get: in
// order, no gap, no duplicate.
func TestSeamUnderConcurrency(t *testing.T) {
	r := &seamRun{users: seamUsers(5), feeds: 3, publishers: 4, notes: 600, burst: 300, dropMax: 40, sample: 1, seed: 1}
	if *soak > 0 {
		r = &seamRun{users: seamUsers(8), feeds: 4, publishers: 6, burst: 300, dropMax: 120, sample: 7, seed: uint64(time.Now().UnixNano())}
	}
	t.Logf("seed %d (rand.NewPCG(seed, n): subscriber n, publisher 1000+n)", r.seed)
	start := time.Now()
	r.s = startServer(t, "--poll-interval", "20ms", "--max-conns-per-user", "64")
	r.ttl = time.Hour + *soak
	r.created, r.published, r.want = make(map[int64]seamEntry), make(chan struct{}), make(map[string][]int64)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second+*soak)
	defer cancel()

	var err error
	if r.admin, err = r.s.signer.Mint("", r.ttl, true, "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	var subs []*seamSub
	for i := range len(r.users) * r.feeds {
		user := r.users[i%len(r.users)]
		tok, err := r.s.signer.Mint(user, r.ttl, false, "", "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, &seamSub{r: r, user: user, n: i, token: tok,
			rng: rand.New(rand.NewPCG(r.seed, uint64(i))), events: make(map[int64]sseEvent)})
	}
	var subWG sync.WaitGroup
	for _, sub := range subs {
		subWG.Add(1)
		go func() {
			defer subWG.Done()
			sub.err = sub.run(ctx)
		}()
	}

	r.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: r.publishers}}
	if *soak > 0 {
		r.until = time.Now().Add(*soak)
	}
	var pubWG sync.WaitGroup
	for p := range r.publishers {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			if err := r.publish(ctx, p); err != nil {
				t.Errorf("publisher %d: %v", p, err)
				cancel() // the subscribers cannot finish either
			}
		}()
	}
	pubWG.Wait()
	r.client.CloseIdleConnections()
	published := time.Since(start)

	ids := slices.Sorted(maps.Keys(r.created))
	for _, u := range r.users {
		r.want[u] = []int64{}
	}
	for _, id := range ids {
		for _, u := range r.users {
			if to := r.created[id].user; to == "" || to == u {
				r.want[u] = append(r.want[u], id)
			}
		}
	}
	close(r.published)
	subWG.Wait()

	var deliveries, checked, conns, live, early, fresh, bearer, got429, ends int
	var byKind [seamCursorKinds]int
	for _, sub := range subs {
		name := fmt.Sprintf("feed %d of %s", sub.n, sub.user)
		if sub.err != nil {
			t.Errorf("%s: %v", name, sub.err)
		}
		if d := sub.diff(); d != "" {
			t.Errorf("%s received %d ids, want %d (%d connections): %s", name, len(sub.got), len(r.want[sub.user]), len(sub.conns), d)
		}
		checked += sub.checkData(t, name)
		deliveries += len(sub.got)
		conns += len(sub.conns)
		for _, c := range sub.conns[min(1, len(sub.conns)):] { // the reconnects
			byKind[c.kind]++
			if c.live {
				live++
			}
		}
		early, fresh, bearer, got429, ends = early+sub.early, fresh+sub.fresh, bearer+sub.bearer, got429+sub.got429, ends+sub.ends
	}
	t.Logf("%d users x %d feeds, %d publishers: %d notifications and %d in bursts (%d posts, %d batches) created %d events (%d broadcast) in %s",
		len(r.users), r.feeds, r.publishers, r.notesPosted, r.burstPosted, r.posts, r.batches, len(ids), r.bcast, published.Round(time.Millisecond))
	t.Logf("%d deliveries checked in order, data of %d checked; %d reconnects (%d while publishing): %d Last-Event-ID, %d last_event_id, %d lastEventId; "+
		"%d dropped before any event, %d with a fresh token, %d connections with a Bearer header, %d answered 429, %d ended by the server; %s",
		deliveries, checked, conns-len(subs), live, byKind[seamByHeader], byKind[seamByQuery], byKind[seamByPolyfill],
		early, fresh, bearer, got429, ends, time.Since(start).Round(time.Millisecond))
}

// seamUsers returns the user ids u0 to u(n-1).
func seamUsers(n int) []string {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	return users
}

// publish posts as publisher p until the run's count of notifications is
// reached or, with -soak, its time is over.
func (r *seamRun) publish(ctx context.Context, p int) error {
	rng := rand.New(rand.NewPCG(r.seed, uint64(1000+p)))
	for seq := 0; ; seq++ {
		var notes []seamNote
		tag := func(i int) string { return fmt.Sprintf("p%d-%d-%d", p, seq, i) }
		switch k := rng.IntN(10); {
		case p == 0 && seq%150 == 20: // a burst for one user overflows its feeds' queues
			u := r.users[seq/150%len(r.users)]
			for i := range r.burst {
				n := newSeamNote(rng, r.users, tag(i), 0)
				n.User, n.to = u, []string{u}
				notes = append(notes, n)
			}
		case k < 7:
			notes = append(notes, newSeamNote(rng, r.users, tag(0), k%3))
		default:
			for i := range 2 + rng.IntN(5) {
				notes = append(notes, newSeamNote(rng, r.users, tag(i), rng.IntN(3)))
			}
		}
		r.mu.Lock()
		more := r.notesPosted < r.notes
		if !r.until.IsZero() {
			more = time.Now().Before(r.until)
		}
		switch {
		case !more:
		case len(notes) == r.burst:
			r.burstPosted += len(notes)
		default:
			r.notesPosted += len(notes)
		}
		r.mu.Unlock()
		if !more || ctx.Err() != nil {
			return nil
		}
		if err := r.post(ctx, notes); err != nil {
			return err
		}
	}
}

// seamNote is one notification to post, with what its subscribers must see.
type seamNote struct {
	User      string          `json:"user,omitempty"`
	Users     []string        `json:"users,omitempty"`
	Broadcast bool            `json:"broadcast,omitempty"`
	Type      string          `json:"type,omitempty"`
	Data      json.RawMessage `json:"data"`

	to                 []string // one per created event, "" for a broadcast
	wantType, wantData string
}

// newSeamNote makes a single (shape 0), multicast (1) or broadcast (2)
// notification whose data starts with tag.
func newSeamNote(rng *rand.Rand, users []string, tag string, shape int) seamNote {
	var n seamNote
	switch shape {
	case 0:
		n.User = users[rng.IntN(len(users))]
		n.to = []string{n.User}
	case 1:
		for _, i := range rng.Perm(len(users))[:2+rng.IntN(2)] {
			n.Users = append(n.Users, users[i])
		}
		n.to = n.Users
	default:
		n.Broadcast, n.to = true, []string{""}
	}
	n.Type = []string{"", "message", "order.shipped", "chat:msg-v1"}[rng.IntN(4)]
	if n.Type != "message" {
		n.wantType = n.Type
	}
	var s string
	switch rng.IntN(4) {
	case 0:
		s, n.wantData = tag+" one line", tag+" one line"
	case 1:
		s, n.wantData = tag+"\nsecond line\n\nfourth line", tag+"\nsecond line\n\nfourth line"
	case 2:
		s, n.wantData = tag+"\r\nafter CRLF\rafter CR", tag+"\nafter CRLF\nafter CR"
	default:
		n.Data = json.RawMessage(fmt.Sprintf(`{"tag": %q,  "list": [1, 2, {"a": null}]}`, tag))
		n.wantData = fmt.Sprintf(`{"tag":%q,"list":[1,2,{"a":null}]}`, tag)
		return n
	}
	n.Data, _ = json.Marshal(s)
	return n
}

// post publishes notes, one alone or several as a batch, checks the answer
// against them and records the created events.
func (r *seamRun) post(ctx context.Context, notes []seamNote) error {
	path, body := "/admin/notifications", []byte(nil)
	var err error
	if len(notes) == 1 {
		body, err = json.Marshal(notes[0])
	} else {
		path = "/admin/notifications/batch"
		body, err = json.Marshal(map[string][]seamNote{"notifications": notes})
	}
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.s.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var out struct{ Events []apiEvent }
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s %.200s: %d %s", path, body, resp.StatusCode, b)
	} else if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("POST %s: decode %s: %v", path, b, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if len(notes) > 1 {
		r.batches++
	}
	evs := out.Events
	for _, n := range notes {
		for _, to := range n.to {
			if len(evs) == 0 {
				return fmt.Errorf("POST %s %.200s: answer %s has too few events", path, body, b)
			}
			e := evs[0]
			evs = evs[1:]
			var got, posted bytes.Buffer
			json.Compact(&got, e.Data)
			json.Compact(&posted, n.Data)
			wantType := n.Type
			if wantType == "" {
				wantType = "message"
			}
			if e.User != to || e.Broadcast != (to == "") || e.Type != wantType || got.String() != posted.String() {
				return fmt.Errorf("POST %s: created %+v (data %s), want user %q type %q data %s", path, e, e.Data, to, wantType, n.Data)
			}
			if _, dup := r.created[e.ID]; dup {
				return fmt.Errorf("POST %s: id %d was already created", path, e.ID)
			}
			r.created[e.ID] = seamEntry{user: to, typ: n.wantType, data: n.wantData}
			if to == "" {
				r.bcast++
			}
		}
	}
	if len(evs) > 0 {
		return fmt.Errorf("POST %s: answer %s has %d events too many", path, b, len(evs))
	}
	return nil
}

// seamSub is one subscriber: a feed that drops and resumes until it holds
// its user's whole log.
type seamSub struct {
	r     *seamRun
	user  string
	n     int
	token string
	rng   *rand.Rand

	got                                []int64
	events                             map[int64]sseEvent // a sample of got, for the data check
	conns                              []seamConn
	early, fresh, bearer, got429, ends int
	err                                error
}

// seamConn is one connection of a subscriber.
type seamConn struct {
	at     int // len(got) when it opened
	kind   int
	cursor int64
	live   bool // opened while the publishers were still posting
}

// done reports whether the subscriber has received the last event its user
// is to get; false while the publishers are still posting.
func (sub *seamSub) done() bool {
	select {
	case <-sub.r.published:
		w := sub.r.want[sub.user]
		return len(w) == 0 || sub.last() >= w[len(w)-1]
	default:
		return false
	}
}

func (sub *seamSub) last() int64 {
	if len(sub.got) == 0 {
		return 0
	}
	return sub.got[len(sub.got)-1]
}

// run connects and reconnects until the subscriber is done.
func (sub *seamSub) run(ctx context.Context) error {
	backoff := time.NewTimer(0)
	defer backoff.Stop()
	for !sub.done() {
		if ctx.Err() != nil {
			return fmt.Errorf("gave up after %d connections: %v", len(sub.conns), ctx.Err())
		}
		resp, stop, err := sub.open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				continue // the check above reports it
			}
			return err
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			stop()
			sub.got429++
			backoff.Reset(10 * time.Millisecond) // a retry delay, not a synchronisation
			select {
			case <-backoff.C:
			case <-ctx.Done():
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			stop()
			return fmt.Errorf("GET /events: %d %s", resp.StatusCode, b)
		}
		if sub.rng.IntN(10) == 0 {
			stop() // drop before any event
			sub.early++
			continue
		}
		read, _ := feedtest.Read(resp.Body, stop)
		f := &feedClient{Feed: read, events: read.Events, ended: read.Ended}
		err = sub.read(ctx, f)
		stop()
		for drained := false; !drained; { // let the reader goroutine exit
			select {
			case <-f.events:
			case <-f.ended:
				drained = true
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// open connects with the cursor of the last event received, given the way
// the connection's turn says, with the token in the query or a header.
func (sub *seamSub) open(ctx context.Context) (*http.Response, context.CancelFunc, error) {
	c := seamConn{at: len(sub.got), kind: seamByQuery, cursor: sub.last()}
	select {
	case <-sub.r.published:
	default:
		c.live = true
	}
	if len(sub.conns) > 0 {
		c.kind = (sub.n + len(sub.conns)) % seamCursorKinds
		if sub.rng.IntN(4) == 0 {
			tok, err := sub.r.s.signer.Mint(sub.user, sub.r.ttl, false, "", "", time.Now())
			if err != nil {
				return nil, nil, err
			}
			sub.token = tok
			sub.fresh++
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, sub.r.s.base+"/events", nil)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	q := req.URL.Query()
	if c.kind == seamByHeader {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(c.cursor, 10))
	} else {
		q.Set(seamCursorNames[c.kind], strconv.FormatInt(c.cursor, 10))
	}
	if sub.rng.IntN(2) == 0 {
		req.Header.Set("Authorization", "Bearer "+sub.token)
		sub.bearer++
	} else {
		q.Set("token", sub.token)
	}
	req.URL.RawQuery = q.Encode()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	sub.conns = append(sub.conns, c)
	return resp, func() { cancel(); resp.Body.Close() }, nil
}

// read takes events from one connection until it has taken the number
// drawn for it, the subscriber is done, or the stream ends. Once the
// publishers are done, a feed that stays silent for waitLong fails.
func (sub *seamSub) read(ctx context.Context, f *feedClient) error {
	limit := 1 + sub.rng.IntN(sub.r.dropMax)
	if !sub.conns[len(sub.conns)-1].live {
		limit *= 10 // only the replay is left to check, and each resume reads a page of the log
	}
	published := sub.r.published
	idle := time.NewTimer(waitLong)
	defer idle.Stop()
	var silent <-chan time.Time // idle.C once the publishers are done
	for n := 0; n < limit; {
		select {
		case ev := <-f.events:
			id, err := strconv.ParseInt(ev.ID, 10, 64)
			if err != nil || strings.HasPrefix(ev.Type, "feed.") {
				return fmt.Errorf("after id %d: unexpected event %+v", sub.last(), ev)
			}
			sub.got = append(sub.got, id)
			if id%sub.r.sample == 0 {
				sub.events[id] = ev
			}
			n++
			idle.Reset(waitLong)
		case <-published:
			published, silent = nil, idle.C
			idle.Reset(waitLong)
		case <-silent:
			w := sub.r.want[sub.user]
			return fmt.Errorf("no event for %s after the publishers finished, at id %d of %d", waitLong, sub.last(), w[len(w)-1])
		case <-f.ended:
			sub.ends++
			return nil
		case <-ctx.Done():
			return nil
		}
		if sub.done() {
			return nil
		}
	}
	return nil
}

// diff describes the first difference between the ids received and those
// wanted, and the connection it happened on; "" if there is none.
func (sub *seamSub) diff() string {
	got, want := sub.got, sub.r.want[sub.user]
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	if i == len(got) && i == len(want) {
		return ""
	}
	var what string
	switch {
	case i == len(got):
		what = fmt.Sprintf("missing the last %d: %v", len(want)-i, seamHead(want[i:]))
	case i == len(want):
		what = fmt.Sprintf("%d extra after the last wanted id: %v", len(got)-i, seamHead(got[i:]))
	case i > 0 && got[i] <= got[i-1]:
		what = fmt.Sprintf("got %d after %d, want %d (a duplicate or out of order)", got[i], got[i-1], want[i])
	case got[i] > want[i]:
		what = fmt.Sprintf("got %d, want %d (a gap)", got[i], want[i])
	default:
		what = fmt.Sprintf("got %d, want %d (not an event of this user)", got[i], want[i])
	}
	k := 0
	for j, c := range sub.conns {
		if c.at <= i {
			k = j
		}
	}
	where := "before any connection"
	if k < len(sub.conns) {
		c := sub.conns[k]
		where = fmt.Sprintf("event %d of connection %d, opened with %s=%d", i-c.at, k, seamCursorNames[c.kind], c.cursor)
	}
	lo := max(i-3, 0)
	return fmt.Sprintf("at index %d %s; %s; got[%d:] %v, want[%d:] %v", i, what, where, lo, seamHead(got[lo:]), lo, seamHead(want[lo:]))
}

// seamHead returns up to the first 8 ids of ids.
func seamHead(ids []int64) []int64 { return ids[:min(len(ids), 8)] }

// checkData compares the sampled events with what was posted and returns
// how many it checked.
func (sub *seamSub) checkData(t *testing.T, name string) int {
	t.Helper()
	bad := 0
	for id, ev := range sub.events {
		e, ok := sub.r.created[id]
		if ok && (e.user == sub.user || e.user == "") && ev.Type == e.typ && ev.Data == e.data {
			continue
		}
		if bad++; bad <= 3 {
			t.Errorf("%s: event %d arrived as type %q data %q; it was posted for %q as type %q data %q (known: %t)",
				name, id, ev.Type, ev.Data, e.user, e.typ, e.data, ok)
		}
	}
	return len(sub.events)
}
