package db

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/feedd/feedd/internal/feedtest"
)

// openPG opens and migrates a fresh PostgreSQL test database.
func openPG(t *testing.T) (*PG, string) {
	t.Helper()
	url := feedtest.PostgresURL(t)
	ctx := context.Background()
	pg, err := OpenPostgres(ctx, url, PGOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return pg, url
}

// TestPostgresOrdersTransactionsByCommit has two application transactions
// insert notifications, the first committing last, while a tailer reads
// the log after its cursor as feedd's does. With a plain sequence the
// second would take a higher id, commit first and move the tailer past the
// first's lower id, which it would then never read. feedd's trigger makes
// the second wait for the first: ids follow commits, and the tailer reads
// every row once, in order.
func TestPostgresOrdersTransactionsByCommit(t *testing.T) {
	pg, url := openPG(t)
	ctx := context.Background()
	connect := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	first, second, watch := connect(), connect(), connect()
	var cursor int64
	var seen []int64
	tail := func() {
		evs, err := pg.Tail(ctx, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			seen = append(seen, e.ID)
			cursor = e.ID
		}
	}

	tx1, err := first.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(ctx)
	if _, err := tx1.Exec(ctx, "INSERT INTO events (user_id, data) VALUES ('alice', 'first, commits last')"); err != nil {
		t.Fatal(err)
	}

	secondDone := make(chan error, 1)
	go func() {
		_, err := second.Exec(ctx, "INSERT INTO events (user_id, data) VALUES ('alice', 'second, commits first')")
		secondDone <- err
	}()
	// Either the second insert waits for the first transaction (feedd's
	// trigger), or it commits at once (a plain sequence): find out which
	// without sleeping on a guess.
	deadline := time.Now().Add(feedtest.WaitLong)
	waiting := false
	for !waiting {
		select {
		case err := <-secondDone:
			if err != nil {
				t.Fatal(err)
			}
			secondDone <- nil
			tail() // the tailer sees the second's row and moves past it
			goto commit
		default:
		}
		var n int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%second, commits first%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		waiting = n > 0
		if time.Now().After(deadline) {
			t.Fatal("the second insert neither waited nor committed")
		}
	}
	tail() // nothing is committed yet
commit:
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-secondDone; err != nil {
		t.Fatal(err)
	}
	tail()
	all, err := pg.Tail(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || len(seen) != 2 || seen[0] != all[0].ID || seen[1] != all[1].ID {
		t.Fatalf("the tailer read %v, the log holds %v: a row committed late was skipped", seen, all)
	}
	if !strings.HasPrefix(all[0].Data, "first") {
		t.Fatalf("the log's order is %q, %q; want the first transaction's row first: ids follow commits", all[0].Data, all[1].Data)
	}
}
