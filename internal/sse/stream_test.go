package sse

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// nullWriter is a Writer that takes everything and supports no deadlines.
type nullWriter struct{ n int }

func (w *nullWriter) Write(p []byte) (int, error)      { w.n += len(p); return len(p), nil }
func (w *nullWriter) Flush() error                     { return nil }
func (w *nullWriter) SetWriteDeadline(time.Time) error { return errNoDeadlines }

var errNoDeadlines = &deadlineError{}

type deadlineError struct{}

func (*deadlineError) Error() string        { return "no deadlines" }
func (*deadlineError) Is(target error) bool { return target == errors.ErrUnsupported }

func TestStreamBigEventBufferNotKept(t *testing.T) {
	w := &nullWriter{}
	s := NewStream(w, time.Second)
	if err := s.Send(Event{Data: strings.Repeat("x", 2*maxKeptBuf)}); err != nil {
		t.Fatal(err)
	}
	if cap(s.buf) > maxKeptBuf {
		t.Errorf("kept a %d-byte buffer after a large event, want at most %d", cap(s.buf), maxKeptBuf)
	}
	if s.writeTimeout != 0 {
		t.Errorf("a Writer without deadlines still gets them (timeout %v)", s.writeTimeout)
	}
	if w.n < 2*maxKeptBuf {
		t.Errorf("wrote %d bytes, want the whole event", w.n)
	}
}
