package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Every fill writes the same log: event i (from 1) is a broadcast when i is
// a multiple of 100, else it is for user "r" + fillUser(i). The multiplier
// scatters consecutive events over the users without starving any of them,
// whatever their number.
const (
	broadcastEvery = 100
	scatter        = 2654435761 // Knuth's multiplicative hash constant
)

// fillUser is the user of event i out of users, or -1 for a broadcast.
func fillUser(i, users int) int {
	if i%broadcastEvery == 0 {
		return -1
	}
	return int(uint64(i) * scatter % (1 << 32) % uint64(users))
}

// fillSQL inserts events ?1 to ?2 of the fill for ?3 users, created at ?4
// (unix milliseconds), generating the rows inside SQLite. It is the same
// log fillUser describes.
const fillSQL = `
WITH RECURSIVE seq(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?2)
INSERT INTO events (user_id, type, data, data_json, created_at)
SELECT CASE WHEN i % 100 = 0 THEN NULL ELSE 'r' || (i * 2654435761 % 4294967296 % ?3) END,
       'message', 'event ' || i, 0, ?4
FROM seq`

// sqlChunk is how many rows one fill transaction inserts.
const sqlChunk = 1_000_000

// fillDB creates the database at path with feedd's own migrations (feedd
// migrate up), then inserts events rows straight into it, in large
// transactions, before any server opens it.
func fillDB(ctx context.Context, feedd, path string, events, users int, log io.Writer) error {
	cmd := exec.CommandContext(ctx, feedd, "migrate", "up", "--db", path)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s migrate up: %w: %s", feedd, err, strings.TrimSpace(string(out)))
	}
	// Nothing else has the file open, and a crash only loses a scratch
	// database: no need to sync.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	now := time.Now().UnixMilli()
	start := time.Now()
	for lo := 1; lo <= events; lo += sqlChunk {
		hi := min(lo+sqlChunk-1, events)
		if _, err := db.ExecContext(ctx, fillSQL, lo, hi, users, now); err != nil {
			return fmt.Errorf("insert events %d to %d: %w", lo, hi, err)
		}
		if events > sqlChunk {
			fmt.Fprintf(log, "feedbench: inserted %d of %d events (%s)\n", hi, events, time.Since(start).Round(time.Millisecond))
		}
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return db.Close()
}

// fillBatches posts events notifications through /admin/notifications/batch,
// 1000 a batch, concurrency batches at a time.
func fillBatches(ctx context.Context, t *target, events, users, concurrency int) error {
	const per = 1000
	batches := (events + per - 1) / per
	var next atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= batches {
					return
				}
				lo, hi := k*per+1, min((k+1)*per, events)
				b := make([]byte, 0, (hi-lo+1)*48+32)
				b = append(b, `{"notifications":[`...)
				for i := lo; i <= hi; i++ {
					if i > lo {
						b = append(b, ',')
					}
					data := `"event ` + strconv.Itoa(i) + `"`
					if u := fillUser(i, users); u >= 0 {
						b = appendNotification(b, "r", u, data)
					} else {
						b = append(b, `{"broadcast":true,"data":`+data+`}`...)
					}
				}
				b = append(b, "]}"...)
				status, answer, err := t.post(ctx, "/admin/notifications/batch", b)
				switch {
				case err != nil:
					cancel(fmt.Errorf("fill: %w", err))
				case status != http.StatusCreated:
					cancel(errStatus("fill", status, answer))
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// dbSize is the size of the database at path with its WAL, or -1 when
// the path is unknown.
func dbSize(path string) float64 {
	if path == "" {
		return -1
	}
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return float64(n)
}
