package main

import (
	"context"
	"flag"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// publishBench is the publish scenario: concurrent publishers posting as
// fast as the server answers for a while.
type publishBench struct {
	concurrency int
	duration    time.Duration
	batch       int
	users       int
}

func (p *publishBench) flags(fs *flag.FlagSet) {
	fs.IntVar(&p.concurrency, "concurrency", 64, "concurrent publishers, each posting one request at a time")
	fs.DurationVar(&p.duration, "duration", 10*time.Second, "how long to publish")
	fs.IntVar(&p.batch, "batch", 0, "0: post single notifications to /admin/notifications; N: post batches of N single-user notifications to /admin/notifications/batch")
	fs.IntVar(&p.users, "users", 1000, "notifications go to users chosen at random among this many")
}

func (p *publishBench) check() error {
	switch {
	case p.concurrency < 1:
		return usagef("--concurrency must be at least 1")
	case p.duration <= 0:
		return usagef("--duration must be positive")
	case p.batch < 0 || p.batch > 1000:
		return usagef("--batch must be from 0 to 1000 (the server's limit per batch)")
	case p.users < 1:
		return usagef("--users must be at least 1")
	}
	return nil
}

func (p *publishBench) openFiles() int { return p.concurrency }

func (p *publishBench) params() map[string]any {
	return map[string]any{"concurrency": p.concurrency, "duration_s": p.duration.Seconds(), "batch": p.batch, "users": p.users}
}

// publisher is one worker's tally, merged at the end.
type publisher struct {
	latencies []time.Duration // of accepted requests
	accepted  int             // notifications
	errors    map[string]int  // by status, or "transport"
}

func (p *publishBench) run(ctx context.Context, t *target, res *result) error {
	path, perRequest := "/admin/notifications", 1
	if p.batch > 0 {
		path, perRequest = "/admin/notifications/batch", p.batch
	}
	workers := make([]publisher, p.concurrency)
	// A guess at each worker's share of 50k requests/s, so that the
	// slices rarely grow while measuring.
	sizeHint := min(int(p.duration.Seconds()*50000)/p.concurrency+64, 1<<20)
	from := t.snapshot(ctx)
	end := from.at.Add(p.duration)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.latencies = make([]time.Duration, 0, sizeHint)
		w.errors = map[string]int{}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(from.at.UnixNano())))
			size := 64
			for ctx.Err() == nil && time.Now().Before(end) {
				// A fresh buffer each time: the transport may still hold
				// the last one after it answered.
				body := p.body(make([]byte, 0, size), rng)
				size = len(body) + 16
				start := time.Now()
				status, _, err := t.post(ctx, path, body)
				took := time.Since(start)
				switch {
				case err != nil:
					w.errors["transport"]++
					sleep(ctx, 10*time.Millisecond) // do not spin on a refused connection
				case status == http.StatusCreated:
					w.accepted += perRequest
					w.latencies = append(w.latencies, took)
				default:
					w.errors[strconv.Itoa(status)]++
				}
			}
		})
	}
	wg.Wait()
	to := t.snapshot(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}

	var lat []time.Duration
	accepted := 0
	errs := map[string]int{}
	for _, w := range workers {
		lat = append(lat, w.latencies...)
		accepted += w.accepted
		for k, v := range w.errors {
			errs[k] += v
		}
	}
	slices.Sort(lat)
	wall := to.at.Sub(from.at).Seconds()
	failed := 0
	for _, v := range errs {
		failed += v
	}
	res.add("requests", float64(len(lat)+failed), "")
	res.add("accepted", float64(accepted), "notifications")
	res.add("accepted_per_s", float64(accepted)/wall, "notifications/s")
	res.add("requests_per_s", float64(len(lat))/wall, "accepted requests/s")
	res.addMs("latency_p50_ms", percentile(lat, 50))
	res.addMs("latency_p99_ms", percentile(lat, 99))
	res.addMs("latency_max_ms", percentile(lat, 100))
	res.add("errors", float64(failed), "requests")
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		res.add("errors_"+k, float64(errs[k]), "requests")
	}
	addTimes(res, from, to)
	return nil
}

// payload is the data of every published notification.
const payload = `"feedbench payload"`

// body appends a request body to b: one notification, or a batch of them,
// each to a random user.
func (p *publishBench) body(b []byte, rng *rand.Rand) []byte {
	if p.batch == 0 {
		return appendNotification(b, "p", rng.IntN(p.users), payload)
	}
	b = append(b, `{"notifications":[`...)
	for i := range p.batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNotification(b, "p", rng.IntN(p.users), payload)
	}
	return append(b, "]}"...)
}

// appendNotification appends {"user":"<prefix><n>","data":<data>}; data
// is JSON.
func appendNotification(b []byte, prefix string, n int, data string) []byte {
	b = append(b, `{"user":"`...)
	b = append(b, prefix...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, `","data":`...)
	b = append(b, data...)
	return append(b, '}')
}
