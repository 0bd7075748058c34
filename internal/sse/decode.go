package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// DefaultMaxEventBytes is the limit a [Decoder] applies when its
// MaxEventBytes is zero.
const DefaultMaxEventBytes = 1 << 20

// decodeBufSize is the size of the buffer a Decoder reads through.
const decodeBufSize = 4096

// ErrTooLong is returned, wrapped, when a stream has a line or an event's
// data longer than the [Decoder]'s MaxEventBytes.
var ErrTooLong = errors.New("sse: too long")

// Kind tells what [Decoder.Step] read.
type Kind uint8

const (
	// KindEvent is an event dispatched by an empty line.
	KindEvent Kind = iota + 1
	// KindComment is a comment line, such as a heartbeat.
	KindComment
	// KindRetry is a retry field that set the reconnection time.
	KindRetry
)

// Decoder reads an event stream as a browser's EventSource does, following
// the WHATWG HTML standard, "Interpreting an event stream":
//
//   - Lines end at CR, LF or CRLF, also when the CR and the LF arrive in
//     separate reads; a line ending in CR is handled at once, without
//     waiting for the next byte. One UTF-8 byte order mark at the start of
//     the stream is skipped.
//   - A line "name: value" is a field; one space after the colon is
//     removed, and a line without a colon is a field with an empty value.
//     Lines starting with a colon are comments.
//   - Field "event" sets the event type, "data" adds a data line, "id"
//     sets the last event ID unless its value contains NUL, and "retry"
//     sets the reconnection time if its value is ASCII digits only. Other
//     fields are ignored.
//   - An empty line dispatches an event if any data line came since the
//     last one, and otherwise only takes up the id.
//   - At the end of the stream an unfinished line or event is dropped.
//
// Bytes are returned as they came: unlike a browser, the Decoder does not
// replace invalid UTF-8 (use [strings.ToValidUTF8] for that).
//
// The fields of a Decoder are options to set before the first read. A
// Decoder is not safe for concurrent use.
type Decoder struct {
	// MaxEventBytes bounds the memory one event may take: a line longer
	// than this (without its line break), or an event whose Data would be,
	// makes Step and Next fail with an error wrapping [ErrTooLong]. Zero
	// means [DefaultMaxEventBytes].
	MaxEventBytes int

	r        *bufio.Reader
	err      error  // the error every later read returns
	started  bool   // the byte order mark check is done
	afterCR  bool   // the last line ended in CR: an LF next is part of its line break
	consumed int    // bytes of r's buffer the last line took, discarded at the next read
	long     []byte // a line longer than r's buffer, put together
	data     []byte // the data buffer
	typ      []byte // the event type buffer
	lastType string // the event type last dispatched, reused while it repeats
	idBuf    string // the last event ID buffer
	lastID   string // the last event ID, set from idBuf at each empty line
}

// NewDecoder returns a Decoder reading r through a 4 KiB buffer (r itself
// if it is a [bufio.Reader] with at least that much).
func NewDecoder(r io.Reader) *Decoder {
	return newDecoderSize(r, decodeBufSize)
}

func newDecoderSize(r io.Reader, size int) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, size)}
}

// Next reads up to the next event and returns it, skipping comments and
// reconnection times (see [Decoder.Step] to see them). The event's ID is
// the last event ID in force when it was dispatched, as EventSource's
// lastEventId: an event without an id field keeps the one before it. Its
// Type is "message" unless the stream named another, and Retry is zero.
// Encoded again with [AppendEvent], the event reads back the same.
//
// At the end of the stream Next returns [io.EOF]; it returns other read
// errors as they are, and the same error on every later call.
func (d *Decoder) Next() (Event, error) {
	for {
		k, e, err := d.Step()
		if err != nil || k == KindEvent {
			return e, err
		}
	}
}

// Step reads up to the next event, comment line or valid retry field,
// whichever comes first, and says which it read:
//
//   - [KindEvent]: the event, as [Decoder.Next] returns it.
//   - [KindComment]: the zero Event; the comment's text is not kept.
//   - [KindRetry]: an Event with only Retry set, to the new reconnection
//     time (the field's milliseconds; the largest Duration if more). It is
//     the Event that [AppendEvent] encodes as that retry field alone. A
//     retry field does not end an event: fields read before it still
//     belong to the next event Step returns.
//
// Step returns errors as Next does.
func (d *Decoder) Step() (Kind, Event, error) {
	if d.err != nil {
		return 0, Event{}, d.err
	}
	for {
		line, err := d.readLine()
		if err != nil {
			d.err = err
			return 0, Event{}, err
		}
		if len(line) == 0 {
			if e, ok := d.dispatch(); ok {
				return KindEvent, e, nil
			}
			continue
		}
		if line[0] == ':' {
			return KindComment, Event{}, nil
		}
		name, value := line, line[len(line):]
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "event":
			d.typ = append(d.typ[:0], value...)
		case "data":
			if len(d.data)+len(value) > d.limit() {
				d.err = fmt.Errorf("%w: event data over %d bytes", ErrTooLong, d.limit())
				return 0, Event{}, d.err
			}
			d.data = append(d.data, value...)
			d.data = append(d.data, '\n')
		case "id":
			if bytes.IndexByte(value, 0) < 0 && string(value) != d.idBuf {
				d.idBuf = string(value)
			}
		case "retry":
			if r, ok := parseRetry(value); ok {
				return KindRetry, Event{Retry: r}, nil
			}
		}
	}
}

// LastEventID returns the last event ID: the one a reconnecting client
// sends in its Last-Event-ID header. It changes at each empty line, also
// one that dispatches nothing, to the value of the last id field read.
func (d *Decoder) LastEventID() string {
	return d.lastID
}

// dispatch handles an empty line: it takes up the id and, if there is data,
// returns the event.
func (d *Decoder) dispatch() (Event, bool) {
	d.lastID = d.idBuf
	if len(d.data) == 0 {
		d.typ = d.typ[:0]
		return Event{}, false
	}
	typ := "message"
	if len(d.typ) > 0 {
		if string(d.typ) != d.lastType {
			d.lastType = string(d.typ)
		}
		typ = d.lastType
	}
	e := Event{ID: d.lastID, Type: typ, Data: string(d.data[:len(d.data)-1])}
	d.data, d.typ = d.data[:0], d.typ[:0]
	if cap(d.data) > maxKeptBuf {
		d.data = nil // one large event should not pin its memory
	}
	return e, true
}

// limit returns the MaxEventBytes in force.
func (d *Decoder) limit() int {
	if d.MaxEventBytes > 0 {
		return d.MaxEventBytes
	}
	return DefaultMaxEventBytes
}

// readLine returns the next line without its line break. It is valid
// until the next call.
func (d *Decoder) readLine() ([]byte, error) {
	if d.consumed > 0 {
		d.r.Discard(d.consumed) // bytes already buffered: cannot fail
		d.consumed = 0
	}
	if !d.started {
		if err := d.skipBOM(); err != nil {
			return nil, err
		}
	}
	if d.afterCR {
		b, err := d.r.Peek(1)
		if err != nil {
			return nil, err
		}
		if b[0] == '\n' {
			d.r.Discard(1)
		}
		d.afterCR = false
	}
	if cap(d.long) > maxKeptBuf {
		d.long = nil
	}
	d.long = d.long[:0]
	searched := 0 // bytes at the start of the buffer known to hold no line break
	for {
		buf, err := d.r.Peek(max(d.r.Buffered(), searched+1))
		if i := lineEnd(buf[searched:]); i >= 0 {
			i += searched
			n := i + 1
			if buf[i] == '\r' {
				if n < len(buf) && buf[n] == '\n' {
					n++
				} else {
					d.afterCR = n == len(buf)
				}
			}
			if len(d.long)+i > d.limit() {
				return nil, d.tooLong()
			}
			if len(d.long) == 0 {
				d.consumed = n
				return buf[:i], nil
			}
			d.long = append(d.long, buf[:i]...)
			d.r.Discard(n)
			return d.long, nil
		}
		if err != nil {
			return nil, err // an unfinished last line is dropped
		}
		searched = len(buf)
		if len(d.long)+searched > d.limit() {
			return nil, d.tooLong()
		}
		if searched == d.r.Size() {
			d.long = append(d.long, buf...)
			d.r.Discard(searched)
			searched = 0
		}
	}
}

func (d *Decoder) tooLong() error {
	return fmt.Errorf("%w: line over %d bytes", ErrTooLong, d.limit())
}

// skipBOM skips a UTF-8 byte order mark at the start of the stream. It
// reads no further than the first byte that differs from one.
func (d *Decoder) skipBOM() error {
	const bom = "\uFEFF"
	d.started = true
	for n := 1; n <= len(bom); n++ {
		b, err := d.r.Peek(n)
		if len(b) < n {
			return err
		}
		if b[n-1] != bom[n-1] {
			return nil
		}
	}
	d.r.Discard(len(bom))
	return nil
}

// lineEnd returns the index of the first CR or LF in b, or -1.
func lineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		i = len(b)
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	if i == len(b) {
		return -1
	}
	return i
}

// parseRetry parses a retry field's value: ASCII digits only, in
// milliseconds. A value beyond int64 is refused; one beyond the largest
// Duration gives the largest Duration.
func parseRetry(b []byte) (time.Duration, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var ms int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		digit := int64(c - '0')
		if ms > (math.MaxInt64-digit)/10 {
			return 0, false
		}
		ms = ms*10 + digit
	}
	if ms > int64(math.MaxInt64/time.Millisecond) {
		return math.MaxInt64, true
	}
	return time.Duration(ms) * time.Millisecond, true
}
