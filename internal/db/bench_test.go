package db

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func benchDB(b *testing.B) *DB {
	b.Helper()
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkAppend measures appending events, one transaction per op, with
// 1 or many publishes sharing it (group commit).
func BenchmarkAppend(b *testing.B) {
	for _, group := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("publishes_per_tx=%d", group), func(b *testing.B) {
			d := benchDB(b)
			ctx := context.Background()
			ps := make([]*Publish, group)
			for b.Loop() {
				for i := range ps {
					ps[i] = &Publish{Events: []NewEvent{{UserID: "alice", Type: "message", Data: `{"n":1}`, DataJSON: true}}}
				}
				if err := d.AppendMany(ctx, ps, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*group)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkFeedResume measures reading the 100 events after a cursor from
// a log of 100k rows spread over 1000 users and broadcasts.
func BenchmarkFeedResume(b *testing.B) {
	d := benchDB(b)
	ctx := context.Background()
	const rows, users = 100_000, 1000
	batch := make([]NewEvent, 0, 10_000)
	for i := range rows {
		user := fmt.Sprint("u", i%users)
		if i%50 == 0 {
			user = "" // a broadcast
		}
		batch = append(batch, NewEvent{UserID: user, Type: "message", Data: "x"})
		if len(batch) == cap(batch) {
			if _, err := appendEvents(ctx, d, batch, time.Now()); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// u7's feed: its own rows and the broadcasts. Resume 100 from the end.
	all, err := d.FeedLatest(ctx, "u7", Range{Limit: 101})
	if err != nil {
		b.Fatal(err)
	}
	cursor := all[0].ID
	for b.Loop() {
		evs, err := d.Feed(ctx, "u7", Range{After: cursor, Limit: 100})
		if err != nil || len(evs) != 100 {
			b.Fatalf("%d events, %v", len(evs), err)
		}
	}
}
