package feed

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/sse"
)

// Event types: 1 to MaxTypeLen characters of A-Za-z0-9._:-; DefaultType
// when a publish names none; those starting with ReservedPrefix are the
// server's own (feed.truncated, feed.reset) and never stored.
const (
	MaxTypeLen     = 64
	DefaultType    = "message"
	ReservedPrefix = "feed."
)

// Types the server sends on its own when a resuming client's cursor does
// not lead straight on to the log's next event.
const (
	truncatedType = "feed.truncated" // events after the cursor are gone
	resetType     = "feed.reset"     // the cursor is beyond every id the log issued
)

// ValidTypeName reports whether s is 1 to MaxTypeLen characters of
// A-Za-z0-9._:-, the shape of an event type.
func ValidTypeName(s string) bool {
	if s == "" || len(s) > MaxTypeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// CheckType says why typ cannot be the type of a published event, worded
// to follow the field's name, or returns nil.
func CheckType(typ string) error {
	switch {
	case typ == "" || len(typ) > MaxTypeLen:
		return fmt.Errorf("must be 1 to %d characters long", MaxTypeLen)
	case !ValidTypeName(typ):
		return errors.New("may only contain letters, digits and . _ : -")
	case strings.HasPrefix(typ, ReservedPrefix):
		return fmt.Errorf("must not start with %q: that prefix is reserved for the server", ReservedPrefix)
	}
	return nil
}

// sendable says why a log row must not be sent as an event, or returns nil.
// Rows the API writes can always be sent; the schema holds rows that other
// programs insert with SQL to the same rules. Should one slip through
// anyway, feeds skip it and listings leave it out, so the two agree, and
// no row can pass for an event the server sends itself (feed.*).
func sendable(e db.Event) error {
	switch {
	case e.TooLarge:
		return errors.New("its data is over --max-data-bytes")
	case !ValidTypeName(e.Type):
		return errors.New("its type is not an event type")
	case strings.HasPrefix(e.Type, ReservedPrefix):
		return errors.New("its type starts with feed., which is reserved for the server")
	}
	return nil
}

// Listable leaves out of evs, in place, the rows that feeds skip, so that
// listings and feeds agree.
func Listable(evs []db.Event) []db.Event {
	return slices.DeleteFunc(evs, func(e db.Event) bool { return sendable(e) != nil })
}

// Sendable reports whether feeds send e (see Listable).
func Sendable(e db.Event) bool { return sendable(e) == nil }

// encode appends the SSE encoding of a log row to dst, or fails, leaving
// dst as it was, for a row that must not be sent (see sendable).
func encode(dst []byte, e db.Event) ([]byte, error) {
	if err := sendable(e); err != nil {
		return dst, err
	}
	return sse.AppendEvent(dst, sse.Event{ID: strconv.FormatInt(e.ID, 10), Type: e.Type, Data: e.Data})
}
