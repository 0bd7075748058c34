package sse

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestDecoderNext(t *testing.T) {
	stream := "\uFEFFretry: 3000\n\n: heartbeat\n" +
		"id: 1\ndata: hello\n\n" +
		"event: order.shipped\ndata: two\r\ndata: lines\r\n\r\n" +
		"event: feed.reset\ndata: {}\n\n" +
		"id: 9\n\n" +
		"data: cut"
	d := NewDecoder(strings.NewReader(stream))
	want := []Event{
		{ID: "1", Type: "message", Data: "hello"},
		{ID: "1", Type: "order.shipped", Data: "two\nlines"},
		{ID: "1", Type: "feed.reset", Data: "{}"},
	}
	for _, w := range want {
		got, err := d.Next()
		if err != nil || got != w {
			t.Fatalf("Next() = %+v, %v; want %+v", got, err, w)
		}
	}
	for range 2 {
		if got, err := d.Next(); err != io.EOF {
			t.Fatalf("Next() at the end = %+v, %v; want io.EOF", got, err)
		}
	}
	if id := d.LastEventID(); id != "9" {
		t.Errorf("LastEventID() = %q, want %q", id, "9")
	}
}

func TestDecoderStep(t *testing.T) {
	stream := "retry: 3000\n\n:\n: ping\nretry: x\nid: 2\nretry: 10\ndata: a\n\n"
	d := NewDecoder(strings.NewReader(stream))
	want := []traced{
		{KindRetry, Event{Retry: 3 * time.Second}},
		{KindComment, Event{}},
		{KindComment, Event{}},
		{KindRetry, Event{Retry: 10 * time.Millisecond}},
		{KindEvent, Event{ID: "2", Type: "message", Data: "a"}},
	}
	for _, w := range want {
		k, e, err := d.Step()
		if got := (traced{k, e}); err != nil || got != w {
			t.Fatalf("Step() = %+v, %v; want %+v", got, err, w)
		}
	}
	if k, e, err := d.Step(); err != io.EOF {
		t.Fatalf("Step() at the end = %v, %+v, %v; want io.EOF", k, e, err)
	}
}

// TestDecoderDoesNotWaitAfterCR checks that a line ending in CR is handled
// as soon as the CR arrives, and that an LF arriving later is only the end
// of that line break.
func TestDecoderDoesNotWaitAfterCR(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	// Each write is sent only after the event before it was read: a
	// Decoder that waits for the byte after a CR never gets it.
	writes := make(chan string, 1)
	go func() {
		for s := range writes {
			w.Write([]byte(s))
		}
		w.Close()
	}()
	defer close(writes)
	d := NewDecoder(r)
	for _, step := range []struct {
		write string
		want  Event
	}{
		{"data: x\r\r", Event{Type: "message", Data: "x"}},
		{"\ndata: y\r", Event{}},
		{"\n\r", Event{Type: "message", Data: "y"}},
	} {
		writes <- step.write
		if step.want == (Event{}) {
			continue // a line without an event: nothing to wait for
		}
		next := make(chan error, 1)
		var got Event
		go func() {
			var err error
			got, err = d.Next()
			next <- err
		}()
		select {
		case err := <-next:
			if err != nil || got != step.want {
				t.Fatalf("after %q: Next() = %+v, %v; want %+v", step.write, got, err, step.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("after %q: Next() is waiting for more bytes", step.write)
		}
	}
}

func TestDecoderTooLong(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		events int // read before the error
	}{
		{"line", "data: 12345\n\ndata: 123456\n\n", 1},
		{"comment", ":" + strings.Repeat("c", 11) + "\n", 0},
		{"unfinished line", strings.Repeat("x", 12), 0},
		{"data lines", "data:12345\ndata:12345\n\ndata:12345\ndata:123456\n\n", 1},
		{"line in a small buffer", "data: 12345\n\n" + strings.Repeat(":"+strings.Repeat("c", 9)+"\n", 50) + strings.Repeat("x", 40), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range bufSizes {
				d := newDecoderSize(strings.NewReader(tt.stream), size)
				d.MaxEventBytes = 11
				for range tt.events {
					if _, err := d.Next(); err != nil {
						t.Fatalf("buffer %d: Next() = %v before the long line", size, err)
					}
				}
				for range 2 {
					if _, err := d.Next(); !errors.Is(err, ErrTooLong) {
						t.Fatalf("buffer %d: Next() = %v, want ErrTooLong", size, err)
					}
				}
			}
		})
	}
}

func TestDecoderDefaultLimit(t *testing.T) {
	for _, n := range []int{DefaultMaxEventBytes - len("data: "), DefaultMaxEventBytes - len("data: ") + 1} {
		stream := "data: " + strings.Repeat("x", n) + "\n\n"
		_, err := NewDecoder(strings.NewReader(stream)).Next()
		if tooLong := len(stream)-2 > DefaultMaxEventBytes; errors.Is(err, ErrTooLong) != tooLong {
			t.Errorf("a %d-byte line: Next() = %v, want ErrTooLong %v", len(stream)-2, err, tooLong)
		}
	}
}

func TestDecoderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: x\n\ndata: y\n"), iotest.ErrReader(boom))
	d := NewDecoder(r)
	if e, err := d.Next(); err != nil || e.Data != "x" {
		t.Fatalf("Next() = %+v, %v; want data x", e, err)
	}
	for range 2 {
		if _, err := d.Next(); err != boom {
			t.Fatalf("Next() = %v, want %v as it is", err, boom)
		}
	}
}

func TestNewDecoderKeepsBufioReader(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("x\ndata: y\n\n"), decodeBufSize)
	if line, err := br.ReadString('\n'); err != nil || line != "x\n" {
		t.Fatalf("ReadString = %q, %v", line, err)
	}
	if e, err := NewDecoder(br).Next(); err != nil || e.Data != "y" {
		t.Errorf("Next() on the rest of a bufio.Reader = %+v, %v; want data y", e, err)
	}
}

// responseWriter is an http.ResponseWriter as a Writer (internal/api has
// the real one).
type responseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (r responseWriter) Write(p []byte) (int, error)        { return r.w.Write(p) }
func (r responseWriter) Flush() error                       { return r.rc.Flush() }
func (r responseWriter) SetWriteDeadline(t time.Time) error { return r.rc.SetWriteDeadline(t) }

// TestDecoderHTTP reads a Stream over HTTP/1.1 and HTTP/2 the way a test
// client reads a feed: ids, types and data, the retry field, heartbeats.
func TestDecoderHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		s := NewStream(responseWriter{w: w, rc: http.NewResponseController(w)}, time.Second)
		for _, write := range []func() error{
			func() error { return s.Send(Event{Retry: 3 * time.Second}) },
			func() error { return s.Comment("") },
			func() error { return s.Send(Event{ID: "7", Data: `{"a":1}`}) },
			func() error { return s.Send(Event{Type: "t", Data: "for\r\neveryone"}) },
			func() error { return s.WriteRaw([]byte("id: 8\r\ndata: raw\r\n\r\n")) },
		} {
			if err := write(); err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	})
	want := []traced{
		{KindRetry, Event{Retry: 3 * time.Second}},
		{KindComment, Event{}},
		{KindEvent, Event{ID: "7", Type: "message", Data: `{"a":1}`}},
		{KindEvent, Event{ID: "7", Type: "t", Data: "for\neveryone"}},
		{KindEvent, Event{ID: "8", Type: "message", Data: "raw"}},
	}
	for _, http2 := range []bool{false, true} {
		ts := httptest.NewUnstartedServer(h)
		ts.EnableHTTP2 = http2
		if http2 {
			ts.StartTLS()
		} else {
			ts.Start()
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a missing flush fails, not hangs
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("GET /events: %v", err)
		}
		got, _, err := decodeTrace(resp.Body, decodeBufSize)
		resp.Body.Close()
		cancel()
		if err != io.EOF || len(got) != len(want) {
			t.Fatalf("HTTP/2 %v: read %+v, %v; want %+v, io.EOF", http2, got, err, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("HTTP/2 %v: step %d = %+v, want %+v", http2, i, got[i], want[i])
			}
		}
		ts.Close()
	}
}

// feedStream returns n events as feedd writes them: an id and a JSON
// payload, with a heartbeat every 100 events.
func feedStream(n int) []byte {
	var b []byte
	for i := range n {
		if i%100 == 0 {
			b = AppendComment(b, "")
		}
		id := strconv.Itoa(1_000_000 + i)
		b, _ = AppendEvent(b, Event{ID: id, Data: `{"id":` + id + `,"user":"u_42","title":"Your order has shipped","url":"/orders/981"}`})
	}
	return b
}

func TestDecoderAllocs(t *testing.T) {
	stream := feedStream(1000)
	d := NewDecoder(bytes.NewReader(stream))
	d.Next() // the buffers grow on the first event
	allocs := testing.AllocsPerRun(500, func() {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("Next: %v allocs per event, want at most 2 (its id and its data)", allocs)
	}
}

func BenchmarkDecode(b *testing.B) {
	const n = 1000
	stream := feedStream(n)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	r := bytes.NewReader(stream)
	for b.Loop() {
		r.Reset(stream)
		d := NewDecoder(r)
		for {
			if _, err := d.Next(); err != nil {
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}
