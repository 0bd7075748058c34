package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// resumeBench is the resume scenario: a log of many events, and feeds
// opened with a cursor a fixed number of events back.
type resumeBench struct {
	events          int
	users           int
	fill            string
	fillConcurrency int
	samples         int
	replay          int
	timeout         time.Duration
}

func (b *resumeBench) flags(fs *flag.FlagSet) {
	fs.IntVar(&b.events, "events", 10000, "events in the log (M); one in 100 is a broadcast")
	fs.IntVar(&b.users, "users", 100, "the other events are spread over this many users")
	fs.StringVar(&b.fill, "fill", "batch", "how to fill the log: batch (POST /admin/notifications/batch), sql (insert into the database file before the server starts; needs --feedd) or none (measure the log as it is)")
	fs.IntVar(&b.fillConcurrency, "fill-concurrency", 4, "batches posted at once by --fill batch")
	fs.IntVar(&b.samples, "samples", 50, "resumes to time, each by a random user")
	fs.IntVar(&b.replay, "replay", 100, "events each resume replays: its cursor is this many events back in the user's feed")
	fs.DurationVar(&b.timeout, "timeout", 30*time.Second, "give up on a resume that has not replayed everything after this")
}

func (b *resumeBench) check() error {
	switch {
	case b.fill != "batch" && b.fill != "sql" && b.fill != "none":
		return usagef("--fill must be batch, sql or none")
	case b.events < 0 || b.events == 0 && b.fill != "none":
		return usagef("--events must be positive")
	case b.users < 1:
		return usagef("--users must be at least 1")
	case b.fillConcurrency < 1:
		return usagef("--fill-concurrency must be at least 1")
	case b.samples < 1:
		return usagef("--samples must be at least 1")
	case b.replay < 1 || b.replay > 999:
		return usagef("--replay must be from 1 to 999")
	}
	return nil
}

func (b *resumeBench) openFiles() int { return b.fillConcurrency + 1 }

func (b *resumeBench) params() map[string]any {
	return map[string]any{"events": b.events, "users": b.users, "fill": b.fill, "samples": b.samples, "replay": b.replay}
}

// prepareDB fills the database by SQL before the server starts, when
// --fill sql asks for it.
func (b *resumeBench) prepareDB(ctx context.Context, feedd, dbPath string, res *result, log io.Writer) error {
	if b.fill != "sql" {
		return nil
	}
	fmt.Fprintf(log, "feedbench: writing %d events into %s\n", b.events, dbPath)
	start := time.Now()
	if err := fillDB(ctx, feedd, dbPath, b.events, b.users, log); err != nil {
		return err
	}
	took := time.Since(start)
	res.add("fill_s", took.Seconds(), "s")
	res.add("fill_per_s", float64(b.events)/took.Seconds(), "events/s")
	return nil
}

// resumeSample is one timed resume.
type resumeSample struct {
	path string
	want int // events the resume should replay
}

func (b *resumeBench) run(ctx context.Context, t *target, res *result) error {
	switch {
	case b.fill == "sql" && t.proc == nil:
		return usagef("--fill sql writes into the database before the server starts, so it needs --feedd; with --server use --fill batch or none")
	case b.fill == "batch":
		fmt.Fprintf(t.log(), "feedbench: posting %d events in batches of 1000\n", b.events)
		start := time.Now()
		if err := fillBatches(ctx, t, b.events, b.users, b.fillConcurrency); err != nil {
			return err
		}
		took := time.Since(start)
		res.add("fill_s", took.Seconds(), "s")
		res.add("fill_per_s", float64(b.events)/took.Seconds(), "events/s")
	}
	if size := dbSize(t.dbPath); size >= 0 {
		res.add("db_mb", size/(1<<20), "MB")
	}

	samples, err := b.pickSamples(ctx, t)
	if err != nil {
		return err
	}
	d := newDialer(t.addr, 1)
	var ttfb, replay []time.Duration
	from := t.snapshot(ctx)
	for _, s := range samples {
		h, r, err := b.resume(ctx, d, s)
		if err != nil {
			return err
		}
		ttfb, replay = append(ttfb, h), append(replay, r)
	}
	to := t.snapshot(ctx)
	slices.Sort(ttfb)
	slices.Sort(replay)
	res.add("samples", float64(len(samples)), "resumes")
	res.add("replayed", float64(samples[0].want), "events per resume")
	res.addMs("headers_p50_ms", percentile(ttfb, 50))
	res.addMs("headers_p90_ms", percentile(ttfb, 90))
	res.addMs("replay_p50_ms", percentile(replay, 50))
	res.addMs("replay_p90_ms", percentile(replay, 90))
	res.addMs("replay_max_ms", percentile(replay, 100))
	addTimes(res, from, to)
	return nil
}

// pickSamples chooses a random user for each sample and, from that user's
// history (GET /v1/notifications), the cursor with exactly b.replay of
// its events after it. Every cursor is looked up before any resume is
// timed.
func (b *resumeBench) pickSamples(ctx context.Context, t *target) ([]resumeSample, error) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	samples := make([]resumeSample, b.samples)
	for i := range samples {
		user := "r" + strconv.Itoa(rng.IntN(b.users))
		tok, err := t.userToken(user)
		if err != nil {
			return nil, err
		}
		status, body, err := t.get(ctx, "/v1/notifications?limit="+strconv.Itoa(b.replay+1), tok)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", user, err)
		}
		if status != http.StatusOK {
			return nil, errStatus("history of "+user, status, body)
		}
		var page struct {
			Events []struct {
				ID int64 `json:"id"`
			} `json:"events"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("history of %s: %w", user, err)
		}
		if len(page.Events) <= b.replay {
			return nil, usagef("user %s has only %d events in its feed; a resume of %d needs more: raise --events or lower --users",
				user, len(page.Events), b.replay)
		}
		cursor := page.Events[0].ID
		for _, e := range page.Events {
			cursor = min(cursor, e.ID)
		}
		samples[i] = resumeSample{
			path: "/events?token=" + url.QueryEscape(tok) + "&last_event_id=" + strconv.FormatInt(cursor, 10),
			want: b.replay,
		}
	}
	return samples, nil
}

// resume opens the feed of s and returns how long it took for the response
// headers and for the last event to replay to arrive, both from before the
// dial.
func (b *resumeBench) resume(ctx context.Context, d *dialer, s resumeSample) (headers, replay time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	f, err := d.open(ctx, s.path)
	if err != nil {
		return 0, 0, fmt.Errorf("resume: %w", err)
	}
	defer f.conn.Close()
	stop := context.AfterFunc(ctx, func() { f.conn.Close() })
	defer stop()
	got, last := 0, int64(-1)
	var end time.Time
	err = f.readEvents(func(id int64, _ string) bool {
		if id <= last {
			return true // an id-less notice or a repeat; the count will fall short
		}
		last = id
		got++
		if got == s.want {
			end = time.Now()
			return false
		}
		return true
	})
	if got < s.want {
		return 0, 0, fmt.Errorf("resume replayed %d of %d events (%v)", got, s.want, err)
	}
	return f.headers.Sub(f.start), end.Sub(f.start), nil
}
