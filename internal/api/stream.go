package api

import (
	"net/http"
	"time"

	"github.com/feedd/feedd/internal/sse"
)

// openStream answers r with an event stream: it sets the headers
// (Content-Type: text/event-stream, Cache-Control: no-cache,
// X-Accel-Buffering: no, and Connection: keep-alive over HTTP/1.1), writes
// status 200 and flushes at once, so the client sees the stream open
// without waiting for an event, and returns the stream over w, each write
// bounded by writeTimeout (see sse.NewStream).
//
// w must be able to flush, itself or through a chain of Unwrap()
// http.ResponseWriter methods; otherwise openStream returns an error
// matching http.ErrNotSupported. The status has been written by then, so
// the caller can only log the error and return.
func openStream(w http.ResponseWriter, r *http.Request, writeTimeout time.Duration) (*sse.Stream, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 {
		h.Set("Connection", "keep-alive")
	}
	body := responseBody{w: w, rc: http.NewResponseController(w)}
	w.WriteHeader(http.StatusOK)
	if err := body.Flush(); err != nil {
		return nil, err
	}
	return sse.NewStream(body, writeTimeout), nil
}

// responseBody is an http.ResponseWriter as an sse.Writer: flushes and
// deadlines go through http.ResponseController, so they reach the writer
// that can do them through middleware that implements Unwrap.
type responseBody struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (b responseBody) Write(p []byte) (int, error)        { return b.w.Write(p) }
func (b responseBody) Flush() error                       { return b.rc.Flush() }
func (b responseBody) SetWriteDeadline(t time.Time) error { return b.rc.SetWriteDeadline(t) }
