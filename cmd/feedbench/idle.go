package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"time"
)

// idleBench is the idle scenario: many open feeds that carry nothing, and
// what they cost the server.
type idleBench struct {
	feeds    int
	inflight int
	settle   time.Duration
}

func (b *idleBench) flags(fs *flag.FlagSet) {
	fs.IntVar(&b.feeds, "feeds", 1000, "feeds to open, each on its own connection and for its own user")
	fs.IntVar(&b.inflight, "inflight", 200, "feeds being opened at once")
	fs.DurationVar(&b.settle, "settle", 2*time.Second, "wait this long once every feed is open before measuring")
}

func (b *idleBench) check() error {
	if b.feeds < 1 {
		return usagef("--feeds must be at least 1")
	}
	return nil
}

func (b *idleBench) openFiles() int { return b.feeds }

func (b *idleBench) params() map[string]any {
	return map[string]any{"feeds": b.feeds}
}

func (b *idleBench) run(ctx context.Context, t *target, res *result) error {
	if t.pid == 0 && t.metricsURL == "" {
		return usagef("the idle scenario measures the server: give --pid or leave --metrics on")
	}
	paths, err := feedPaths(t, "i", b.feeds, b.feeds)
	if err != nil {
		return err
	}
	before, err := t.stats(ctx)
	if err != nil {
		return err
	}
	from := t.snapshot(ctx)
	d, feeds, err := t.openFeeds(ctx, paths, b.inflight)
	if err != nil {
		return err
	}
	defer closeFeeds(feeds)
	for _, f := range feeds {
		f.release()
	}
	to := t.snapshot(ctx)
	if err := sleep(ctx, b.settle); err != nil {
		return err
	}
	after, err := t.stats(ctx)
	if err != nil {
		return err
	}

	n := float64(b.feeds)
	res.add("feeds", n, "")
	if after.feedsOpen >= 0 && before.feedsOpen >= 0 {
		res.add("feeds_open", after.feedsOpen-before.feedsOpen, "more than before, per the server")
	}
	res.add("open_s", to.at.Sub(from.at).Seconds(), "s to open them all")
	res.add("open_per_s", n/to.at.Sub(from.at).Seconds(), "feeds/s")
	res.add("dial_retries", float64(d.retries.Load()), "")
	if len(d.sources) > 0 {
		res.add("source_addresses", float64(len(d.sources)), "")
	}
	if before.rss > 0 && after.rss > 0 {
		res.add("rss_before_mb", before.rss/(1<<20), "MB")
		res.add("rss_after_mb", after.rss/(1<<20), "MB")
		res.add("rss_per_feed_kb", (after.rss-before.rss)/n/1024, "KB")
	}
	if before.goroutines >= 0 && after.goroutines >= 0 {
		res.add("goroutines_before", before.goroutines, "")
		res.add("goroutines_after", after.goroutines, "")
		res.add("goroutines_per_feed", (after.goroutines-before.goroutines)/n, "")
	}
	res.add("client_max_rss_mb", selfMaxRSS()/(1<<20), "MB")
	addTimes(res, from, to)
	return nil
}

// feedPaths mints tokens for n feeds and returns their paths: feed i is
// for user prefix<i mod users>, live only.
func feedPaths(t *target, prefix string, n, users int) ([]string, error) {
	if users < 1 {
		return nil, errors.New("no users")
	}
	paths := make([]string, n)
	for i := range paths {
		tok, err := t.userToken(fmt.Sprintf("%s%d", prefix, i%users))
		if err != nil {
			return nil, err
		}
		paths[i] = "/events?token=" + url.QueryEscape(tok)
	}
	return paths, nil
}

// openFeeds opens a feed at each of paths, inflight at a time, and returns
// them with the dialer that opened them.
func (t *target) openFeeds(ctx context.Context, paths []string, inflight int) (*dialer, []*feedConn, error) {
	n := len(paths)
	if n >= 1000 {
		fmt.Fprintf(t.log(), "feedbench: opening %d feeds\n", n)
	}
	start := time.Now()
	d := newDialer(t.addr, n)
	feeds, err := d.openFeeds(ctx, n, inflight, func(i int) string { return paths[i] })
	if err == nil && n >= 1000 {
		fmt.Fprintf(t.log(), "feedbench: opened %d feeds in %s\n", n, time.Since(start).Round(time.Millisecond))
	}
	return d, feeds, err
}
