package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/feedd/feedd/internal/sse"
)

// Feeds over one source address: past spreadAbove, feeds are dialled from
// 127.0.0.2 to 127.0.0.9 in turn, each with its own ephemeral ports.
const (
	spreadAbove = 10000
	openTimeout = 30 * time.Second
	dialTries   = 4
)

// fileMargin is how many files beside its feeds the tool may need.
const fileMargin = 100

// raiseFileLimit raises the soft limit on open files to the hard one (so
// that a feedd started from here inherits it too) and checks that feeds
// connections, plus a margin, fit under it.
func raiseFileLimit(feeds int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open-file limit: %w", err)
	}
	lim.Cur = lim.Max
	// Setting it, even to what the Go runtime already set at start-up,
	// also makes child processes inherit it.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	need := uint64(feeds + fileMargin)
	if need > lim.Cur {
		return usagef("%d feeds need %d open files; this process may have at most %d (the hard limit on open files, which it cannot raise): ask for at most %d",
			feeds, need, lim.Cur, int(lim.Cur)-fileMargin)
	}
	return nil
}

// dialer opens feeds on raw connections: an HTTP/1.1 request written by
// hand and the response read with http.ReadResponse, far lighter than an
// http.Client per feed.
type dialer struct {
	addr    string // host:port
	sources []*net.TCPAddr
	next    atomic.Uint64
	retries atomic.Int64
}

// newDialer returns a dialer to addr for n feeds, spreading them over
// several loopback source addresses when n is large and addr is loopback.
func newDialer(addr string, n int) *dialer {
	d := &dialer{addr: addr}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); n > spreadAbove && ip != nil && ip.IsLoopback() && ip.To4() != nil {
		for i := 2; i <= 9; i++ {
			d.sources = append(d.sources, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
		}
	}
	return d
}

// feedConn is an open feed whose response headers and first retry field
// have been read.
type feedConn struct {
	conn     net.Conn
	events   *sse.Decoder // the event stream, chunked encoding removed; nil once released
	start    time.Time    // before the dial
	headers  time.Time    // when the response headers had arrived
	retryEnd time.Time    // when the retry field had arrived
}

// release drops the readers of a feed that will not be read again,
// keeping only its connection.
func (f *feedConn) release() { f.events = nil }

// statusError is a feed refused with an HTTP status.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("feed refused with %d %s: %s", e.status, http.StatusText(e.status), e.body)
	if e.status == http.StatusServiceUnavailable {
		msg += ` (the server's --max-feeds is reached; start it with --server-args "--max-feeds N")`
	}
	return msg
}

// open opens the feed at path (e.g. /events?token=...) and reads up to the
// end of its first event, the retry field.
func (d *dialer) open(ctx context.Context, path string) (*feedConn, error) {
	f := &feedConn{start: time.Now()}
	nd := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
	if len(d.sources) > 0 {
		nd.LocalAddr = d.sources[d.next.Add(1)%uint64(len(d.sources))]
	}
	conn, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(openTimeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := d.handshake(f, conn, path); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	f.conn = conn
	return f, nil
}

func (d *dialer) handshake(f *feedConn, conn net.Conn, path string) error {
	req := "GET " + path + " HTTP/1.1\r\nHost: " + d.addr + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	f.headers = time.Now()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return &statusError{resp.StatusCode, strings.TrimSpace(string(b))}
	}
	f.events = sse.NewDecoder(resp.Body)
	for {
		k, _, err := f.events.Step()
		if err != nil {
			return fmt.Errorf("read the feed's first event: %w", err)
		}
		if k == sse.KindRetry {
			f.retryEnd = time.Now()
			return nil
		}
	}
}

// retryable tells a transient failure to open a connection (a dropped SYN,
// a reset, a source port in use) from one that will not go away.
func retryable(err error) bool {
	var se *statusError
	switch {
	case errors.As(err, &se), errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE), errors.Is(err, context.Canceled):
		return false
	}
	return true
}

// openRetry opens a feed, trying again after a pause on transient errors.
func (d *dialer) openRetry(ctx context.Context, path string) (*feedConn, error) {
	pause := 50 * time.Millisecond
	for try := 1; ; try++ {
		f, err := d.open(ctx, path)
		if err == nil {
			return f, nil
		}
		if try == dialTries || !retryable(err) || ctx.Err() != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				return nil, fmt.Errorf("feedbench ran out of open files: %w", err)
			}
			return nil, err
		}
		d.retries.Add(1)
		if err := sleep(ctx, pause); err != nil {
			return nil, err
		}
		pause *= 2
	}
}

// openFeeds opens n feeds, feed i at path(i), with at most inflight
// handshakes at a time so that the server's listen backlog does not
// overflow. On an error it closes the feeds it opened.
func (d *dialer) openFeeds(ctx context.Context, n, inflight int, path func(i int) string) ([]*feedConn, error) {
	feeds := make([]*feedConn, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(inflight, 1))
	var wg sync.WaitGroup
loop:
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Go(func() {
			defer func() { <-sem }()
			f, err := d.openRetry(ctx, path(i))
			if err != nil {
				cancel(fmt.Errorf("open feed %d of %d: %w", i+1, n, err))
				return
			}
			feeds[i] = f
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		closeFeeds(feeds)
		return nil, context.Cause(ctx)
	}
	return feeds, nil
}

// closeFeeds closes every open feed in feeds.
func closeFeeds(feeds []*feedConn) {
	for _, f := range feeds {
		if f != nil && f.conn != nil {
			f.conn.Close()
		}
	}
}

// readEvents reads f's events until the stream fails or fn returns false,
// calling fn with each event's id (see eventID) and data.
func (f *feedConn) readEvents(fn func(id int64, data string) bool) error {
	for {
		e, err := f.events.Next()
		if err != nil {
			return err
		}
		if !fn(eventID(e), e.Data) {
			return nil
		}
	}
}

// eventID returns the log id of e, or -1 for a notice the server sends on
// its own (feed.*, which has no id of its own but would show the last
// event ID before it) and for an event without a decimal id.
func eventID(e sse.Event) int64 {
	if e.ID == "" || strings.HasPrefix(e.Type, "feed.") {
		return -1
	}
	id, err := strconv.ParseUint(e.ID, 10, 63)
	if err != nil {
		return -1
	}
	return int64(id)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
