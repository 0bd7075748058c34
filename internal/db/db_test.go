package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "feedd test?#%.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

func ids(evs []Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func appendOne(t *testing.T, d *DB, user, typ, data string) Event {
	t.Helper()
	evs, err := appendEvents(context.Background(), d, []NewEvent{{UserID: user, Type: typ, Data: data}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return evs[0]
}

func TestMigrateTwiceAndStatus(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	n, err := d.Migrate(ctx)
	if err != nil || n != 0 {
		t.Fatalf("second migrate ran %d migrations, err %v; want 0, nil", n, err)
	}
	ms, err := d.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations listed")
	}
	for _, m := range ms {
		if !m.Applied {
			t.Errorf("migration %d not applied", m.Version)
		}
	}
	if pending, err := d.Pending(ctx); err != nil || pending {
		t.Fatalf("Pending = %v, %v; want false", pending, err)
	}
}

func TestIDsIncreaseAndAreNeverReused(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	a := appendOne(t, d, "alice", "message", "1")
	b := appendOne(t, d, "alice", "message", "2")
	if b.ID <= a.ID {
		t.Fatalf("ids %d then %d: not increasing", a.ID, b.ID)
	}
	if err := d.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := d.Get(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v, want ErrNotFound", err)
	}
	c := appendOne(t, d, "alice", "message", "3")
	if c.ID <= b.ID {
		t.Fatalf("id %d after deleting %d: reused", c.ID, b.ID)
	}
	last, err := d.LastID(ctx)
	if err != nil || last != c.ID {
		t.Fatalf("LastID = %d, %v; want %d", last, err, c.ID)
	}
}

func TestAppendManyIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	bad := strings.Repeat("x", 300) // violates the user_id length check
	_, err := appendEvents(ctx, d, []NewEvent{
		{UserID: "alice", Type: "message", Data: "ok"},
		{UserID: bad, Type: "message", Data: "rejected"},
	}, time.Now())
	if err == nil {
		t.Fatal("append with an invalid row succeeded")
	}
	all, err := d.List(ctx, "", Range{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 0 {
		t.Fatalf("a failed batch left %d rows", len(all))
	}
}

func TestFeedMergesUserAndBroadcastInPages(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	now := time.UnixMilli(1_700_000_000_123)
	var want []int64
	for i := range 25 {
		var batch []NewEvent
		switch i % 3 {
		case 0:
			batch = []NewEvent{{UserID: "alice", Type: "message", Data: "a"}}
		case 1:
			batch = []NewEvent{{Type: "news", Data: `{"n":1}`, DataJSON: true}} // broadcast
		case 2:
			batch = []NewEvent{{UserID: "bob", Type: "message", Data: "b"}}
		}
		evs, err := appendEvents(ctx, d, batch, now)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 != 2 {
			want = append(want, evs[0].ID)
		}
	}

	var got []int64
	cursor := int64(0)
	for {
		page, err := d.Feed(ctx, "alice", Range{After: cursor, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(page)...)
		if len(page) < 4 {
			break
		}
		cursor = page[len(page)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged feed for alice = %v, want %v", got, want)
	}

	latest, err := d.FeedLatest(ctx, "alice", Range{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(latest), want[len(want)-3:]) {
		t.Fatalf("FeedLatest = %v, want %v", ids(latest), want[len(want)-3:])
	}
	between, err := d.Feed(ctx, "alice", Range{After: want[1], Before: want[4], Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(between), want[2:4]) {
		t.Fatalf("Feed between = %v, want %v", ids(between), want[2:4])
	}

	b, err := d.Get(ctx, want[1])
	if err != nil {
		t.Fatal(err)
	}
	if !b.Broadcast() || b.Type != "news" || b.Data != `{"n":1}` || !b.DataJSON || !b.CreatedAt.Equal(now) {
		t.Fatalf("broadcast row read back as %+v", b)
	}
	bobs, err := d.List(ctx, "bob", Range{})
	if err != nil {
		t.Fatal(err)
	}
	if len(bobs) != 8 {
		t.Fatalf("List(bob) = %d events, want 8 (his own, no broadcasts)", len(bobs))
	}
}

func TestResumeQueriesUseTheIndexWithoutSorting(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	for name, q := range map[string]string{"feed": d.sql.feed, "latest": d.sql.feedLatest} {
		rows, err := d.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, "alice", 5, 100, 10)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		text := strings.Join(plan, "; ")
		if strings.Count(text, "SEARCH events USING INDEX events_user_id_id") != 2 {
			t.Errorf("%s: plan %q does not read both halves through the (user_id, id) index", name, text)
		}
		if strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("%s: plan %q sorts", name, text)
		}
	}
}

func TestOtherProcessCanInsertWithDefaults(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	if _, err := d.w.ExecContext(ctx, "INSERT INTO events (user_id, data) VALUES ('carol', 'hi')"); err != nil {
		t.Fatal(err)
	}
	evs, err := d.Tail(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Type != "message" || evs[0].DataJSON || time.Since(evs[0].CreatedAt) > time.Minute {
		t.Fatalf("row inserted with defaults read back as %+v", evs)
	}
}

func TestPruneDeletesOnlyOldEventsInBatches(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	old := time.Now().Add(-48 * time.Hour)
	for range 5 {
		if _, err := appendEvents(ctx, d, []NewEvent{{UserID: "alice", Type: "message", Data: "old"}}, old); err != nil {
			t.Fatal(err)
		}
	}
	fresh := appendOne(t, d, "alice", "message", "fresh")

	cutoff := time.Now().Add(-24 * time.Hour)
	n, err := d.Prune(ctx, cutoff, 3)
	if err != nil || n != 3 {
		t.Fatalf("first batch pruned %d, %v; want 3", n, err)
	}
	n, err = d.Prune(ctx, cutoff, 3)
	if err != nil || n != 2 {
		t.Fatalf("second batch pruned %d, %v; want 2", n, err)
	}
	left, err := d.List(ctx, "", Range{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(left), []int64{fresh.ID}) {
		t.Fatalf("after pruning the log holds %v, want only %d", ids(left), fresh.ID)
	}
	if next := appendOne(t, d, "alice", "message", "next"); next.ID <= fresh.ID {
		t.Fatalf("id %d reused after pruning", next.ID)
	}
}

func TestAppendManyUndoesOnlyTheFailingPublish(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	bad := strings.Repeat("x", 300) // violates the user_id length check
	once := func(key string) *Once {
		return &Once{Key: key, Hash: []byte(key), TTL: time.Hour}
	}
	ps := []*Publish{
		{Events: []NewEvent{{UserID: "a", Type: "message", Data: "1"}}},
		{Events: []NewEvent{{UserID: bad, Type: "message", Data: "single, bad"}}},
		{Events: []NewEvent{{UserID: "b", Type: "message", Data: "2"}, {UserID: bad, Type: "message", Data: "multi, bad"}}},
		{Events: []NewEvent{{UserID: "c", Type: "message", Data: "3"}}, Once: once("k1")},
		{Events: []NewEvent{{UserID: bad, Type: "message", Data: "keyed, bad"}}, Once: once("k2")},
		{Events: []NewEvent{{UserID: "d", Type: "message", Data: "4"}, {UserID: "e", Type: "message", Data: "5"}}},
	}
	if err := d.AppendMany(ctx, ps, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i, wantErr := range []bool{false, true, true, false, true, false} {
		if (ps[i].Err != nil) != wantErr {
			t.Errorf("publish %d: err %v, want error %v", i, ps[i].Err, wantErr)
		}
		if wantErr && ps[i].Created != nil {
			t.Errorf("publish %d failed but reports created events %v", i, ps[i].Created)
		}
	}
	all, err := d.List(ctx, "", Range{})
	if err != nil {
		t.Fatal(err)
	}
	var data []string
	for _, e := range all {
		data = append(data, e.Data)
	}
	if want := []string{"1", "3", "4", "5"}; !slices.Equal(data, want) {
		t.Fatalf("log holds %v, want %v: a failed publish left rows behind or took others with it", data, want)
	}
	// The failed keyed publish kept no answer: its key is free.
	retry := &Publish{Events: []NewEvent{{UserID: "f", Type: "message", Data: "6"}}, Once: once("k2")}
	if err := d.AppendMany(ctx, []*Publish{retry}, time.Now()); err != nil || retry.Err != nil || retry.Replayed {
		t.Fatalf("retry of the failed key: %v, %v, replayed %v", err, retry.Err, retry.Replayed)
	}
}

// Many publishes go in together, in multi-row INSERTs of several sizes:
// every event gets the id of its own row, ids increase in the order the
// events were given, and each publish gets exactly its own events.
func TestAppendManyTogetherGivesEachEventItsOwnID(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	var ps []*Publish
	n := 0
	for size := range 40 { // 0+1+...+39 = 780 events: every statement size is used
		p := &Publish{}
		for range size {
			p.Events = append(p.Events, NewEvent{UserID: fmt.Sprint("u", n%7), Type: "message", Data: fmt.Sprint("event ", n)})
			n++
		}
		if size%5 == 0 {
			p.Events = append(p.Events, NewEvent{Type: "news", Data: fmt.Sprint("broadcast ", n)})
			n++
		}
		ps = append(ps, p)
	}
	if err := d.AppendMany(ctx, ps, time.Now()); err != nil {
		t.Fatal(err)
	}
	var last int64
	for i, p := range ps {
		if p.Err != nil || len(p.Created) != len(p.Events) {
			t.Fatalf("publish %d: %d of %d events, err %v", i, len(p.Created), len(p.Events), p.Err)
		}
		for j, e := range p.Created {
			if e.ID <= last {
				t.Fatalf("publish %d event %d: id %d after %d", i, j, e.ID, last)
			}
			last = e.ID
			got, err := d.Get(ctx, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := p.Events[j]
			if got.UserID != want.UserID || got.Type != want.Type || got.Data != want.Data {
				t.Fatalf("id %d holds %+v, want %+v", e.ID, got, want)
			}
		}
	}
}

// With ManualCheckpoints commits leave the WAL alone, however large it
// grows, and checkpoint copies all of it into the database file.
func TestManualCheckpoints(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ckpt.db")
	d, err := Open(ctx, path, Options{ManualCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 8000) // two pages a row: 1500 rows pass SQLite's 1000-page mark
	for range 30 {
		evs := make([]NewEvent, 50)
		for i := range evs {
			evs[i] = NewEvent{UserID: "alice", Type: "message", Data: big}
		}
		if _, err := appendEvents(ctx, d, evs, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	info, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() < 3000*4096 {
		t.Fatalf("the WAL holds %d bytes after 3000 pages of commits: commits checkpointed it", info.Size())
	}
	size := func() int64 {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return info.Size()
	}
	if n := size(); n >= 3000*4096 {
		t.Fatalf("the database file holds %d bytes before any checkpoint", n)
	}
	if err := d.checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if n := size(); n < 3000*4096 {
		t.Fatalf("after checkpoint the database file holds %d bytes: the WAL was not copied in", n)
	}
}
