package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// listeners reads a set of open feeds, one goroutine each, until they are
// closed.
type listeners struct {
	feeds      []*feedConn
	wg         sync.WaitGroup
	duplicates atomic.Int64 // events whose id was not above the feed's last
	unnamed    atomic.Int64 // events without an id (feed.* notices)
}

// listen starts reading feeds. fn gets each new event of feed i with the
// time it was read; an event whose id is not above the last one that feed
// saw is counted as a duplicate instead. fn runs on feed i's goroutine, so
// per-feed state needs no lock.
func listen(feeds []*feedConn, fn func(i int, id int64, data string, at time.Time)) *listeners {
	l := &listeners{feeds: feeds}
	for i, f := range feeds {
		l.wg.Go(func() {
			last := int64(-1)
			f.readEvents(func(id int64, data string) bool {
				at := time.Now()
				switch {
				case id < 0:
					l.unnamed.Add(1)
				case id <= last:
					l.duplicates.Add(1)
				default:
					last = id
					fn(i, id, data, at)
				}
				return true
			})
		})
	}
	return l
}

// close closes the feeds and waits for their readers to end.
func (l *listeners) close() {
	closeFeeds(l.feeds)
	l.wg.Wait()
}
