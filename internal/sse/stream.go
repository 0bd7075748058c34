package sse

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// maxKeptBuf is the largest encoding buffer a Stream keeps between writes.
// One unusually large event should not pin its memory for the life of a
// long-lived connection; with many open streams that adds up.
const maxKeptBuf = 64 << 10

// Stream writes an event stream to one HTTP response. Every write is
// flushed at once.
//
// A Stream is not safe for concurrent use: it belongs to the goroutine
// serving the request. After a write fails the response is broken and the
// handler should return.
type Stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	// writeTimeout bounds each write; 0 means no deadline. It is set to 0
	// once the ResponseWriter reports that deadlines are not supported, so
	// that check does not allocate an error on every write.
	writeTimeout time.Duration
	buf          []byte // reused for encoding events and comments
}

// NewStream sets the response headers (Content-Type: text/event-stream,
// Cache-Control: no-cache, X-Accel-Buffering: no, and Connection:
// keep-alive when r.ProtoMajor == 1), writes status 200 and flushes at
// once, so the client sees the stream open without waiting for an event.
//
// If writeTimeout > 0, each write is given that long: a write deadline is
// set through [http.ResponseController] before it and cleared after it, so
// an idle stream is never cut off (over HTTP/2 a deadline left in place
// resets the stream when it passes, even with nothing being written). A
// ResponseWriter without deadline support is written to without one.
//
// w must be able to flush, itself or through a chain of Unwrap()
// http.ResponseWriter methods; otherwise NewStream returns an error
// matching [http.ErrNotSupported]. The status has been written by then, so
// the caller can only log the error and return.
func NewStream(w http.ResponseWriter, r *http.Request, writeTimeout time.Duration) (*Stream, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 {
		h.Set("Connection", "keep-alive")
	}
	s := &Stream{w: w, rc: http.NewResponseController(w), writeTimeout: max(writeTimeout, 0)}
	if err := s.setWriteDeadline(); err != nil {
		return nil, err
	}
	w.WriteHeader(http.StatusOK)
	if err := s.flush(); err != nil {
		return nil, err
	}
	return s, nil
}

// Attach returns a Stream that goes on writing a response whose headers
// were already sent, by [NewStream] or otherwise: for example the rest of a
// stream on a connection taken over from net/http, through a writer that
// frames what it is given. w is written to, flushed and given deadlines as
// by NewStream; its headers are not touched.
func Attach(w http.ResponseWriter, writeTimeout time.Duration) *Stream {
	return &Stream{w: w, rc: http.NewResponseController(w), writeTimeout: max(writeTimeout, 0)}
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
	if err := s.rc.Flush(); err != nil {
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
	err := s.rc.SetWriteDeadline(t)
	if errors.Is(err, http.ErrNotSupported) {
		s.writeTimeout = 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("sse: set write deadline: %w", err)
	}
	return nil
}
