package sse

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event is one Server-Sent Event. See the package documentation for how
// each field is written.
type Event struct {
	ID    string        // "" = no id field
	Type  string        // "" or "message" = no event field
	Data  string        // payload; may contain CR, LF, CRLF
	Retry time.Duration // 0 = no retry field; otherwise written as "retry: <ms>"
}

// ErrInvalidField is returned, wrapped with the name of the field, when an
// event cannot be written: its ID or Type contains CR, LF or NUL, or its
// Retry is negative.
var ErrInvalidField = errors.New("sse: invalid field")

// AppendEvent appends the wire encoding of e to dst and returns the
// extended slice. If e cannot be encoded it returns dst unchanged and an
// error wrapping [ErrInvalidField].
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if err := checkField("id", e.ID); err != nil {
		return dst, err
	}
	if err := checkField("event type", e.Type); err != nil {
		return dst, err
	}
	if e.Retry < 0 {
		return dst, fmt.Errorf("%w: retry is negative", ErrInvalidField)
	}

	if e.ID != "" {
		dst = appendLine(dst, "id", e.ID)
	}
	if e.Type != "" && e.Type != "message" {
		dst = appendLine(dst, "event", e.Type)
	}
	if e.Retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, retryMillis(e.Retry), 10)
		dst = append(dst, '\n')
	}
	// A pure retry event has no data line: the client takes the retry
	// and dispatches nothing.
	pureRetry := e.ID == "" && e.Type == "" && e.Data == "" && e.Retry > 0
	if !pureRetry {
		dst = appendLines(dst, "data", e.Data)
	}
	return append(dst, '\n'), nil
}

// AppendComment appends text as comment lines to dst and returns the
// extended slice. Text is split on CR, LF and CRLF so every line of it is a
// comment (": line\n"); an empty line, and so an empty text, gives ":\n".
// Clients ignore comments.
func AppendComment(dst []byte, text string) []byte {
	return appendLines(dst, "", text)
}

// checkField reports an error wrapping ErrInvalidField when value cannot be
// written as a single field line that a client keeps.
func checkField(name, value string) error {
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("%w: %s contains CR, LF or NUL", ErrInvalidField, name)
	}
	return nil
}

// retryMillis converts a positive duration to whole milliseconds, rounding
// up so that a sub-millisecond retry does not become "reconnect at once".
func retryMillis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// appendLines writes s as one field line per line of s, where CR, LF and
// CRLF each end a line. An empty s gives one empty line.
func appendLines(dst []byte, name, s string) []byte {
	// Most payloads have no CR; IndexByte is much faster than IndexAny.
	hasCR := strings.IndexByte(s, '\r') >= 0
	for {
		var i int
		if hasCR {
			i = strings.IndexAny(s, "\r\n")
		} else {
			i = strings.IndexByte(s, '\n')
		}
		if i < 0 {
			return appendLine(dst, name, s)
		}
		dst = appendLine(dst, name, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++ // CRLF is one line break
		}
		s = s[i+1:]
	}
}

// appendLine writes "name: value\n", or "name:\n" when value is empty. The
// space after the colon is the one a client strips, so a value that starts
// with a space keeps it. An empty name writes a comment line.
func appendLine(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	if value != "" {
		dst = append(dst, ' ')
		dst = append(dst, value...)
	}
	return append(dst, '\n')
}
