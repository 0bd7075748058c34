package api

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/feedd/feedd/internal/sse"
)

// Over HTTP/1.1 a feed that has gone live leaves the goroutine net/http
// serves its connection with. It takes the connection over (Hijack), the
// handler returns, and the feed goes on in a goroutine of its own, with a
// second one parked in a read to notice when the client leaves. What
// net/http kept for the connection (a 4 KiB read buffer, 4 KiB and 2 KiB
// write buffers, the request, and the handler's stack, grown by the replay)
// becomes garbage: an open, idle feed costs two small goroutines and its own
// few hundred bytes of state. HTTP/2 streams cannot be taken over; they stay
// in their handler.

// finishTimeout bounds the write of the last chunk of a detached feed.
const finishTimeout = time.Second

// chunkedConn writes the rest of a chunked HTTP/1.1 response straight to
// the connection, one chunk per Write. It is an sse.Writer: a flush (a
// no-op, as nothing is buffered) and write deadlines.
type chunkedConn struct {
	conn     net.Conn
	bytes    int64     // body bytes written
	deadline time.Time // the connection's write deadline

	head [18]byte // the chunk size line
	// On a TCP connection a chunk goes out in one writev of its three
	// parts; on any other (TLS) it is copied into buf and written once,
	// so that it is one record, not three.
	tcp  bool
	vec  [3][]byte
	bufs net.Buffers
	buf  []byte
}

// newChunkedConn returns the writer for the rest of a response on conn.
func newChunkedConn(conn net.Conn) *chunkedConn {
	if lc, ok := conn.(*loggedConn); ok {
		conn = lc.Conn // the feed writes nothing Listener looks for
	}
	_, tcp := conn.(*net.TCPConn)
	return &chunkedConn{conn: conn, tcp: tcp}
}

var crlf = []byte("\r\n")

// Write sends p as one chunk, in one system call when it can.
func (c *chunkedConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // an empty chunk would end the response
	}
	head := append(strconv.AppendInt(c.head[:0], int64(len(p)), 16), '\r', '\n')
	var err error
	if c.tcp {
		c.vec = [3][]byte{head, p, crlf}
		c.bufs = c.vec[:]
		_, err = c.bufs.WriteTo(c.conn)
		c.vec = [3][]byte{} // do not hold on to p
	} else {
		c.buf = append(append(append(c.buf[:0], head...), p...), crlf...)
		_, err = c.conn.Write(c.buf)
		if cap(c.buf) > 64<<10 {
			c.buf = nil // one large event should not stay pinned
		}
	}
	if err != nil {
		return 0, err
	}
	c.bytes += int64(len(p))
	return len(p), nil
}

// Flush does nothing: every Write goes straight to the connection.
func (c *chunkedConn) Flush() error { return nil }

// deadlineSlack is how far a write's deadline may fall short of the one
// asked for: a deadline is moved at most once per deadlineSlack, not once
// per write, which costs a system timer update each time.
const deadlineSlack = time.Second

// SetWriteDeadline gives the next writes until t, or a little less. The
// zero time, asked for after each write so that an idle stream is not cut
// off, changes nothing here: a deadline left in place only matters to the
// next write, and the stream sets a new one before it.
func (c *chunkedConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() || c.deadline.After(t.Add(-deadlineSlack)) {
		return nil
	}
	if err := c.conn.SetWriteDeadline(t); err != nil {
		return err
	}
	c.deadline = t
	return nil
}

// finish ends the chunked response, so the client sees a clean end rather
// than a broken connection.
func (c *chunkedConn) finish() {
	c.deadline = time.Now().Add(finishTimeout)
	c.conn.SetWriteDeadline(c.deadline)
	c.conn.Write([]byte("0\r\n\r\n"))
}

// detachedFeeds tracks the feeds that left their handlers, so that a
// shutdown can wait for them and, past its deadline, cut them off.
type detachedFeeds struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool // waitFeeds was called: no feed leaves its handler any more
}

func (d *detachedFeeds) remove(conn net.Conn) {
	d.mu.Lock()
	delete(d.conns, conn)
	d.mu.Unlock()
}

// waitFeeds waits until every feed that went on outside its handler has
// ended; closeFeeds (or the http.Server's Shutdown, which calls it) asks
// them to. From now on feeds stay in their handlers. If ctx ends first,
// waitFeeds closes their connections and waits for them to notice, which
// is at once.
func (s *Server) waitFeeds(ctx context.Context) error {
	d := &s.detached
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	d.mu.Lock()
	for conn := range d.conns {
		conn.Close()
	}
	d.mu.Unlock()
	<-done
	return ctx.Err()
}

// detach takes the feed's connection over from net/http and goes on with
// the feed in goroutines of its own, which the server owns from then on
// (waitFeeds waits for them); it reports false, having changed nothing,
// where the connection cannot be taken over (HTTP/2). The feed takes the
// request's access-log entry along and logs it when it ends.
func (s *Server) detach(w http.ResponseWriter, f *liveFeed) bool {
	d := &s.detached
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	// Whatever the client sent after its request (a pipelined request,
	// say) is never answered: the response to this one does not end.
	cw := newChunkedConn(conn)
	f.stream = sse.NewStream(cw, s.cfg.WriteTimeout)
	if d.conns == nil {
		d.conns = make(map[net.Conn]struct{})
	}
	d.conns[conn] = struct{}{}
	f.entry.detached = true

	ctx, cancel := context.WithCancel(context.Background())
	d.wg.Go(func() { watchClose(conn, cancel) })
	d.wg.Go(func() {
		defer cancel()
		reason := f.pump(ctx)
		switch reason {
		case endClientLeft, endSlow, endWriteFailed:
		default:
			cw.finish()
		}
		conn.Close()
		d.remove(conn)
		f.entry.bytes += cw.bytes
		f.end(reason)
		f.entry.log()
	})
	return true
}

// watchClose reads from conn until the client closes it (or it is closed
// here), then cancels the feed. A client has nothing to send on a feed's
// connection; what it sends anyway is dropped.
func watchClose(conn net.Conn, cancel context.CancelFunc) {
	buf := make([]byte, 64)
	for {
		if _, err := conn.Read(buf); err != nil {
			cancel()
			return
		}
	}
}
