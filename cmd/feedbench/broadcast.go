package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// broadcastBench is the broadcast scenario: many feeds, and broadcasts
// posted one at a time, each timed until the last feed has it.
type broadcastBench struct {
	feeds    int
	events   int
	inflight int
	timeout  time.Duration
}

func (b *broadcastBench) flags(fs *flag.FlagSet) {
	fs.IntVar(&b.feeds, "feeds", 10000, "feeds to open, each for its own user")
	fs.IntVar(&b.events, "events", 20, "broadcasts to post, one at a time")
	fs.IntVar(&b.inflight, "inflight", 200, "feeds being opened at once")
	fs.DurationVar(&b.timeout, "timeout", 30*time.Second, "give up on a broadcast that has not reached every feed after this")
}

func (b *broadcastBench) check() error {
	switch {
	case b.feeds < 1:
		return usagef("--feeds must be at least 1")
	case b.events < 1:
		return usagef("--events must be at least 1")
	}
	return nil
}

func (b *broadcastBench) openFiles() int { return b.feeds }

func (b *broadcastBench) params() map[string]any {
	return map[string]any{"feeds": b.feeds, "events": b.events}
}

// arrival tracks one broadcast: how many feeds still wait for it, and when
// the first and the last of them got it.
type arrival struct {
	left  atomic.Int64
	first atomic.Int64 // unix nanoseconds; 0 until the first receipt
	last  atomic.Int64
	done  chan struct{}
}

func (b *broadcastBench) run(ctx context.Context, t *target, res *result) error {
	paths, err := feedPaths(t, "b", b.feeds, b.feeds)
	if err != nil {
		return err
	}
	// The data of each broadcast is tag:k, so that other broadcasts on a
	// shared server are told apart.
	tag := strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	arrivals := make([]arrival, b.events)
	for i := range arrivals {
		arrivals[i].left.Store(int64(b.feeds))
		arrivals[i].done = make(chan struct{})
	}
	_, feeds, err := t.openFeeds(ctx, paths, b.inflight)
	if err != nil {
		return err
	}
	var delivered atomic.Int64
	l := listen(feeds, func(_ int, _ int64, data string, at time.Time) {
		rest, found := strings.CutPrefix(data, tag)
		if !found {
			return
		}
		k, err := strconv.ParseUint(rest, 10, 63)
		if err != nil || k >= uint64(len(arrivals)) {
			return
		}
		delivered.Add(1)
		a := &arrivals[k]
		a.first.CompareAndSwap(0, at.UnixNano())
		if a.left.Add(-1) == 0 {
			a.last.Store(at.UnixNano())
			close(a.done)
		}
	})
	defer l.close()

	var toLast, toFirst, post []time.Duration
	incomplete := 0
	from := t.snapshot(ctx)
	for k := range arrivals {
		a := &arrivals[k]
		body := []byte(`{"broadcast":true,"data":"` + tag + strconv.Itoa(k) + `"}`)
		start := time.Now()
		status, answer, err := t.post(ctx, "/admin/notifications", body)
		if err != nil {
			return fmt.Errorf("post broadcast %d: %w", k, err)
		}
		if status != http.StatusCreated {
			return errStatus(fmt.Sprintf("post broadcast %d", k), status, answer)
		}
		post = append(post, time.Since(start))
		timer := time.NewTimer(b.timeout)
		select {
		case <-a.done:
			toLast = append(toLast, time.Duration(a.last.Load()-start.UnixNano()))
			toFirst = append(toFirst, time.Duration(a.first.Load()-start.UnixNano()))
		case <-timer.C:
			incomplete++
			fmt.Fprintf(t.log(), "feedbench: broadcast %d reached %d of %d feeds in %s\n", k, int64(b.feeds)-a.left.Load(), b.feeds, b.timeout)
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		timer.Stop()
	}
	to := t.snapshot(ctx)
	l.close()

	slices.Sort(toLast)
	slices.Sort(toFirst)
	slices.Sort(post)
	expected := int64(b.feeds) * int64(b.events)
	res.add("feeds", float64(b.feeds), "")
	res.add("events", float64(b.events), "broadcasts")
	res.addMs("to_last_median_ms", percentile(toLast, 50))
	res.addMs("to_last_min_ms", percentile(toLast, 0))
	res.addMs("to_last_max_ms", percentile(toLast, 100))
	res.addMs("to_first_median_ms", percentile(toFirst, 50))
	res.addMs("publish_median_ms", percentile(post, 50))
	res.add("deliveries_per_s", float64(delivered.Load())/to.at.Sub(from.at).Seconds(), "deliveries/s")
	res.add("expected", float64(expected), "deliveries")
	res.add("delivered", float64(delivered.Load()), "deliveries")
	res.add("duplicates", float64(l.duplicates.Load()), "")
	res.add("incomplete", float64(incomplete), "broadcasts")
	addTimes(res, from, to)
	warnDeliveries(t.log(), expected, delivered.Load(), l.duplicates.Load())
	return nil
}
