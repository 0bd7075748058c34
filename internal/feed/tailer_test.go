package feed

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/db"
)

// Rows this process committed are dispatched as they are when they are the
// very next rows of the log; when another writer's row came in between,
// the tailer reads the log instead, so that row is delivered first and
// nothing out of order.
func TestTailerTakesOverOnlyTheNextRows(t *testing.T) {
	e := newLogEnv(t, 64)
	sub := mustSubscribe(t, e.hub, "alice")
	defer e.hub.unsubscribe(sub)
	ctx := context.Background()

	local, err := appendEvents(ctx, e.store, []db.NewEvent{logRow("alice", "m"), logRow("", "m")}, time.Now())
	must(t, err)
	// Handed over in any order, they are taken over in id order.
	next, ok := e.tailer.dispatchNext([]db.Event{local[1], local[0]}, e.cursor)
	if !ok || next != local[1].ID {
		t.Fatalf("the next rows were not taken over: cursor %d, %v", next, ok)
	}
	e.cursor = next
	if got := takeIDs(t, sub); !slices.Equal(got, []int64{local[0].ID, local[1].ID}) {
		t.Fatalf("alice's feed got %v, want %d and %d", got, local[0].ID, local[1].ID)
	}

	// Another program writes a row, then this process commits one.
	raw, err := sql.Open("sqlite", "file:"+e.path+"?_pragma=busy_timeout(5000)")
	must(t, err)
	defer raw.Close()
	var other int64
	must(t, raw.QueryRow(`INSERT INTO events (user_id, data) VALUES ('alice', 'from elsewhere') RETURNING id`).Scan(&other))
	mine, err := appendEvents(ctx, e.store, []db.NewEvent{logRow("alice", "m")}, time.Now())
	must(t, err)
	if next, ok := e.tailer.dispatchNext(mine, e.cursor); ok || next != e.cursor {
		t.Fatalf("rows after a gap were taken over (cursor %d): the other writer's row %d would be lost", next, other)
	}
	if got := takeIDs(t, sub); len(got) != 0 {
		t.Fatalf("a refused take-over dispatched %v", got)
	}
	e.poll()
	if got := takeIDs(t, sub); !slices.Equal(got, []int64{other, mine[0].ID}) {
		t.Fatalf("after the read alice's feed got %v, want %d then %d", got, other, mine[0].ID)
	}
}
