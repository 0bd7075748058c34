package feed

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/db"
)

func TestPruneRemovesEventsOlderThanRetention(t *testing.T) {
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(t.TempDir(), "retention.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	clock := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	var old []db.NewEvent
	for range pruneBatch*2 + 7 { // more than one batch
		old = append(old, db.NewEvent{UserID: "alice", Type: "message", Data: "old"})
	}
	if _, err := appendEvents(ctx, store, old, clock.Add(-31*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	kept, err := appendEvents(ctx, store, []db.NewEvent{{Type: "message", Data: "recent"}}, clock.Add(-29*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		prune(runCtx, store, 30*24*time.Hour, func() time.Time { return clock }, slog.New(slog.DiscardHandler))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := store.List(ctx, "", db.Range{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 1 && left[0].ID == kept[0].ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old events still there: %d left", len(left))
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	stop()
	<-done
}
