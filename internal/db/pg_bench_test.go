package db

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/feedtest"
)

// BenchmarkPostgresInsertOrdering measures what ordering ids by commit
// costs: 8 connections insert one notification per transaction, as
// applications writing an outbox do, with feedd's trigger (which takes
// the inserters' advisory lock) and with the trigger changed to take a
// plain sequence value, which is what the lock protects against (a row
// committed after a higher id can be skipped).
func BenchmarkPostgresInsertOrdering(b *testing.B) {
	for _, mode := range []string{"advisory-lock", "plain-sequence"} {
		b.Run(mode, func(b *testing.B) {
			url := feedtest.PostgresURL(b)
			ctx := context.Background()
			pg, err := OpenPostgres(ctx, url, PGOptions{MaxConns: 16})
			if err != nil {
				b.Fatal(err)
			}
			defer pg.Close()
			if _, err := pg.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			if mode == "plain-sequence" {
				if _, err := pg.pool.Exec(ctx, `CREATE OR REPLACE FUNCTION feedd_assign_event_id() RETURNS trigger LANGUAGE plpgsql AS $$
					BEGIN NEW.id := nextval('events_id_seq'); RETURN NEW; END $$`); err != nil {
					b.Fatal(err)
				}
			}
			const conns = 8
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := range conns {
				wg.Go(func() {
					for i := c; i < b.N; i += conns {
						if _, err := pg.pool.Exec(ctx, "INSERT INTO events (user_id, data) VALUES ('alice', 'x')"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
		})
	}
}

// BenchmarkPostgresAppend measures AppendMany on PostgreSQL as the
// committer calls it under load: groups of 16 publishes of one event.
func BenchmarkPostgresAppend(b *testing.B) {
	url := feedtest.PostgresURL(b)
	ctx := context.Background()
	pg, err := OpenPostgres(ctx, url, PGOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	const group = 16
	for b.Loop() {
		ps := make([]*Publish, group)
		for i := range ps {
			ps[i] = &Publish{Events: []NewEvent{{UserID: "alice", Type: "message", Data: `{"n":1}`, DataJSON: true}}}
		}
		if err := pg.AppendMany(ctx, ps, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*group)/b.Elapsed().Seconds(), "events/s")
}
