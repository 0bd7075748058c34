package db

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/feedtest"
)

// contractStore is what feedd's engine needs of a log, with the signatures
// of *DB. The engine will declare it as its Store; every store in this
// package (SQLite now, PostgreSQL next) must pass testStoreContract.
type contractStore interface {
	AppendMany(ctx context.Context, ps []*Publish, now time.Time) error
	Tail(ctx context.Context, after int64, limit int) ([]Event, error)
	Feed(ctx context.Context, userID string, r Range) ([]Event, error)
	FeedLatest(ctx context.Context, userID string, r Range) ([]Event, error)
	List(ctx context.Context, userID string, r Range) ([]Event, error)
	Get(ctx context.Context, id int64) (Event, error)
	Delete(ctx context.Context, id int64) error
	LastID(ctx context.Context) (int64, error)
	Bounds(ctx context.Context, cursor int64) (Bounds, error)
	Prune(ctx context.Context, cutoff time.Time, limit int) (int64, error)
	Start(ctx context.Context, now time.Time) error
	Health() error
}

var (
	_ contractStore = (*DB)(nil)
	_ contractStore = (*PG)(nil)
)

// contractOptions is what the suite may ask of a store it opens.
type contractOptions struct {
	// MaxDataBytes is the store's limit on the data of a row it sends
	// (Options.MaxDataBytes); 0 means none.
	MaxDataBytes int64
}

// storeUnderTest is a fresh, empty, migrated store and the hooks the suite
// needs beyond contractStore.
type storeUnderTest struct {
	contractStore
	// insertRaw inserts one row with plain SQL, as another program sharing
	// the database would: user "" is a broadcast, created_at is the
	// column's default. Unlike the API it can write a row over
	// MaxDataBytes. It fails the test given to open on error.
	insertRaw func(userID, typ, data string)
}

// openStore opens a storeUnderTest for one subtest; the store is closed
// when t ends.
type openStore func(t *testing.T, opts contractOptions) storeUnderTest

func TestSQLiteStoreContract(t *testing.T) {
	testStoreContract(t, func(t *testing.T, opts contractOptions) storeUnderTest {
		t.Helper()
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "contract.db")
		d, err := Open(ctx, path, Options{MaxDataBytes: opts.MaxDataBytes})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		insertRaw := func(userID, typ, data string) {
			t.Helper()
			other, err := sql.Open("sqlite", "file:"+uriPath.Replace(path)+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			var user any
			if userID != "" {
				user = userID
			}
			if _, err := other.ExecContext(ctx, "INSERT INTO events (user_id, type, data) VALUES (?, ?, ?)", user, typ, data); err != nil {
				t.Fatalf("insert a row with SQL: %v", err)
			}
		}
		return storeUnderTest{contractStore: d, insertRaw: insertRaw}
	})
}

func TestPostgresStoreContract(t *testing.T) {
	feedtest.PostgresURL(t) // skips, outside CI, without a server
	testStoreContract(t, func(t *testing.T, opts contractOptions) storeUnderTest {
		t.Helper()
		ctx := context.Background()
		url := feedtest.PostgresURL(t)
		pg, err := OpenPostgres(ctx, url, PGOptions{MaxDataBytes: opts.MaxDataBytes})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		if _, err := pg.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		insertRaw := func(userID, typ, data string) {
			t.Helper()
			var user any
			if userID != "" {
				user = userID
			}
			if _, err := pg.pool.Exec(ctx, "INSERT INTO events (user_id, type, data) VALUES ($1, $2, $3)", user, typ, data); err != nil {
				t.Fatalf("insert a row with SQL: %v", err)
			}
		}
		return storeUnderTest{contractStore: pg, insertRaw: insertRaw}
	})
}

// testStoreContract runs the store contract against stores that open
// makes, a fresh one per subtest. It knows nothing of how a store keeps
// its rows.
func testStoreContract(t *testing.T, open openStore) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, openStore)
	}{
		{"EmptyStore", contractEmpty},
		{"IDsIncreaseInAppendOrder", contractIDsIncrease},
		{"IDsNeverReusedAfterDeleteOrPrune", contractIDsNeverReused},
		{"TailPagesThroughEveryRow", contractTail},
		{"FeedPagesResumeWithoutGapOrDuplicate", contractFeedPages},
		{"FeedAndFeedLatestHonourBefore", contractFeedBefore},
		{"FeedLatestIsTheNewestOldestFirst", contractFeedLatest},
		{"ListWithAndWithoutUser", contractList},
		{"BroadcastIsStoredOnce", contractBroadcastOnce},
		{"IdempotentRetryReplays", contractOnceRetry},
		{"IdempotencyKeyReusedWithAnotherRequest", contractOnceReused},
		{"IdempotencyKeyExpires", contractOnceExpires},
		{"ConcurrentDuplicatesCreateOnce", contractOnceConcurrent},
		{"BadRowFailsOnlyItsPublish", contractAllOrNothing},
		{"PruneDeletesOldestInBatches", contractPrune},
		{"BoundsAfterAppendDeleteAndPrune", contractBounds},
		{"BoundsLostAfterStartSkippedIDs", contractBoundsLost},
		{"GetAndDeleteUnknownIDs", contractNotFound},
		{"LastID", contractLastID},
		{"RowsOverMaxDataBytes", contractTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

// contractT0 is the time the suite appends at: whole milliseconds, so that
// every store can keep it exactly.
var contractT0 = time.UnixMilli(1_700_000_000_123).UTC()

func msg(user, data string) NewEvent { return NewEvent{UserID: user, Type: "message", Data: data} }

func news(data string) NewEvent {
	return NewEvent{Type: "news", Data: `{"n":"` + data + `"}`, DataJSON: true}
}

// appendGroup appends ps as one AppendMany group and fails t if the group
// as a whole fails.
func appendGroup(t *testing.T, s contractStore, now time.Time, ps ...*Publish) {
	t.Helper()
	if err := s.AppendMany(context.Background(), ps, now); err != nil {
		t.Fatalf("AppendMany: %v", err)
	}
}

// publish appends evs as one publish, alone in its group, and returns what
// it created.
func publish(t *testing.T, s contractStore, now time.Time, evs ...NewEvent) []Event {
	t.Helper()
	p := &Publish{Events: evs}
	appendGroup(t, s, now, p)
	if p.Err != nil {
		t.Fatalf("publish of %d events failed: %v", len(evs), p.Err)
	}
	if len(p.Created) != len(evs) {
		t.Fatalf("publish of %d events created %d", len(evs), len(p.Created))
	}
	return p.Created
}

// mixedLog fills s with rows of alice, bob and carol and broadcasts, in
// publishes of one and several events and groups of one and several
// publishes, and returns every row created, in id order.
func mixedLog(t *testing.T, s contractStore) []Event {
	t.Helper()
	var all []Event
	for i := range 8 {
		now := contractT0.Add(time.Duration(i) * time.Second)
		ps := []*Publish{
			{Events: []NewEvent{msg("alice", fmt.Sprint("a", i)), msg("bob", fmt.Sprint("b", i))}},
			{Events: []NewEvent{msg("carol", fmt.Sprint("c", i))}},
		}
		if i%2 == 0 {
			ps = append(ps, &Publish{Events: []NewEvent{news(fmt.Sprint(i))}})
		}
		if i%3 == 0 {
			ps = append(ps, &Publish{Events: []NewEvent{msg("alice", fmt.Sprint("a", i, "'")), news(fmt.Sprint(i, "'"))}})
		}
		appendGroup(t, s, now, ps...)
		for j, p := range ps {
			if p.Err != nil || len(p.Created) != len(p.Events) {
				t.Fatalf("group %d publish %d: %d of %d events, err %v", i, j, len(p.Created), len(p.Events), p.Err)
			}
			all = append(all, p.Created...)
		}
	}
	slices.SortFunc(all, func(a, b Event) int { return cmp.Compare(a.ID, b.ID) })
	return all
}

// feedOf returns the rows of all that user's feed carries.
func feedOf(all []Event, user string) []Event {
	var out []Event
	for _, e := range all {
		if e.UserID == user || e.Broadcast() {
			out = append(out, e)
		}
	}
	return out
}

// walk reads pages of at most limit rows with read, each after the last
// row of the one before, starting after after, until a short page; it
// fails t on a page too long or not after its cursor.
func walk(t *testing.T, what string, after int64, limit int, read func(after int64) ([]Event, error)) []Event {
	t.Helper()
	var out []Event
	for range 10_000 {
		page, err := read(after)
		if err != nil {
			t.Fatalf("%s after %d: %v", what, after, err)
		}
		if len(page) > limit {
			t.Fatalf("%s after %d: %d rows, over the limit of %d", what, after, len(page), limit)
		}
		for _, e := range page {
			if e.ID <= after {
				t.Fatalf("%s: id %d comes after %d: not in increasing id order", what, e.ID, after)
			}
			after = e.ID
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
	}
	t.Fatalf("%s: no end after 10000 pages", what)
	return nil
}

// diffEvents describes how got differs from want, field by field, or
// returns "" when they are the same rows.
func diffEvents(got, want []Event) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows %v, want %d rows %v", len(got), ids(got), len(want), ids(want))
	}
	for i, g := range got {
		w := want[i]
		if g.ID != w.ID || g.UserID != w.UserID || g.Type != w.Type || g.Data != w.Data ||
			g.DataJSON != w.DataJSON || !g.CreatedAt.Equal(w.CreatedAt) || g.TooLarge != w.TooLarge {
			return fmt.Sprintf("row %d is %+v, want %+v", i, g, w)
		}
	}
	return ""
}

func contractEmpty(t *testing.T, open openStore) {
	ctx := context.Background()
	s := open(t, contractOptions{})
	if err := s.Health(); err != nil {
		t.Fatalf("Health of a fresh store = %v, want nil", err)
	}
	if last, err := s.LastID(ctx); err != nil || last != 0 {
		t.Fatalf("LastID of an empty log = %d, %v; want 0, nil", last, err)
	}
	if b, err := s.Bounds(ctx, 0); err != nil || b != (Bounds{}) {
		t.Fatalf("Bounds(0) of an empty log = %+v, %v; want all zero", b, err)
	}
	if b, err := s.Bounds(ctx, 5); err != nil || b != (Bounds{}) {
		t.Fatalf("Bounds(5) of an empty log = %+v, %v; want all zero (a cursor above Issued 0)", b, err)
	}
	for name, read := range map[string]func() ([]Event, error){
		"Tail":       func() ([]Event, error) { return s.Tail(ctx, 0, 10) },
		"Feed":       func() ([]Event, error) { return s.Feed(ctx, "alice", Range{}) },
		"FeedLatest": func() ([]Event, error) { return s.FeedLatest(ctx, "alice", Range{}) },
		"List":       func() ([]Event, error) { return s.List(ctx, "", Range{}) },
	} {
		if evs, err := read(); err != nil || len(evs) != 0 {
			t.Errorf("%s of an empty log = %v, %v; want no rows", name, ids(evs), err)
		}
	}
	if n, err := s.Prune(ctx, contractT0, 10); err != nil || n != 0 {
		t.Fatalf("Prune of an empty log = %d, %v; want 0, nil", n, err)
	}
}
