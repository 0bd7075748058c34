package db

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The store contract on reading the log: ids, paging, broadcasts, rows
// too large to send. See testStoreContract.

func contractIDsIncrease(t *testing.T, open openStore) {
	s := open(t, contractOptions{})
	var last int64
	after := func(what string, evs []Event) {
		t.Helper()
		for _, e := range evs {
			if e.ID <= last {
				t.Fatalf("%s: id %d follows %d; ids must increase in append order", what, e.ID, last)
			}
			last = e.ID
		}
	}
	// Within a publish and across the publishes of one group.
	g1 := []*Publish{
		{Events: []NewEvent{msg("alice", "1"), msg("bob", "2"), news("3")}},
		{Events: []NewEvent{msg("alice", "4")}},
		{Events: []NewEvent{news("5"), msg("carol", "6")}},
	}
	appendGroup(t, s, contractT0, g1...)
	for i, p := range g1 {
		after(fmt.Sprintf("group 1 publish %d", i), p.Created)
	}
	// Keyed publishes, in order among themselves, after every earlier group.
	g2 := []*Publish{
		{Events: []NewEvent{msg("alice", "7"), msg("alice", "8")}, Once: &Once{Key: "k1", Hash: []byte("1"), TTL: time.Hour}},
		{Events: []NewEvent{msg("bob", "9")}, Once: &Once{Key: "k2", Hash: []byte("2"), TTL: time.Hour}},
	}
	appendGroup(t, s, contractT0, g2...)
	for i, p := range g2 {
		after(fmt.Sprintf("group 2 (keyed) publish %d", i), p.Created)
	}
	// A group of keyed and unkeyed publishes: each publish in order, the
	// group after the one before and before the one after. (The order
	// between publishes of one group is not promised: they commit together.)
	g3 := []*Publish{
		{Events: []NewEvent{msg("alice", "10"), msg("bob", "11")}},
		{Events: []NewEvent{msg("carol", "12"), news("13")}, Once: &Once{Key: "k3", Hash: []byte("3"), TTL: time.Hour}},
		{Events: []NewEvent{msg("dave", "14"), msg("dave", "15")}},
	}
	appendGroup(t, s, contractT0, g3...)
	floor, top := last, last
	seen := map[int64]bool{}
	for i, p := range g3 {
		if p.Err != nil || len(p.Created) != len(p.Events) {
			t.Fatalf("group 3 publish %d: %d of %d events, err %v", i, len(p.Created), len(p.Events), p.Err)
		}
		last = floor
		after(fmt.Sprintf("group 3 publish %d", i), p.Created)
		for _, e := range p.Created {
			if seen[e.ID] {
				t.Fatalf("group 3: id %d given to two events", e.ID)
			}
			seen[e.ID] = true
			top = max(top, e.ID)
		}
	}
	last = top
	after("the group after a mixed one", publish(t, s, contractT0, msg("alice", "16")))

	// The ids handed back are the rows' ids.
	var created []Event
	for _, g := range [][]*Publish{g1, g2, g3} {
		for _, p := range g {
			created = append(created, p.Created...)
		}
	}
	for _, e := range created {
		got, err := s.Get(context.Background(), e.ID)
		if err != nil {
			t.Fatalf("Get(%d) of a created event: %v", e.ID, err)
		}
		if d := diffEvents([]Event{got}, []Event{e}); d != "" {
			t.Fatalf("Get(%d) does not read back what AppendMany reported: %s", e.ID, d)
		}
	}
}

func contractIDsNeverReused(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	evs := publish(t, s, contractT0, msg("alice", "a"), msg("alice", "b"), msg("alice", "c"))
	newest := evs[2].ID
	if err := s.Delete(ctx, newest); err != nil {
		t.Fatal(err)
	}
	if d := publish(t, s, contractT0, msg("alice", "d"))[0]; d.ID <= newest {
		t.Fatalf("id %d issued after deleting the newest id %d: reused", d.ID, newest)
	} else {
		newest = d.ID
	}
	if n, err := s.Prune(ctx, contractT0.Add(time.Second), 100); err != nil || n != 3 {
		t.Fatalf("Prune of every row = %d, %v; want 3", n, err)
	}
	if e := publish(t, s, contractT0, msg("alice", "e"))[0]; e.ID <= newest {
		t.Fatalf("id %d issued after pruning the newest id %d: reused", e.ID, newest)
	}
}

func contractTail(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	all := mixedLog(t, s)
	got := walk(t, "Tail", 0, 4, func(after int64) ([]Event, error) { return s.Tail(ctx, after, 4) })
	if d := diffEvents(got, all); d != "" {
		t.Fatalf("Tail from 0 in pages of 4 (every user's rows and broadcasts): %s", d)
	}
	mid := all[10].ID
	got = walk(t, "Tail", mid, 3, func(after int64) ([]Event, error) { return s.Tail(ctx, after, 3) })
	if d := diffEvents(got, all[11:]); d != "" {
		t.Fatalf("Tail after %d in pages of 3: %s", mid, d)
	}
}

func contractFeedPages(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	all := mixedLog(t, s)
	for _, user := range []string{"alice", "bob", "carol", "dave"} {
		for _, cursor := range []int64{0, all[7].ID, all[len(all)-2].ID} {
			got := walk(t, "Feed("+user+")", cursor, 3, func(after int64) ([]Event, error) {
				return s.Feed(ctx, user, Range{After: after, Limit: 3})
			})
			for _, e := range got {
				if !e.Broadcast() && e.UserID != user {
					t.Fatalf("Feed(%s) after %d carries %s's row %d", user, cursor, e.UserID, e.ID)
				}
			}
			var want []Event
			for _, e := range feedOf(all, user) {
				if e.ID > cursor {
					want = append(want, e)
				}
			}
			if d := diffEvents(got, want); d != "" {
				t.Fatalf("Feed(%s) after %d in pages of 3 (own rows and broadcasts, no gap, no duplicate): %s", user, cursor, d)
			}
		}
	}
}

func contractFeedBefore(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	all := mixedLog(t, s)
	f := feedOf(all, "alice")
	r := Range{After: f[2].ID, Before: f[7].ID, Limit: 100}
	if got, err := s.Feed(ctx, "alice", r); err != nil || diffEvents(got, f[3:7]) != "" {
		t.Fatalf("Feed(alice, %+v) = %v, %v; want %v", r, ids(got), err, ids(f[3:7]))
	}
	r.Limit = 2
	if got, err := s.Feed(ctx, "alice", r); err != nil || diffEvents(got, f[3:5]) != "" {
		t.Fatalf("Feed(alice, %+v) = %v, %v; want the first two, %v", r, ids(got), err, ids(f[3:5]))
	}
	if got, err := s.FeedLatest(ctx, "alice", r); err != nil || diffEvents(got, f[5:7]) != "" {
		t.Fatalf("FeedLatest(alice, %+v) = %v, %v; want the last two, %v", r, ids(got), err, ids(f[5:7]))
	}
	// A bound that is another user's id.
	var bobs []Event
	for _, e := range all {
		if e.UserID == "bob" {
			bobs = append(bobs, e)
		}
	}
	before := bobs[3].ID
	var want []Event
	for _, e := range f {
		if e.ID < before {
			want = append(want, e)
		}
	}
	if got, err := s.Feed(ctx, "alice", Range{Before: before, Limit: 100}); err != nil || diffEvents(got, want) != "" {
		t.Fatalf("Feed(alice) before bob's %d = %v, %v; want %v", before, ids(got), err, ids(want))
	}
	if got, err := s.List(ctx, "bob", Range{After: bobs[0].ID, Before: before, Limit: 100}); err != nil || diffEvents(got, bobs[1:3]) != "" {
		t.Fatalf("List(bob) between %d and %d = %v, %v; want %v", bobs[0].ID, before, ids(got), err, ids(bobs[1:3]))
	}
	if got, err := s.List(ctx, "", Range{After: all[3].ID, Before: all[9].ID, Limit: 100}); err != nil || diffEvents(got, all[4:9]) != "" {
		t.Fatalf("List() between %d and %d = %v, %v; want %v", all[3].ID, all[9].ID, ids(got), err, ids(all[4:9]))
	}
}

func contractFeedLatest(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	all := mixedLog(t, s)
	for _, user := range []string{"alice", "carol"} {
		f := feedOf(all, user)
		n := len(f)
		for _, tc := range []struct {
			r    Range
			want []Event
		}{
			{Range{Limit: 3}, f[n-3:]},
			{Range{Limit: n + 10}, f},
			{Range{After: f[n-3].ID, Limit: 10}, f[n-2:]},
		} {
			if got, err := s.FeedLatest(ctx, user, tc.r); err != nil || diffEvents(got, tc.want) != "" {
				t.Fatalf("FeedLatest(%s, %+v) = %v, %v; want the newest, oldest first: %v", user, tc.r, ids(got), err, ids(tc.want))
			}
		}
	}
}

func contractList(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	all := mixedLog(t, s)
	got := walk(t, "List()", 0, 5, func(after int64) ([]Event, error) { return s.List(ctx, "", Range{After: after, Limit: 5}) })
	if d := diffEvents(got, all); d != "" {
		t.Fatalf("List without a user in pages of 5 (the whole log, broadcasts included): %s", d)
	}
	for _, user := range []string{"alice", "bob", "dave"} {
		var want []Event
		for _, e := range all {
			if e.UserID == user {
				want = append(want, e)
			}
		}
		got := walk(t, "List("+user+")", 0, 2, func(after int64) ([]Event, error) {
			return s.List(ctx, user, Range{After: after, Limit: 2})
		})
		if d := diffEvents(got, want); d != "" {
			t.Fatalf("List(%s) in pages of 2 (only the user's own rows, no broadcasts): %s", user, d)
		}
	}
}

func contractBroadcastOnce(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	before := publish(t, s, contractT0, msg("alice", "own"))[0]
	b := publish(t, s, contractT0, news("everyone"))[0]
	if !b.Broadcast() {
		t.Fatalf("a broadcast publish created %+v, addressed to %q", b, b.UserID)
	}
	rows, err := s.Tail(ctx, before.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffEvents(rows, []Event{b}); d != "" {
		t.Fatalf("one broadcast publish must store one row: Tail after it: %s", d)
	}
	for _, user := range []string{"alice", "bob", "zed"} {
		got, err := s.Feed(ctx, user, Range{After: before.ID})
		if err != nil {
			t.Fatal(err)
		}
		if d := diffEvents(got, []Event{b}); d != "" {
			t.Fatalf("Feed(%s) must carry the broadcast once: %s", user, d)
		}
	}
	if got, err := s.List(ctx, "alice", Range{}); err != nil || diffEvents(got, []Event{before}) != "" {
		t.Fatalf("List(alice) = %v, %v; want only her own row %d, no broadcast", ids(got), err, before.ID)
	}
}

func contractTooLarge(t *testing.T, open openStore) {
	ctx := context.Background()
	const limit = 10
	s := open(t, contractOptions{MaxDataBytes: limit})
	small := publish(t, s, contractT0, msg("alice", "fits"))[0]
	exact := publish(t, s, contractT0, msg("alice", strings.Repeat("x", limit)))[0]
	s.insertRaw("alice", "message", strings.Repeat("é", limit/2+1)) // 6 characters, 12 bytes
	s.insertRaw("", "news", strings.Repeat("y", limit+1))
	after := publish(t, s, contractT0, msg("alice", "after"))[0]

	rows, err := s.Tail(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("Tail holds %v, want 5 rows: Tail includes rows too large to send", ids(rows))
	}
	big := rows[2:4]
	for i, e := range big {
		if !e.TooLarge || e.Data != "" {
			t.Fatalf("Tail row %d, over %d bytes of data, read as %+v; want TooLarge and no Data", e.ID, limit, e)
		}
		if want := []string{"alice", ""}[i]; e.UserID != want {
			t.Fatalf("Tail row %d is for %q, want %q", e.ID, e.UserID, want)
		}
		got, err := s.Get(ctx, e.ID)
		if err != nil || !got.TooLarge || got.Data != "" || got.UserID != e.UserID {
			t.Fatalf("Get(%d) of a row over %d bytes = %+v, %v; want TooLarge and no Data", e.ID, limit, got, err)
		}
	}
	for _, e := range []Event{rows[0], rows[1], rows[4]} {
		if e.TooLarge {
			t.Fatalf("Tail row %d with %d bytes of data is marked TooLarge (limit %d)", e.ID, len(e.Data), limit)
		}
	}
	if d := diffEvents([]Event{rows[0], rows[1], rows[4]}, []Event{small, exact, after}); d != "" {
		t.Fatalf("Tail rows that fit: %s", d)
	}
	want := []Event{small, exact, after}
	for name, read := range map[string]func() ([]Event, error){
		"Feed(alice)":       func() ([]Event, error) { return s.Feed(ctx, "alice", Range{}) },
		"FeedLatest(alice)": func() ([]Event, error) { return s.FeedLatest(ctx, "alice", Range{}) },
		"List(alice)":       func() ([]Event, error) { return s.List(ctx, "alice", Range{}) },
		"List()":            func() ([]Event, error) { return s.List(ctx, "", Range{}) },
	} {
		got, err := read()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := diffEvents(got, want); d != "" {
			t.Errorf("%s must leave out the rows over %d bytes %v: %s", name, limit, ids(big), d)
		}
	}
	if got, err := s.Feed(ctx, "bob", Range{}); err != nil || len(got) != 0 {
		t.Fatalf("Feed(bob) = %v, %v; want nothing: the only broadcast is too large", ids(got), err)
	}
}
