package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// latencyBench is the latency scenario: events at a steady rate to random
// users with open feeds, timed from just before the POST to their arrival.
type latencyBench struct {
	feeds      int
	rate       float64
	duration   time.Duration
	users      int
	publishers int
	inflight   int
	tail       time.Duration
	// publishVia is another feedd on the same database to publish
	// through, "" for the target itself.
	publishVia string
}

func (b *latencyBench) flags(fs *flag.FlagSet) {
	fs.IntVar(&b.feeds, "feeds", 1000, "feeds to open; feed i is for user i mod --users")
	fs.Float64Var(&b.rate, "rate", 1000, "events per second to publish")
	fs.DurationVar(&b.duration, "duration", 10*time.Second, "how long to publish")
	fs.IntVar(&b.users, "users", 0, "events go to users chosen at random among this many (default --feeds); users beyond --feeds have no feed")
	fs.IntVar(&b.publishers, "publishers", 4, "goroutines sharing the publishing schedule")
	fs.IntVar(&b.inflight, "inflight", 200, "feeds being opened at once")
	fs.DurationVar(&b.tail, "tail", 10*time.Second, "after the last publish, wait at most this long for the last deliveries")
	fs.StringVar(&b.publishVia, "publish-via", "", "with --server: publish through this other feedd (URL) on the same database, so that events cross processes")
}

func (b *latencyBench) check() error {
	if b.users == 0 {
		b.users = b.feeds
	}
	switch {
	case b.feeds < 1:
		return usagef("--feeds must be at least 1")
	case b.rate <= 0:
		return usagef("--rate must be positive")
	case b.duration <= 0:
		return usagef("--duration must be positive")
	case b.users < 1:
		return usagef("--users must be at least 1")
	case b.publishers < 1:
		return usagef("--publishers must be at least 1")
	}
	return nil
}

func (b *latencyBench) openFiles() int { return b.feeds + b.publishers }

func (b *latencyBench) params() map[string]any {
	return map[string]any{"feeds": b.feeds, "rate": b.rate, "duration_s": b.duration.Seconds(), "users": b.users, "publish_via": b.publishVia != ""}
}

func (b *latencyBench) run(ctx context.Context, t *target, res *result) error {
	paths, err := feedPaths(t, "l", b.feeds, b.users)
	if err != nil {
		return err
	}
	feedsOf := make([]int64, b.users) // open feeds per user
	for i := range b.feeds {
		feedsOf[i%b.users]++
	}
	_, feeds, err := t.openFeeds(ctx, paths, b.inflight)
	if err != nil {
		return err
	}
	// Each feed's receive latencies, appended by that feed's reader only.
	lat := make([][]time.Duration, b.feeds)
	var delivered atomic.Int64
	l := listen(feeds, func(i int, id int64, data string, at time.Time) {
		ts, err := strconv.ParseUint(data, 10, 63)
		if err != nil {
			return
		}
		lat[i] = append(lat[i], time.Duration(at.UnixNano()-int64(ts)))
		delivered.Add(1)
	})
	defer l.close()

	total := int(b.rate * b.duration.Seconds())
	interval := time.Duration(float64(time.Second) / b.rate)
	var expected, posted atomic.Int64
	pubs := make([]publisher, b.publishers)
	from := t.snapshot(ctx)
	var wg sync.WaitGroup
	for p := range pubs {
		pub := &pubs[p]
		pub.errors = map[string]int{}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), uint64(from.at.UnixNano())))
			for k := p; k < total && ctx.Err() == nil; k += b.publishers {
				if wait := time.Until(from.at.Add(time.Duration(k) * interval)); wait > 0 {
					sleep(ctx, wait)
				}
				u := rng.IntN(b.users)
				start := time.Now()
				body := appendNotification(nil, "l", u, `"`+strconv.FormatInt(start.UnixNano(), 10)+`"`)
				status, _, err := t.postTo(ctx, cmp.Or(b.publishVia, t.base), "/admin/notifications", body)
				switch {
				case err != nil:
					pub.errors["transport"]++
				case status == http.StatusCreated:
					pub.latencies = append(pub.latencies, time.Since(start))
					posted.Add(1)
					expected.Add(feedsOf[u])
				default:
					pub.errors[strconv.Itoa(status)]++
				}
			}
		})
	}
	wg.Wait()
	publishedAt := time.Now()
	if err := waitFor(ctx, b.tail, func() bool { return delivered.Load() >= expected.Load() }); err != nil {
		return err
	}
	to := t.snapshot(ctx)
	l.close()

	var all, pubLat []time.Duration
	for _, s := range lat {
		all = append(all, s...)
	}
	failed := 0
	for _, pub := range pubs {
		pubLat = append(pubLat, pub.latencies...)
		for _, v := range pub.errors {
			failed += v
		}
	}
	slices.Sort(all)
	slices.Sort(pubLat)
	exp, got := expected.Load(), delivered.Load()
	res.add("feeds", float64(b.feeds), "")
	res.add("posted", float64(posted.Load()), "events answered 201")
	res.add("publish_errors", float64(failed), "requests")
	res.add("rate_achieved", float64(posted.Load())/publishedAt.Sub(from.at).Seconds(), "events/s")
	res.add("expected", float64(exp), "deliveries")
	res.add("delivered", float64(got), "deliveries")
	res.add("duplicates", float64(l.duplicates.Load()), "")
	res.addMs("latency_p50_ms", percentile(all, 50))
	res.addMs("latency_p90_ms", percentile(all, 90))
	res.addMs("latency_p99_ms", percentile(all, 99))
	res.addMs("latency_max_ms", percentile(all, 100))
	res.addMs("publish_p50_ms", percentile(pubLat, 50))
	res.addMs("publish_p99_ms", percentile(pubLat, 99))
	addTimes(res, from, to)
	warnDeliveries(t.log(), exp, got, l.duplicates.Load())
	return nil
}

// waitFor polls done every few milliseconds until it is true or limit has
// passed. Only a cancelled ctx is an error.
func waitFor(ctx context.Context, limit time.Duration, done func() bool) error {
	deadline := time.Now().Add(limit)
	for !done() && time.Now().Before(deadline) {
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// warnDeliveries says so when a feed missed or repeated events, which
// feedd promises never happens.
func warnDeliveries(log io.Writer, expected, delivered, duplicates int64) {
	if delivered != expected {
		fmt.Fprintf(log, "feedbench: WARNING: %d deliveries expected, %d made\n", expected, delivered)
	}
	if duplicates > 0 {
		fmt.Fprintf(log, "feedbench: WARNING: %d duplicate deliveries\n", duplicates)
	}
}
