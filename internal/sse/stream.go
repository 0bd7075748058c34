package sse

import (
	"errors"
	"fmt"
	"time"
)

// maxKeptBuf is the largest encoding buffer a Stream keeps between writes.
// One unusually large event should not pin its memory for the life of a
// long-lived connection; with many open streams that adds up.
const maxKeptBuf = 64 << 10

// Writer is what a Stream writes to: the body of a response whose headers
// were sent, which can be flushed and given write deadlines. A Writer whose
// SetWriteDeadline fails with an error matching errors.ErrUnsupported is
// written to without deadlines.
type Writer interface {
	Write(p []byte) (int, error)
	Flush() error
	SetWriteDeadline(t time.Time) error
}

// Stream writes an event stream. Every write is flushed at once.
//
// A Stream is not safe for concurrent use: it belongs to the goroutine
// that feeds it. After a write fails the stream is broken.
type Stream struct {
	w Writer
	// writeTimeout bounds each write; 0 means no deadline. It is set to 0
	// once the Writer reports that deadlines are not supported, so that
	// check does not allocate an error on every write.
	writeTimeout time.Duration
	buf          []byte // reused for encoding events and comments
}

// NewStream returns a Stream that writes to w. If writeTimeout > 0, each
// write is given that long: a write deadline is set before it and cleared
// after it, so that an idle stream is never cut off (over HTTP/2 a deadline
// left in place resets the stream when it passes, even with nothing being
// written).
func NewStream(w Writer, writeTimeout time.Duration) *Stream {
	return &Stream{w: w, writeTimeout: max(writeTimeout, 0)}
}

// Send encodes and writes one event and flushes. An event that cannot be
// encoded returns an error wrapping [ErrInvalidField] and writes nothing.
func (s *Stream) Send(e Event) error {
	buf, err := AppendEvent(s.buf[:0], e)
	if err != nil {
		return err
	}
	return s.writeBuf(buf)
}

// WriteRaw writes bytes that are already encoded and flushes. p should hold
// one or more complete events or comments, such as the output of
// [AppendEvent] encoded once and shared by many streams; WriteRaw does not
// check it and does not keep it.
func (s *Stream) WriteRaw(p []byte) error {
	return s.write(p)
}

// Comment writes text as comment lines (see [AppendComment]) and flushes.
// Clients ignore comments, so an empty or short comment serves as a
// heartbeat.
func (s *Stream) Comment(text string) error {
	return s.writeBuf(AppendComment(s.buf[:0], text))
}

// writeBuf writes buf, which was encoded into s.buf, and keeps it for the
// next encoding unless it grew too large.
func (s *Stream) writeBuf(buf []byte) error {
	err := s.write(buf)
	if cap(buf) > maxKeptBuf {
		buf = nil
	}
	s.buf = buf[:0]
	return err
}

// write writes p and flushes it within the write timeout.
func (s *Stream) write(p []byte) error {
	if err := s.setWriteDeadline(); err != nil {
		return err
	}
	if _, err := s.w.Write(p); err != nil {
		return fmt.Errorf("sse: write: %w", err)
	}
	return s.flush()
}

// flush flushes the response and then clears the write deadline.
func (s *Stream) flush() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("sse: flush: %w", err)
	}
	return s.clearWriteDeadline()
}

// setWriteDeadline gives the next write writeTimeout from now.
func (s *Stream) setWriteDeadline() error {
	if s.writeTimeout == 0 {
		return nil
	}
	return s.deadline(time.Now().Add(s.writeTimeout))
}

// clearWriteDeadline removes the deadline set for the last write.
func (s *Stream) clearWriteDeadline() error {
	if s.writeTimeout == 0 {
		return nil
	}
	return s.deadline(time.Time{})
}

func (s *Stream) deadline(t time.Time) error {
	err := s.w.SetWriteDeadline(t)
	if errors.Is(err, errors.ErrUnsupported) {
		s.writeTimeout = 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("sse: set write deadline: %w", err)
	}
	return nil
}
