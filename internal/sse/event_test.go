package sse

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"plain", Event{Data: "hello"}, "data: hello\n\n"},
		{"named type", Event{Type: "order.shipped", Data: "x"}, "event: order.shipped\ndata: x\n\n"},
		{"type message omitted", Event{Type: "message", Data: "x"}, "data: x\n\n"},
		{"LF", Event{Data: "a\nb"}, "data: a\ndata: b\n\n"},
		{"CR", Event{Data: "a\rb"}, "data: a\ndata: b\n\n"},
		{"CRLF is one break", Event{Data: "a\r\nb"}, "data: a\ndata: b\n\n"},
		{"mixed", Event{Data: "a\r\rb\n\rc\r\n\nd"}, "data: a\ndata:\ndata: b\ndata:\ndata: c\ndata:\ndata: d\n\n"},
		{"LF CR is two breaks", Event{Data: "a\n\rb"}, "data: a\ndata:\ndata: b\n\n"},
		{"trailing LF", Event{Data: "a\n"}, "data: a\ndata:\n\n"},
		{"trailing CRLF", Event{Data: "a\r\n"}, "data: a\ndata:\n\n"},
		{"trailing CR", Event{Data: "a\r"}, "data: a\ndata:\n\n"},
		{"leading LF", Event{Data: "\na"}, "data:\ndata: a\n\n"},
		{"only LF", Event{Data: "\n"}, "data:\ndata:\n\n"},
		{"only newlines", Event{Data: "\r\n\n\r"}, "data:\ndata:\ndata:\ndata:\n\n"},
		{"empty data", Event{}, "data:\n\n"},
		{"empty data with type", Event{Type: "ping"}, "event: ping\ndata:\n\n"},
		{"leading spaces kept", Event{Data: "  x\n y"}, "data:   x\ndata:  y\n\n"},
		{"colon in data", Event{Data: "a: b"}, "data: a: b\n\n"},
		{"JSON", Event{Data: `{"a":1}`}, "data: {\"a\":1}\n\n"},
		{"unicode", Event{Type: "ünï", Data: "héllo 世界 🎉\u2028x\u0085y"}, "event: ünï\ndata: héllo 世界 🎉\u2028x\u0085y\n\n"},
		{"NUL in data kept", Event{Data: "a\x00b"}, "data: a\x00b\n\n"},
		{"ID", Event{ID: "42", Data: "x"}, "id: 42\ndata: x\n\n"},
		{"ID with leading space", Event{ID: " 42", Data: "x"}, "id:  42\ndata: x\n\n"},
		{"all fields in order", Event{ID: "7", Type: "t", Data: "a\nb", Retry: 1500 * time.Millisecond},
			"id: 7\nevent: t\nretry: 1500\ndata: a\ndata: b\n\n"},
		{"retry with data", Event{Data: "x", Retry: 3 * time.Second}, "retry: 3000\ndata: x\n\n"},
		{"retry rounded up", Event{Data: "x", Retry: 1500*time.Microsecond + 1}, "retry: 2\ndata: x\n\n"},
		{"retry under 1ms", Event{Data: "x", Retry: time.Nanosecond}, "retry: 1\ndata: x\n\n"},
		{"pure retry", Event{Retry: 3 * time.Second}, "retry: 3000\n\n"},
		{"retry with ID is not pure", Event{ID: "1", Retry: time.Second}, "id: 1\nretry: 1000\ndata:\n\n"},
		{"retry with type message is not pure", Event{Type: "message", Retry: time.Second}, "retry: 1000\ndata:\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := "prev\n\n"
			got, err := AppendEvent([]byte(prefix), tt.e)
			if err != nil {
				t.Fatalf("AppendEvent(%+v): %v", tt.e, err)
			}
			if string(got) != prefix+tt.want {
				t.Errorf("AppendEvent(%+v)\n got %q\nwant %q", tt.e, got[len(prefix):], tt.want)
			}
		})
	}
}

func TestAppendEventInvalid(t *testing.T) {
	tests := []struct {
		name  string
		e     Event
		field string
	}{
		{"id LF", Event{ID: "1\n2", Data: "x"}, "id"},
		{"id CR", Event{ID: "1\r", Data: "x"}, "id"},
		{"id CRLF", Event{ID: "\r\n"}, "id"},
		{"id NUL", Event{ID: "1\x002", Data: "x"}, "id"},
		{"type LF", Event{Type: "a\nb", Data: "x"}, "event type"},
		{"type CR", Event{Type: "a\r", Data: "x"}, "event type"},
		{"type NUL", Event{Type: "\x00"}, "event type"},
		{"negative retry", Event{Data: "x", Retry: -time.Second}, "retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]byte, 0, 64)
			dst = append(dst, "prev\n\n"...)
			got, err := AppendEvent(dst, tt.e)
			if !errors.Is(err, ErrInvalidField) {
				t.Fatalf("AppendEvent(%+v) error = %v, want ErrInvalidField", tt.e, err)
			}
			if !strings.HasPrefix(err.Error(), "sse: invalid field: "+tt.field+" ") {
				t.Errorf("error %q does not name the field %q", err, tt.field)
			}
			// Nothing appended: not to the returned slice, and not into
			// dst's spare capacity either.
			spare := dst[len(dst):cap(dst)]
			if string(got) != "prev\n\n" || strings.Trim(string(spare), "\x00") != "" {
				t.Errorf("AppendEvent appended on error: got %q, spare capacity %q", got, spare)
			}
		})
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string
	}{
		{"empty", "", ":\n"},
		{"heartbeat", "ping", ": ping\n"},
		{"leading space kept", " x", ":  x\n"},
		{"LF", "a\nb", ": a\n: b\n"},
		{"CR", "a\rb", ": a\n: b\n"},
		{"CRLF", "a\r\nb", ": a\n: b\n"},
		{"empty line inside", "a\n\nb", ": a\n:\n: b\n"},
		{"trailing LF", "a\n", ": a\n:\n"},
		{"only LF", "\n", ":\n:\n"},
		{"looks like a field", "data: x\n\nevent: y", ": data: x\n:\n: event: y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendComment([]byte("x\n"), tt.text)
			if string(got) != "x\n"+tt.want {
				t.Errorf("AppendComment(%q)\n got %q\nwant %q", tt.text, got[2:], tt.want)
			}
		})
	}
}

func TestAppendEventAllocs(t *testing.T) {
	e := Event{ID: "12345", Type: "order.shipped", Data: "a\r\nb\nc", Retry: time.Second}
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		dst, _ = AppendEvent(dst[:0], e)
		dst = AppendComment(dst, "ping")
	})
	if allocs != 0 {
		t.Errorf("AppendEvent into a large enough buffer: %v allocs, want 0", allocs)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	benchmarks := []struct {
		name string
		e    Event
	}{
		{"json", Event{ID: "1234567", Type: "order.shipped",
			Data: `{"id":1234567,"user":"u_42","title":"Your order has shipped","url":"/orders/981","at":"2025-01-02T03:04:05Z"}`}},
		{"multiline", Event{ID: "1234567", Data: "line one\nline two\r\nline three\rline four"}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.e.Data)))
			var dst []byte
			for b.Loop() {
				var err error
				dst, err = AppendEvent(dst[:0], bm.e)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
