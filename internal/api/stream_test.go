package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/sse"
)

// unwrapper is middleware's ResponseWriter wrapper done right: it does not
// flush itself, but Unwrap lets http.ResponseController reach the writer
// that does.
type unwrapper struct {
	http.ResponseWriter
	status int
}

func (u *unwrapper) WriteHeader(code int) {
	u.status = code
	u.ResponseWriter.WriteHeader(code)
}

func (u *unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// noUnwrap is the same wrapper without Unwrap: flushes cannot reach the
// connection through it.
type noUnwrap struct{ http.ResponseWriter }

func TestNewStreamHeaders(t *testing.T) {
	for _, proto := range []int{1, 2} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/events", nil)
		r.ProtoMajor = proto
		if _, err := openStream(rec, r, 0); err != nil {
			t.Fatalf("HTTP/%d: NewStream: %v", proto, err)
		}
		want := http.Header{
			"Content-Type":      {"text/event-stream"},
			"Cache-Control":     {"no-cache"},
			"X-Accel-Buffering": {"no"},
		}
		if proto == 1 {
			want.Set("Connection", "keep-alive")
		}
		if got := rec.Result().Header; !equalHeader(got, want) {
			t.Errorf("HTTP/%d: headers = %v, want %v", proto, got, want)
		}
		if rec.Code != http.StatusOK || !rec.Flushed || rec.Body.Len() != 0 {
			t.Errorf("HTTP/%d: code %d, flushed %v, body %q; want 200, flushed, empty", proto, rec.Code, rec.Flushed, rec.Body)
		}
	}
}

func equalHeader(got, want http.Header) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if strings.Join(got[k], ",") != strings.Join(v, ",") {
			return false
		}
	}
	return true
}

func TestStreamWrites(t *testing.T) {
	shared, err := sse.AppendEvent(nil, sse.Event{ID: "2", Data: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	// httptest.ResponseRecorder has no write deadlines; a write timeout
	// must not turn that into an error.
	for _, timeout := range []time.Duration{0, time.Second} {
		rec := httptest.NewRecorder()
		s, err := openStream(rec, httptest.NewRequest(http.MethodGet, "/events", nil), timeout)
		if err != nil {
			t.Fatal(err)
		}
		rec.Flushed = false
		steps := []struct {
			write func() error
			want  string
		}{
			{func() error { return s.Send(sse.Event{Retry: 3 * time.Second}) }, "retry: 3000\n\n"},
			{func() error { return s.Send(sse.Event{ID: "1", Type: "t", Data: "a\nb"}) }, "id: 1\nevent: t\ndata: a\ndata: b\n\n"},
			{func() error { return s.WriteRaw(shared) }, "id: 2\ndata: shared\n\n"},
			{func() error { return s.Comment("") }, ":\n"},
			{func() error { return s.Comment("ping") }, ": ping\n"},
		}
		for _, step := range steps {
			rec.Body.Reset()
			if err := step.write(); err != nil {
				t.Fatalf("timeout %v: write %q: %v", timeout, step.want, err)
			}
			if rec.Body.String() != step.want || !rec.Flushed {
				t.Errorf("timeout %v: wrote %q (flushed %v), want %q flushed", timeout, rec.Body, rec.Flushed, step.want)
			}
			rec.Flushed = false
		}
	}
}

func TestStreamSendInvalid(t *testing.T) {
	rec := httptest.NewRecorder()
	s, err := openStream(rec, httptest.NewRequest(http.MethodGet, "/events", nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(sse.Event{ID: "1\n", Data: "x"}); !errors.Is(err, sse.ErrInvalidField) {
		t.Errorf("Send(bad id) = %v, want sse.ErrInvalidField", err)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("Send(bad id) wrote %q", rec.Body)
	}
}

func TestNewStreamCannotFlush(t *testing.T) {
	w := noUnwrap{httptest.NewRecorder()}
	_, err := openStream(w, httptest.NewRequest(http.MethodGet, "/events", nil), 0)
	if !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("NewStream on a writer that cannot flush: error %v, want http.ErrNotSupported", err)
	}
}

// failWriter fails every write after the first n.
type failWriter struct {
	*httptest.ResponseRecorder
	n int
}

var errBroken = errors.New("broken pipe")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errBroken
	}
	f.n--
	return f.ResponseRecorder.Write(p)
}

func TestStreamWriteError(t *testing.T) {
	w := &failWriter{ResponseRecorder: httptest.NewRecorder()}
	s, err := openStream(w, httptest.NewRequest(http.MethodGet, "/events", nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() error{
		"Send":     func() error { return s.Send(sse.Event{Data: "x"}) },
		"WriteRaw": func() error { return s.WriteRaw([]byte("data: x\n\n")) },
		"Comment":  func() error { return s.Comment("ping") },
	} {
		if err := write(); !errors.Is(err, errBroken) {
			t.Errorf("%s on a broken connection: error %v, want it to wrap %v", name, err, errBroken)
		}
	}
}

// discardWriter is a flushing ResponseWriter that supports write
// deadlines and throws the bytes away, to count the Stream's own
// allocations.
type discardWriter struct {
	h        http.Header
	deadline time.Time
}

func (d *discardWriter) Header() http.Header                { return d.h }
func (d *discardWriter) Write(p []byte) (int, error)        { return len(p), nil }
func (d *discardWriter) WriteHeader(int)                    {}
func (d *discardWriter) Flush()                             {}
func (d *discardWriter) SetWriteDeadline(t time.Time) error { d.deadline = t; return nil }

func TestStreamSendAllocs(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Second} {
		w := &discardWriter{h: http.Header{}}
		s, err := openStream(w, httptest.NewRequest(http.MethodGet, "/events", nil), timeout)
		if err != nil {
			t.Fatal(err)
		}
		e := sse.Event{ID: "123", Type: "t", Data: `{"a":"b"}` + "\n" + `{"c":"d"}`}
		allocs := testing.AllocsPerRun(100, func() {
			if err := s.Send(e); err != nil {
				t.Fatal(err)
			}
			if err := s.Comment("ping"); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("timeout %v: Send and Comment: %v allocs per run, want 0", timeout, allocs)
		}
		if !w.deadline.IsZero() {
			t.Errorf("timeout %v: write deadline left at %v after a write", timeout, w.deadline)
		}
	}
}

// readExactly reads len(want) bytes from r and checks they are want. The
// handler writing them is blocked until the test lets it go on, so the bytes
// can only arrive if the Stream flushed them.
func readExactly(t *testing.T, r io.Reader, want string) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("reading %q: got %q, %v", want, got, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}
