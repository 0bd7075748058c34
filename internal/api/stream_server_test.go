package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/sse"
)

// step is one write a test handler makes and the bytes the client must
// then be able to read.
type step struct {
	write func(*sse.Stream) error
	want  string
}

// startServer serves an event stream over HTTP/1.1 or, with http2, over
// HTTP/2 with TLS. The handler makes a Stream on wrap(w) and then makes the
// steps one at a time, each only after a value on next: the test can see
// that each step was flushed, since the handler is blocked when it reads.
// Handler errors are reported on t.
func startServer(t *testing.T, http2 bool, wrap func(http.ResponseWriter) http.ResponseWriter, timeout time.Duration, next <-chan struct{}, steps []step) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := openStream(wrap(w), r, timeout)
		if err != nil {
			t.Errorf("NewStream: %v", err)
			return
		}
		for _, st := range steps {
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
			if err := st.write(s); err != nil {
				t.Errorf("handler writing %q: %v", st.want, err)
				return
			}
		}
	})
	ts := httptest.NewUnstartedServer(h)
	if http2 {
		ts.EnableHTTP2 = true
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	return ts
}

// get opens the stream; it returns once the response headers arrived.
func get(t *testing.T, ts *httptest.Server) *http.Response {
	t.Helper()
	// The deadline turns a missing flush into a failure, not a hang.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	return resp
}

func noWrap(w http.ResponseWriter) http.ResponseWriter { return w }

func wrapUnwrap(w http.ResponseWriter) http.ResponseWriter {
	return &unwrapper{ResponseWriter: w}
}

func TestStreamServer(t *testing.T) {
	shared, err := sse.AppendEvent(nil, sse.Event{ID: "8", Type: "t", Data: "for\r\neveryone"})
	if err != nil {
		t.Fatal(err)
	}
	steps := []step{
		{func(s *sse.Stream) error { return s.Send(sse.Event{Retry: 3 * time.Second}) }, "retry: 3000\n\n"},
		{func(s *sse.Stream) error { return s.Send(sse.Event{ID: "7", Data: `{"a":1}`}) }, "id: 7\ndata: {\"a\":1}\n\n"},
		{func(s *sse.Stream) error { return s.WriteRaw(shared) }, "id: 8\nevent: t\ndata: for\ndata: everyone\n\n"},
		{func(s *sse.Stream) error { return s.Comment("") }, ":\n"},
	}
	tests := []struct {
		name  string
		http2 bool
		wrap  func(http.ResponseWriter) http.ResponseWriter
	}{
		{"HTTP/1.1", false, noWrap},
		{"HTTP/1.1 wrapper with Unwrap", false, wrapUnwrap},
		{"HTTP/2", true, noWrap},
		{"HTTP/2 wrapper with Unwrap", true, wrapUnwrap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := make(chan struct{})
			ts := startServer(t, tt.http2, tt.wrap, 5*time.Second, next, steps)
			resp := get(t, ts)

			wantProto, wantConn := 1, "keep-alive"
			if tt.http2 {
				wantProto, wantConn = 2, ""
			}
			if resp.ProtoMajor != wantProto {
				t.Fatalf("served over HTTP/%d, want HTTP/%d", resp.ProtoMajor, wantProto)
			}
			for k, v := range map[string]string{
				"Content-Type":      "text/event-stream",
				"Cache-Control":     "no-cache",
				"X-Accel-Buffering": "no",
				"Connection":        wantConn,
			} {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			for _, st := range steps {
				next <- struct{}{}
				readExactly(t, resp.Body, st.want)
			}
		})
	}
}

// TestStreamIdleLongerThanWriteTimeout checks that a stream may stay
// silent for longer than its write timeout. Over HTTP/2 a write deadline
// left in place resets the stream when it passes, whether or not anything
// is being written.
func TestStreamIdleLongerThanWriteTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, http2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[http2], func(t *testing.T) {
			steps := []step{
				{func(s *sse.Stream) error { return s.Comment("first") }, ": first\n"},
				{func(s *sse.Stream) error {
					// Being idle for longer than the timeout is the point.
					time.Sleep(3 * timeout)
					return s.Send(sse.Event{Data: "later"})
				}, "data: later\n\n"},
			}
			next := make(chan struct{})
			ts := startServer(t, http2, noWrap, timeout, next, steps)
			resp := get(t, ts)
			for _, st := range steps {
				next <- struct{}{}
				readExactly(t, resp.Body, st.want)
			}
		})
	}
}

// TestStreamWriteTimeout checks that a client that stops reading makes a
// write fail once the write timeout passes, instead of blocking the
// handler for ever.
func TestStreamWriteTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, http2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[http2], func(t *testing.T) {
			result := make(chan error, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := openStream(w, r, timeout)
				if err != nil {
					result <- err
					return
				}
				// Write until the connection's buffers and flow-control
				// windows are full and a write blocks; 256 MiB is far more
				// than they hold.
				e := sse.Event{Data: strings.Repeat("x", 64<<10)}
				for range 4096 {
					if err = s.Send(e); err != nil {
						break
					}
				}
				result <- err
			})
			ts := httptest.NewUnstartedServer(h)
			ts.EnableHTTP2 = http2
			if http2 {
				ts.StartTLS()
			} else {
				ts.Start()
			}
			t.Cleanup(ts.Close)
			get(t, ts) // and never read the body

			select {
			case err := <-result:
				if err == nil {
					t.Fatal("Send to a client that does not read never failed")
				}
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Logf("Send failed with %v (not os.ErrDeadlineExceeded)", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Send to a client that does not read blocked despite the write timeout")
			}
		})
	}
}
