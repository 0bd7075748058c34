package feed

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the raw connection that writes what the API refuses

	"github.com/feedd/feedd/internal/db"
)

const catchupSecret = "catchup-test-secret-catchup-test-secret"

// testMaxData is the data size limit of the test log.
const testMaxData = 1 << 10

// logEnv is a real database with an engine whose background work does not
// run: the test polls the tailer by hand.
type logEnv struct {
	path   string
	store  *db.DB
	engine *Engine
	hub    *hub
	tailer *tailer
	cursor int64 // the tailer's
}

func newLogEnv(t *testing.T, queueLen int) *logEnv {
	t.Helper()
	ctx := context.Background()
	e := &logEnv{path: filepath.Join(t.TempDir(), "f.db")}
	store, err := db.Open(ctx, e.path, db.Options{MaxDataBytes: testMaxData})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = store.Migrate(ctx)
	must(t, err)
	e.store = store
	e.engine = NewEngine(store, Options{Hub: HubOptions{QueueLen: queueLen}, PollInterval: time.Hour})
	e.hub, e.tailer = e.engine.hub, e.engine.tailer
	return e
}

// commit appends evs in one transaction, created at now, and returns their ids.
func (e *logEnv) commit(t *testing.T, now time.Time, evs ...db.NewEvent) []int64 {
	t.Helper()
	out, err := appendEvents(context.Background(), e.store, evs, now)
	must(t, err)
	ids := make([]int64, len(out))
	for i, ev := range out {
		ids[i] = ev.ID
	}
	return ids
}

// poll has the tailer dispatch every new row.
func (e *logEnv) poll() { e.cursor = e.tailer.poll(context.Background(), e.cursor) }

// logRow is a row to append for user ("" for a broadcast) of type typ.
func logRow(user, typ string) db.NewEvent { return db.NewEvent{UserID: user, Type: typ, Data: "x"} }

// testFeed is a subscription and everything it handed out so far.
type testFeed struct {
	*Subscription
	out []byte
}

// openFeed registers a feed for user with the hub that starts after
// cursor, as a client that has seen it, with nothing read from the log yet.
func (e *logEnv) openFeed(t *testing.T, user string, types map[string]bool, cursor int64) *testFeed {
	t.Helper()
	sub, err := e.hub.subscribe(user)
	must(t, err)
	t.Cleanup(func() { e.hub.unsubscribe(sub) })
	return &testFeed{Subscription: &Subscription{e: e.engine, sub: sub, userID: user, types: types, cursor: cursor}}
}

// subscribe opens a feed the way a transport does, through Subscribe.
func (e *logEnv) subscribe(t *testing.T, req Request) *testFeed {
	t.Helper()
	s, err := e.engine.Subscribe(context.Background(), req)
	must(t, err)
	t.Cleanup(s.Close)
	return &testFeed{Subscription: s}
}

// drain takes everything the feed has to hand out now.
func (f *testFeed) drain(t *testing.T) {
	t.Helper()
	for range 10_000 {
		select {
		case <-f.Ready():
		default:
			return
		}
		var err error
		f.out, err = f.Next(t.Context(), f.out)
		must(t, err)
	}
	t.Fatal("the feed never ran out of things to hand out")
}

// catchUp has the feed read the log after its cursor, as it does after its
// queue overflowed, and hand out everything.
func (f *testFeed) catchUp(t *testing.T) {
	t.Helper()
	f.more = true
	f.signal()
	f.drain(t)
}

// must fails the test on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sent returns the ids of the events handed out so far, in order.
func (f *testFeed) sent(t *testing.T) []int64 {
	t.Helper()
	var ids []int64
	for _, ev := range f.events(t) {
		if ev.id != "" {
			id, err := strconv.ParseInt(ev.id, 10, 64)
			if err != nil {
				t.Fatalf("id %q", ev.id)
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// sseEvent is one event as handed out; id is "" for the server's notices.
type sseEvent struct{ id, typ, data string }

// events parses what the feed handed out so far. Each event carries only
// its own id: the encoder writes one on every event that has one.
func (f *testFeed) events(t *testing.T) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	for line := range strings.Lines(string(f.out)) {
		name, value, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
		switch name {
		case "":
			out = append(out, cur)
			cur = sseEvent{}
		case "id":
			cur.id = value
		case "event":
			cur.typ = value
		case "data":
			cur.data = value
		}
	}
	return out
}

func TestOverflowCatchesUpFromTheLog(t *testing.T) {
	for _, live := range []int{0, 3} {
		t.Run(fmt.Sprintf("after %d live events", live), func(t *testing.T) {
			e := newLogEnv(t, 4)
			f := e.openFeed(t, "alice", nil, 0)
			var want []int64
			for range live {
				want = append(want, e.commit(t, time.Now(), logRow("alice", "m"))...)
			}
			e.poll()
			f.drain(t)

			for i := range 50 {
				want = append(want, e.commit(t, time.Now(), logRow("alice", "m"))...)
				if i%10 == 0 {
					e.commit(t, time.Now(), logRow("bob", "m"))
				}
			}
			e.poll()
			if !f.sub.overflow {
				t.Fatal("50 rows did not overflow a queue of 4; the test proves nothing")
			}
			f.drain(t)
			want = append(want, e.commit(t, time.Now(), logRow("alice", "m"), logRow("", "m"))...)
			e.poll()
			f.drain(t)
			if got := f.sent(t); !slices.Equal(got, want) {
				t.Fatalf("feed sent %v\nwant each of %v once, in order", got, want)
			}
		})
	}
}

// TestResumeSeamSendsEachEventOnce runs a resumed feed through the orders in
// which commits, tailer polls, the feed's catch-up and its queue can meet.
func TestResumeSeamSendsEachEventOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		queueLen int
		steps    string
	}{
		{"polled before and after subscribe", 64, "commit poll commit subscribe commit poll catchup deliver"},
		{"catch-up before the poll", 64, "commit poll commit subscribe commit catchup poll deliver"},
		{"commit after catch-up", 64, "commit poll subscribe catchup commit poll deliver"},
		{"deliver between catch-up and commit", 64, "commit subscribe catchup deliver commit poll deliver"},
		{"queue overflows at the seam", 2, "commit commit subscribe commit commit poll catchup deliver"},
		{"queue overflows after catch-up", 2, "commit subscribe catchup commit commit commit poll deliver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLogEnv(t, tc.queueLen)
			var f *testFeed
			var all []int64 // alice's and the broadcast rows, in order
			for step := range strings.FieldsSeq(tc.steps) {
				switch step {
				case "commit":
					ids := e.commit(t, time.Now(), logRow("alice", "m"), logRow("bob", "m"), logRow("", "m"))
					all = append(all, ids[0], ids[2])
				case "poll":
					e.poll()
				case "subscribe":
					f = e.openFeed(t, "alice", nil, all[0]) // the client has seen the first
				case "catchup":
					f.catchUp(t)
				case "deliver":
					f.drain(t)
				}
			}
			if got := f.sent(t); !slices.Equal(got, all[1:]) {
				t.Fatalf("feed resumed after %d sent %v\nwant each of %v once, in order", all[0], got, all[1:])
			}
		})
	}
}

func TestTypesFilterInCatchUpAndLive(t *testing.T) {
	e := newLogEnv(t, 4)
	ids := e.commit(t, time.Now(), logRow("alice", "a"), logRow("alice", "b"), logRow("", "c"), logRow("", "b"), logRow("bob", "b"))
	want := []int64{ids[1], ids[3]}
	f := e.openFeed(t, "alice", map[string]bool{"b": true}, 0)
	f.catchUp(t)
	if got := f.sent(t); !slices.Equal(got, want) {
		t.Fatalf("catch-up with types=b sent %v, want %v", got, want)
	}

	ids = e.commit(t, time.Now(), logRow("alice", "a"), logRow("alice", "b"))
	want = append(want, ids[1])
	e.poll()
	f.drain(t)
	if got := f.sent(t); !slices.Equal(got, want) {
		t.Fatalf("live with types=b sent %v, want %v", got, want)
	}

	// Overflow: the catch-up filters too, and the cursor passes the rows
	// it filtered out.
	var last int64
	for i := range 10 {
		typ := []string{"a", "b"}[i%2]
		last = e.commit(t, time.Now(), logRow("alice", typ))[0]
		if typ == "b" {
			want = append(want, last)
		}
	}
	e.commit(t, time.Now(), logRow("alice", "a"))
	e.poll()
	if !f.sub.overflow {
		t.Fatal("11 rows did not overflow a queue of 4")
	}
	f.drain(t)
	if got := f.sent(t); !slices.Equal(got, want) {
		t.Fatalf("overflow catch-up with types=b sent %v, want %v", got, want)
	}
	if f.cursor != last+1 {
		t.Fatalf("cursor %d after catching up to %d", f.cursor, last+1)
	}
}

// TestSchemaRefusesRowsThatCannotBeSent inserts, as another program would,
// rows whose type the API refuses: the database refuses them too, so no
// feed or listing ever sees one.
func TestSchemaRefusesRowsThatCannotBeSent(t *testing.T) {
	e := newLogEnv(t, 64)
	raw, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(10000)")
	must(t, err)
	defer raw.Close()
	for _, typ := range []string{"bad\ntype", "bad\rtype", "bad\x00type", "feed.reset", "feed.truncated", "feed.", "", "a b", "ü", strings.Repeat("x", 65)} {
		_, err := raw.ExecContext(t.Context(), "INSERT INTO events (user_id, type, data) VALUES ('alice', ?, 'x')", typ)
		if err == nil || !strings.Contains(err.Error(), "type_is_an_event_type") {
			t.Errorf("inserting type %q: err = %v, want the type_is_an_event_type check to refuse it", typ, err)
		}
	}
	for _, typ := range []string{"message", "order.shipped", "a:b-c_d", "Feed.x", "feedx", strings.Repeat("x", 64)} {
		if _, err := raw.ExecContext(t.Context(), "INSERT INTO events (user_id, type, data) VALUES ('alice', ?, 'x')", typ); err != nil {
			t.Errorf("inserting type %q: %v", typ, err)
		}
	}
}

// TestRowTooLargeToSendIsSkipped inserts with SQL a row whose data is over
// the limit: the tailer skips it, a catch-up never reads it, and listings
// leave it out, so it costs no feed a copy.
func TestRowTooLargeToSendIsSkipped(t *testing.T) {
	e := newLogEnv(t, 64)
	raw, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(10000)")
	must(t, err)
	defer raw.Close()
	live := e.openFeed(t, "alice", nil, 0)
	resumed := e.openFeed(t, "alice", nil, 0)

	good := e.commit(t, time.Now(), logRow("alice", "m"))
	var big int64
	must(t, raw.QueryRowContext(t.Context(),
		"INSERT INTO events (user_id, type, data) VALUES (NULL, 'm', ?) RETURNING id", strings.Repeat("x", testMaxData+1)).Scan(&big))
	e.poll()
	if e.cursor != big {
		t.Fatalf("tailer cursor %d after a poll, want it past the large row %d", e.cursor, big)
	}
	good = append(good, e.commit(t, time.Now(), logRow("alice", "m"))...)
	e.poll()
	live.drain(t)
	resumed.catchUp(t)
	for name, f := range map[string]*testFeed{"live": live, "catch-up": resumed} {
		if got := f.sent(t); !slices.Equal(got, good) {
			t.Errorf("%s feed sent %v, want %v without the large row %d", name, got, good, big)
		}
	}
	listed, err := e.store.Feed(t.Context(), "alice", db.Range{})
	must(t, err)
	if len(listed) != len(good) {
		t.Errorf("the user's history lists %d rows, want the %d the feed sent", len(listed), len(good))
	}
	got, err := e.store.Get(t.Context(), big)
	must(t, err)
	if !got.TooLarge || got.Data != "" {
		t.Errorf("Get read the large row's data (%d bytes), want it left unread", len(got.Data))
	}
}

// appendEvents appends evs as one publish and returns them with their ids.
func appendEvents(ctx context.Context, store *db.DB, evs []db.NewEvent, now time.Time) ([]db.Event, error) {
	p := &db.Publish{Events: evs}
	if err := store.AppendMany(ctx, []*db.Publish{p}, now); err != nil {
		return nil, err
	}
	return p.Created, p.Err
}
