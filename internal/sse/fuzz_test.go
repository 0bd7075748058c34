package sse

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// normalizeBreaks turns every CR and CRLF in s into LF, which is what a
// client reads back from data lines.
func normalizeBreaks(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] != '\r':
			b.WriteByte(s[i])
		case i+1 < len(s) && s[i+1] == '\n':
			// CRLF: the LF is written next iteration
		default:
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// FuzzRoundTrip checks that a WHATWG parser reads back exactly the event
// AppendEvent wrote, and that AppendEvent refuses what it cannot write.
func FuzzRoundTrip(f *testing.F) {
	const retry = int64(3 * time.Second)
	seeds := []struct {
		id, typ, data string
		retry         int64
	}{
		{"", "", "hello", 0},
		{"1", "order.shipped", `{"id":1,"title":"shipped"}`, 0},
		{"", "message", "x", 0},
		{"", "", "", 0},
		{"", "", "", retry},
		{"", "message", "", retry},
		{"9", "", "", 0},
		{"", "", "a\nb\rc\r\nd", 0},
		{"", "", "a\n", 0},
		{"", "", "a\r", 0},
		{"", "", "a\r\n", 0},
		{"", "", "\n", 0},
		{"", "", "\r\r\n\n\r", 0},
		{"", "", "\n\n", 0},
		{" 1", " t", "  x\n y", 0},
		{":", ":", ":\n:", 0},
		{"", "", "data: x\n\nevent: y\n\nid: 3\n\n", 0},
		{"", "", "a\x00b", 0},
		{"\uFEFF", "\uFEFF", "\uFEFFx", 0},
		{"\xff", "\xfe", "\xff\n\xc3", 0},
		{"", "", "x", 1},
		{"", "", "x", int64(time.Millisecond)},
		{"", "", "x", 1<<63 - 1},
		{"1\n", "", "x", 0},
		{"\x00", "", "x", 0},
		{"", "a\rb", "x", 0},
		{"", "\x00", "x", 0},
		{"", "", "x", -1},
	}
	for _, s := range seeds {
		f.Add(s.id, s.typ, s.data, s.retry)
	}
	f.Fuzz(func(t *testing.T, id, typ, data string, retry int64) {
		e := Event{ID: id, Type: typ, Data: data, Retry: time.Duration(retry)}
		prefix := []byte(": earlier output\n")
		dst := append(make([]byte, 0, len(prefix)+64), prefix...)
		out, err := AppendEvent(dst, e)

		invalid := strings.ContainsAny(id, "\r\n\x00") || strings.ContainsAny(typ, "\r\n\x00") || retry < 0
		if invalid {
			if !errors.Is(err, ErrInvalidField) {
				t.Fatalf("AppendEvent(%+v) error = %v, want ErrInvalidField", e, err)
			}
			if !bytes.Equal(out, prefix) {
				t.Fatalf("AppendEvent(%+v) appended %q on error", e, out[len(prefix):])
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendEvent(%+v): %v", e, err)
		}
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("AppendEvent(%+v) changed dst: %q", e, out)
		}
		encoded := out[len(prefix):]

		// A second event after it shows the first left no state behind.
		stream, err := AppendEvent(bytes.Clone(out), Event{Type: "next", Data: "after"})
		if err != nil {
			t.Fatal(err)
		}
		got := parseStream(string(stream))

		want := parseResult{Retry: -1}
		if retry > 0 {
			want.Retry = retryMillis(time.Duration(retry))
		}
		pureRetry := id == "" && typ == "" && data == "" && retry > 0
		if !pureRetry {
			wantType := typ
			if wantType == "" {
				wantType = "message"
			}
			want.Events = append(want.Events, parsedEvent{Type: wantType, Data: normalizeBreaks(data), LastEventID: id})
		}
		want.Events = append(want.Events, parsedEvent{Type: "next", Data: "after", LastEventID: id})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip of %+v\nencoded %q\n    got %+v\n   want %+v", e, encoded, got, want)
		}
	})
}

// FuzzComment checks that every line of a comment is a comment: a client
// reads nothing from it, and the event after it arrives intact.
func FuzzComment(f *testing.F) {
	for _, s := range []string{"", "ping", "a\nb", "a\r\nb\rc", "\n", "\r\n\r\n", "data: x\n\nid: 1\n\n", " x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		out := AppendComment(nil, text)
		lines := strings.SplitAfter(string(out), "\n")
		if lines[len(lines)-1] != "" {
			t.Fatalf("AppendComment(%q) = %q: does not end in LF", text, out)
		}
		var back []string
		for _, l := range lines[:len(lines)-1] {
			l = strings.TrimSuffix(l, "\n")
			if !strings.HasPrefix(l, ":") || strings.ContainsAny(l, "\r\n") {
				t.Fatalf("AppendComment(%q) = %q: line %q is not a comment", text, out, l)
			}
			back = append(back, strings.TrimPrefix(l[1:], " "))
		}
		if got := strings.Join(back, "\n"); got != normalizeBreaks(text) {
			t.Fatalf("AppendComment(%q) = %q: lines give back %q", text, out, got)
		}

		stream, err := AppendEvent(out, Event{ID: "1", Data: "x"})
		if err != nil {
			t.Fatal(err)
		}
		want := parseResult{Events: []parsedEvent{{Type: "message", Data: "x", LastEventID: "1"}}, Retry: -1}
		if got := parseStream(string(stream)); !reflect.DeepEqual(got, want) {
			t.Fatalf("comment %q then an event: got %+v, want %+v", out, got, want)
		}
	})
}
