package feed

import (
	"errors"
	"sync"
	"time"
)

// ErrTooManyFeeds is returned by Engine.Subscribe when a user already has
// the maximum number of open feeds.
var ErrTooManyFeeds = errors.New("too many open feeds for this user")

// ErrServerFull is returned by Engine.Subscribe when the server already
// has the maximum number of open feeds.
var ErrServerFull = errors.New("too many open feeds")

// delivery is one log row as the tailer read it, encoded once and shared,
// read-only, by every feed it is handed to.
type delivery struct {
	id        int64
	userID    string // "" for a broadcast
	typ       string
	wire      []byte
	committed time.Time
}

// subscriber is one open feed as the hub sees it: a bounded queue the hub
// appends to without ever blocking, and a flag set when the queue overflowed
// so that the feed knows to catch up from the database by its own cursor.
type subscriber struct {
	userID string
	wake   chan struct{}

	mu       sync.Mutex
	queue    []*delivery
	queued   int // bytes of wire in queue
	overflow bool
}

// push queues d for the feed and wakes it. It never blocks: a queue that
// would pass either bound is dropped and marked as overflowed instead.
func (s *subscriber) push(d *delivery, opts *HubOptions) {
	s.mu.Lock()
	switch {
	case s.overflow:
	case len(s.queue) >= opts.QueueLen || s.queued+len(d.wire) > opts.QueueBytes:
		s.overflow = true
		clear(s.queue)
		s.queue, s.queued = s.queue[:0], 0
	default:
		s.queue = append(s.queue, d)
		s.queued += len(d.wire)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns what was queued and whether the queue overflowed since the
// last take, and resets both. spare (the slice returned by the previous take,
// now consumed) becomes the new queue, so steady state allocates nothing.
func (s *subscriber) take(spare []*delivery) ([]*delivery, bool) {
	clear(spare)
	s.mu.Lock()
	q, over := s.queue, s.overflow
	s.queue, s.queued, s.overflow = spare[:0], 0, false
	s.mu.Unlock()
	return q, over
}

// HubOptions bound the hub's resources.
type HubOptions struct {
	// MaxConnsPerUser caps the open feeds of one user; 0 means no cap.
	MaxConnsPerUser int
	// MaxFeeds caps the open feeds of all users; 0 means no cap.
	MaxFeeds int
	// QueueLen and QueueBytes bound what a feed may have waiting (events,
	// and bytes of their encoding) before it is switched to catching up from
	// the database; 0 means 256 events and 1 MiB.
	QueueLen   int
	QueueBytes int
}

// hub hands the rows the tailer reads to the open feeds they are for.
type hub struct {
	opts HubOptions

	mu    sync.Mutex
	users map[string]map[*subscriber]struct{}
	all   map[*subscriber]struct{}
}

// newHub returns a hub with no feeds.
func newHub(opts HubOptions) *hub {
	if opts.QueueLen <= 0 {
		opts.QueueLen = 256
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 1 << 20
	}
	return &hub{
		opts:  opts,
		users: make(map[string]map[*subscriber]struct{}),
		all:   make(map[*subscriber]struct{}),
	}
}

// subscribe registers a feed for userID: every row dispatched from now on
// that is for the user is queued for it.
func (h *hub) subscribe(userID string) (*subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.opts.MaxFeeds > 0 && len(h.all) >= h.opts.MaxFeeds {
		return nil, ErrServerFull
	}
	mine := h.users[userID]
	if h.opts.MaxConnsPerUser > 0 && len(mine) >= h.opts.MaxConnsPerUser {
		return nil, ErrTooManyFeeds
	}
	if mine == nil {
		mine = make(map[*subscriber]struct{})
		h.users[userID] = mine
	}
	s := &subscriber{userID: userID, wake: make(chan struct{}, 1)}
	mine[s] = struct{}{}
	h.all[s] = struct{}{}
	return s, nil
}

// unsubscribe removes a feed; its slot is free at once.
func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.all, s)
	if mine := h.users[s.userID]; mine != nil {
		delete(mine, s)
		if len(mine) == 0 {
			delete(h.users, s.userID)
		}
	}
}

// dispatch hands rows, in id order, to the feeds they are for: a user's
// row to that user's feeds, a broadcast to every feed.
func (h *hub) dispatch(ds []*delivery) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range ds {
		if d.userID == "" {
			for s := range h.all {
				s.push(d, &h.opts)
			}
		} else {
			for s := range h.users[d.userID] {
				s.push(d, &h.opts)
			}
		}
	}
}

// feeds returns the number of open feeds.
func (h *hub) feeds() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.all)
}
