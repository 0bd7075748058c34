package db

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The store contract on where the log begins and ends: retention, bounds,
// skipped ids, unknown ids. See testStoreContract.

func contractPrune(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	old := publish(t, s, contractT0, msg("alice", "1"), news("2"), msg("bob", "3"))
	cutoff := contractT0.Add(time.Hour)
	fresh := publish(t, s, cutoff, msg("alice", "4"), msg("bob", "5"))
	for i, want := range []int64{2, 1, 0} {
		if n, err := s.Prune(ctx, cutoff, 2); err != nil || n != want {
			t.Fatalf("Prune batch %d of 2 = %d, %v; want %d (3 rows are before the cutoff)", i, n, err, want)
		}
	}
	if got, err := s.Tail(ctx, 0, 100); err != nil || diffEvents(got, fresh) != "" {
		t.Fatalf("after pruning the rows before the cutoff the log holds %v, %v; want %v (rows at the cutoff stay)", ids(got), err, ids(fresh))
	}
	if _, err := s.Get(ctx, old[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of pruned row %d: %v, want ErrNotFound", old[0].ID, err)
	}
	if n, err := s.Prune(ctx, cutoff.Add(time.Millisecond), 100); err != nil || n != 2 {
		t.Fatalf("Prune with a later cutoff = %d, %v; want 2", n, err)
	}
}

func contractBounds(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	check := func(cursor int64, want Bounds, why string) {
		t.Helper()
		if b, err := s.Bounds(ctx, cursor); err != nil || b != want {
			t.Fatalf("Bounds(%d) %s = %+v, %v; want %+v", cursor, why, b, err, want)
		}
	}
	check(0, Bounds{}, "of an empty log")
	old := ids(publish(t, s, contractT0, msg("alice", "a"), news("b"), msg("bob", "c")))
	fresh := ids(publish(t, s, contractT0.Add(time.Hour), msg("alice", "d"), msg("bob", "e")))
	a, b, c, d, e := old[0], old[1], old[2], fresh[0], fresh[1]
	check(0, Bounds{Issued: e, Next: a}, "after appends")
	check(b, Bounds{Issued: e, Next: c}, "after appends")
	check(e, Bounds{Issued: e}, "at the newest id")

	if n, err := s.Prune(ctx, contractT0.Add(time.Minute), 2); err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	check(0, Bounds{Issued: e, PrunedThrough: b, Next: c}, "after pruning a and b")
	check(a, Bounds{Issued: e, PrunedThrough: b, Next: c}, "after pruning a and b")

	if err := s.Delete(ctx, e); err != nil {
		t.Fatal(err)
	}
	check(d, Bounds{Issued: e, PrunedThrough: b}, "after deleting the newest row (Issued stays)")
	if n, err := s.Prune(ctx, contractT0.Add(2*time.Hour), 10); err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2", n, err)
	}
	check(0, Bounds{Issued: e, PrunedThrough: d}, "after pruning every row left")
	check(e+100, Bounds{Issued: e, PrunedThrough: d}, "of a cursor above Issued")

	f := publish(t, s, contractT0.Add(3*time.Hour), msg("alice", "f"))[0].ID
	check(d, Bounds{Issued: f, PrunedThrough: d, Next: f}, "after a new append")
}

func contractBoundsLost(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	if err := s.Start(ctx, contractT0); err != nil {
		t.Fatalf("Start of a fresh store: %v", err)
	}
	evs := publish(t, s, contractT0, msg("alice", "a"), msg("alice", "b"))
	a, b := evs[0].ID, evs[1].ID
	if got, err := s.Bounds(ctx, b+1); err != nil || got.Lost {
		t.Fatalf("Bounds(%d) before any skip = %+v, %v; want Lost false", b+1, got, err)
	}
	if err := s.Start(ctx, contractT0.Add(time.Second)); err != nil {
		t.Fatalf("Start a second later: %v", err)
	}
	if got, err := s.Bounds(ctx, b+1); err != nil || !got.Lost || got.Issued < b+1 {
		t.Fatalf("Bounds(%d) just above the old newest id after Start = %+v, %v; want Lost, and Issued covering the skipped ids", b+1, got, err)
	}
	c := publish(t, s, contractT0.Add(time.Second), msg("alice", "c"))[0].ID
	if c <= b+1 {
		t.Fatalf("first id after Start is %d, the old newest %d: Start skipped no ids", c, b)
	}
	for _, tc := range []struct {
		cursor int64
		lost   bool
		why    string
	}{
		{0, false, "below the old ids"},
		{a, false, "inside the old ids"},
		{b, false, "at the old newest id"},
		{b + 1, true, "just above the old newest id"},
		{(b + c) / 2, true, "inside the skipped ids"},
		{c - 1, true, "just below the first new id"},
		{c, false, "at the first new id"},
	} {
		got, err := s.Bounds(ctx, tc.cursor)
		if err != nil || got.Lost != tc.lost {
			t.Errorf("Bounds(%d) %s (skipped ids are %d..%d) = %+v, %v; want Lost %v", tc.cursor, tc.why, b+1, c-1, got, err, tc.lost)
		}
		if tc.lost && got.Next != c {
			t.Errorf("Bounds(%d) %s: Next = %d, want the first new id %d", tc.cursor, tc.why, got.Next, c)
		}
	}
}

func contractNotFound(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	for _, id := range []int64{-1, 0, 1, 1 << 40} {
		if _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%d) on an empty log: %v, want ErrNotFound", id, err)
		}
		if err := s.Delete(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Delete(%d) on an empty log: %v, want ErrNotFound", id, err)
		}
	}
	e := publish(t, s, contractT0, msg("alice", "a"))[0]
	if _, err := s.Get(ctx, e.ID+1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%d) above the newest id: %v, want ErrNotFound", e.ID+1, err)
	}
	if err := s.Delete(ctx, e.ID+1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete(%d) above the newest id: %v, want ErrNotFound", e.ID+1, err)
	}
	if err := s.Delete(ctx, e.ID); err != nil {
		t.Fatalf("Delete(%d): %v", e.ID, err)
	}
	if _, err := s.Get(ctx, e.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%d) of a deleted row: %v, want ErrNotFound", e.ID, err)
	}
	if err := s.Delete(ctx, e.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete(%d): %v, want ErrNotFound", e.ID, err)
	}
}

func contractLastID(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	check := func(want int64, why string) {
		t.Helper()
		if got, err := s.LastID(ctx); err != nil || got != want {
			t.Fatalf("LastID %s = %d, %v; want %d", why, got, err, want)
		}
	}
	check(0, "of an empty log")
	evs := publish(t, s, contractT0, msg("alice", "a"), news("b"), msg("bob", "c"))
	check(evs[2].ID, "after appends")
	if err := s.Delete(ctx, evs[2].ID); err != nil {
		t.Fatal(err)
	}
	check(evs[1].ID, "after deleting the newest row (the highest id in the log)")
}
