package sse

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file holds an event stream parser written from the WHATWG HTML
// standard, "Interpreting an event stream", to check the encoder against
// what a browser's EventSource does with its output. It works on bytes:
// the UTF-8 decoding step a browser does first replaces invalid sequences
// but never merges or removes a CR or LF, so it does not change where
// lines break.

// parsedEvent is an event as EventSource dispatches it.
type parsedEvent struct {
	Type        string // "message" when the stream named none
	Data        string
	LastEventID string
}

// parseResult is everything a client takes from a whole stream.
type parseResult struct {
	Events []parsedEvent
	Retry  int64 // last reconnection time set, in ms; -1 if none
	// Pending reports that the stream ended with something not dispatched:
	// an unterminated line, data or an event type without the empty line
	// that dispatches them, or an id that no dispatch has taken up.
	Pending bool
}

// traced is one thing the parser saw, in the terms of Decoder.Step.
type traced struct {
	Kind  Kind
	Event Event
}

// parseStream parses a complete event stream.
func parseStream(stream string) parseResult {
	return parse(stream).res
}

// parse parses a complete event stream and returns the parser, which holds
// the result, the trace and the last event ID.
func parse(stream string) *parser {
	p := &parser{res: parseResult{Retry: -1}}
	stream = strings.TrimPrefix(stream, "\uFEFF") // one BOM, at the start only
	for {
		i := strings.IndexAny(stream, "\r\n")
		if i < 0 {
			break
		}
		p.line(stream[:i])
		if stream[i] == '\r' && i+1 < len(stream) && stream[i+1] == '\n' {
			i++
		}
		stream = stream[i+1:]
	}
	// A last line without a line break is discarded, as is an event
	// without the empty line that ends it.
	p.res.Pending = stream != "" || p.data.Len() > 0 || p.eventType != "" || p.idBuf != p.lastEventID
	return p
}

type parser struct {
	res         parseResult
	trace       []traced        // events, comments and retries in order
	data        strings.Builder // the data buffer
	eventType   string          // the event type buffer
	idBuf       string          // the last event ID buffer
	lastEventID string          // the source's last event ID string
}

func (p *parser) line(line string) {
	switch {
	case line == "":
		p.dispatch()
	case line[0] == ':':
		p.trace = append(p.trace, traced{Kind: KindComment})
	default:
		name, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		p.field(name, value)
	}
}

func (p *parser) field(name, value string) {
	switch name {
	case "event":
		p.eventType = value
	case "data":
		p.data.WriteString(value)
		p.data.WriteByte('\n')
	case "id":
		if !strings.Contains(value, "\x00") {
			p.idBuf = value
		}
	case "retry":
		if value != "" && strings.Trim(value, "0123456789") == "" {
			if ms, err := strconv.ParseInt(value, 10, 64); err == nil {
				p.res.Retry = ms
				d := time.Duration(math.MaxInt64) // a Duration holds fewer ms than an int64
				if ms <= int64(d/time.Millisecond) {
					d = time.Duration(ms) * time.Millisecond
				}
				p.trace = append(p.trace, traced{Kind: KindRetry, Event: Event{Retry: d}})
			}
		}
	}
}

func (p *parser) dispatch() {
	p.lastEventID = p.idBuf
	if p.data.Len() == 0 {
		p.eventType = ""
		return
	}
	data := strings.TrimSuffix(p.data.String(), "\n")
	typ := p.eventType
	if typ == "" {
		typ = "message"
	}
	p.res.Events = append(p.res.Events, parsedEvent{Type: typ, Data: data, LastEventID: p.lastEventID})
	p.trace = append(p.trace, traced{Kind: KindEvent, Event: Event{ID: p.lastEventID, Type: typ, Data: data}})
	p.data.Reset()
	p.eventType = ""
}

// msg is a message event as the parser returns it.
func msg(data, id string) parsedEvent {
	return parsedEvent{Type: "message", Data: data, LastEventID: id}
}

// parseTests are streams with what a client takes from them, mostly the
// examples in the WHATWG standard.
var parseTests = []struct {
	name   string
	stream string
	want   parseResult
}{
	{"spec stock ticker", "data: YHOO\ndata: +2\ndata: 10\n\n",
		parseResult{Events: []parsedEvent{msg("YHOO\n+2\n10", "")}, Retry: -1}},
	{"spec comment and ids", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
		parseResult{Events: []parsedEvent{msg("first event", "1"), msg("second event", ""), msg(" third event", "")}, Retry: -1}},
	{"spec empty data", "data\n\ndata\ndata\n\ndata:",
		parseResult{Events: []parsedEvent{msg("", ""), msg("\n", "")}, Retry: -1, Pending: true}},
	{"spec space after colon", "data:test\n\ndata: test\n\n",
		parseResult{Events: []parsedEvent{msg("test", ""), msg("test", "")}, Retry: -1}},
	{"CR and CRLF", "event: a\r\ndata: x\rdata: y\r\n\r",
		parseResult{Events: []parsedEvent{{Type: "a", Data: "x\ny"}}, Retry: -1}},
	{"BOM at start", "\uFEFFdata: x\n\n",
		parseResult{Events: []parsedEvent{msg("x", "")}, Retry: -1}},
	{"id persists, NUL id ignored", "id: 7\ndata: a\n\nid: 8\x00\ndata: b\n\n",
		parseResult{Events: []parsedEvent{msg("a", "7"), msg("b", "7")}, Retry: -1}},
	{"retry digits only", "retry: 1500\n\nretry: 2x\n\nretry: -1\n\nretry:\n\n",
		parseResult{Retry: 1500}},
	{"no data no event", "event: x\nid: 3\n\n",
		parseResult{Retry: -1}},
	{"unknown field", "foo: bar\ndata: x\n\n",
		parseResult{Events: []parsedEvent{msg("x", "")}, Retry: -1}},
	{"unterminated event", "data: x\n",
		parseResult{Retry: -1, Pending: true}},
	{"undispatched id", "id: 1\n",
		parseResult{Retry: -1, Pending: true}},
}

// TestParseStream checks the test parser itself.
func TestParseStream(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseStream(tt.stream)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseStream(%q)\n got %+v\nwant %+v", tt.stream, got, tt.want)
			}
		})
	}
}
