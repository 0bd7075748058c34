package sse

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// This file checks the Decoder against the parser in parse_test.go: on
// every stream, cut into reads in many ways, both must see the same
// events, comments and retries in the same order.

// chunkReader returns s in reads of sizes[0], sizes[1], ... bytes, cycling
// through sizes; with no sizes, in one read.
type chunkReader struct {
	s     string
	sizes []int
	next  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := len(c.s)
	if len(c.sizes) > 0 {
		n = min(n, c.sizes[c.next%len(c.sizes)])
		c.next++
	}
	n = copy(p, c.s[:n])
	c.s = c.s[n:]
	return n, nil
}

// decodeTrace reads r with a Decoder whose buffer holds size bytes until
// it fails, and returns what Step read, the last event ID and the error.
func decodeTrace(r io.Reader, size int) ([]traced, string, error) {
	d := newDecoderSize(r, size)
	var got []traced
	for {
		k, e, err := d.Step()
		if err != nil {
			return got, d.LastEventID(), err
		}
		got = append(got, traced{k, e})
	}
}

// bufSizes are the Decoder buffer sizes tried: bufio's smallest, so that
// lines outgrow it, and the one NewDecoder uses.
var bufSizes = []int{16, decodeBufSize}

// checkDecoder requires the Decoder reading r to see what the parser sees
// in stream.
func checkDecoder(t *testing.T, stream string, how string, r func() io.Reader) {
	t.Helper()
	p := parse(stream)
	for _, size := range bufSizes {
		got, lastID, err := decodeTrace(r(), size)
		if err != io.EOF {
			t.Fatalf("stream %q read %s, buffer %d: error %v, want io.EOF", stream, how, size, err)
		}
		if !reflect.DeepEqual(got, p.trace) || lastID != p.lastEventID {
			t.Fatalf("stream %q read %s, buffer %d:\n decoder %+v, last event ID %q\n  parser %+v, last event ID %q",
				stream, how, size, got, lastID, p.trace, p.lastEventID)
		}
	}
}

// checkChunkings checks stream read whole, a byte at a time, with the last
// bytes arriving with io.EOF, cut in two at every byte (if it is short),
// and in random pieces.
func checkChunkings(t *testing.T, stream string, rng *rand.Rand) {
	t.Helper()
	checkDecoder(t, stream, "whole", func() io.Reader { return strings.NewReader(stream) })
	checkDecoder(t, stream, "byte by byte", func() io.Reader { return iotest.OneByteReader(strings.NewReader(stream)) })
	checkDecoder(t, stream, "with EOF", func() io.Reader { return iotest.DataErrReader(strings.NewReader(stream)) })
	if len(stream) <= 600 {
		for cut := 1; cut < len(stream); cut++ {
			how := fmt.Sprintf("cut at %d", cut)
			checkDecoder(t, stream, how, func() io.Reader { return &chunkReader{s: stream, sizes: []int{cut, len(stream)}} })
		}
	}
	for range 20 {
		sizes := make([]int, 1+rng.IntN(8))
		for i := range sizes {
			sizes[i] = 1 + rng.IntN(40)
		}
		how := fmt.Sprintf("in pieces of %v", sizes)
		checkDecoder(t, stream, how, func() io.Reader { return &chunkReader{s: stream, sizes: sizes} })
	}
}

// decoderStreams are streams beyond parseTests for the Decoder: line
// breaks of every kind where reads may split them, byte order marks, long
// lines, and fields at their edges.
var decoderStreams = []string{
	"",
	"\n",
	"\r",
	"\r\n",
	"\n\r",
	"data: x\r\r",
	"data: x\r\n\r\n",
	"data: x\n\r\ndata: y\r\n\r\n",
	"data: a\rdata: b\r\rdata: c\n\ndata: d\r\n\r\n",
	"data:\r\ndata\r\n\r\n",
	"data: x\r\r\ndata: y\r\n\n",
	"\uFEFFdata: x\n\n",
	"\uFEFF\uFEFFdata: x\n\n",
	"\uFEFF",
	"\xEF\xBBdata: x\n\n",
	"\xEFdata: x\n\n",
	"data: \uFEFFx\n\n",
	":\n",
	":ping\n: ping\n\n:\r:\r\n",
	"data: a\n:comment\ndata: b\n\n",
	"id: 1\n\nid\n\ndata: x\n\n",
	"id: 1\ndata: x\n\ndata: y\n\nid: 2\x00\ndata: z\n\nid:\ndata: w\n\n",
	"id: 3\n",
	"event\ndata: x\n\nevent:\ndata: y\n\nevent: t\n\ndata: z\n\n",
	"event: a\ndata: 1\n\nevent: a\ndata: 2\n\nevent: b\ndata: 3\n\n",
	"retry: 0\n\nretry: 007\nretry: 1.5\nretry:  1\nretry: 1 \nretry\n",
	"retry: 9223372036854775807\nretry: 9223372036854775808\nretry: 9223372036854\nretry: 9223372036855\n",
	"retry: 1000\ndata: x\nretry: 2000\n\n",
	"data:x\ndata: x\ndata:  x\ndata :x\n DATA:x\nData: x\n\n",
	"data: a:b: c\n\nid:: 1\ndata\n\n",
	"data: a\x00b\nevent: t\x00\n\n",
	"data: \xff\xfe\xc3\n\n",
	"data: x",
	"data: x\n\ndata: cut",
	"data: " + strings.Repeat("x", 40) + "\r" + strings.Repeat("y", 40) + "\r\n\r\n",
	"data: " + strings.Repeat("long ", 1000) + "\r\n\r\n: " + strings.Repeat("c", 5000) + "\rdata: after\n\n",
	"id: 7\ndata: " + strings.Repeat("x", decodeBufSize-len("data: ")) + "\r\n\r\n",
	strings.Repeat("data: x\n", 100) + "\n",
}

// corpusStreams returns streams made from the fuzz corpus under testdata:
// the streams of FuzzDecoder, and the values of FuzzRoundTrip and
// FuzzComment both on their own and as AppendEvent or AppendComment wrote
// them.
func corpusStreams(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var values []string
		var retry int64
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(line)
			if s, ok := strings.CutPrefix(line, "int64("); ok {
				if retry, err = strconv.ParseInt(strings.TrimSuffix(s, ")"), 10, 64); err != nil {
					t.Fatalf("%s: %q: %v", file, line, err)
				}
				continue
			}
			s, ok := strings.CutPrefix(line, "string(")
			if !ok {
				s, ok = strings.CutPrefix(line, "[]byte(")
			}
			if !ok {
				continue
			}
			v, err := strconv.Unquote(strings.TrimSuffix(s, ")"))
			if err != nil {
				t.Fatalf("%s: %q: %v", file, line, err)
			}
			values = append(values, v)
		}
		switch filepath.Base(filepath.Dir(file)) {
		case "FuzzDecoder":
			streams = append(streams, values[0]) // values[1] holds read sizes
			continue
		case "FuzzRoundTrip":
			e := Event{ID: values[0], Type: values[1], Data: values[2], Retry: time.Duration(retry)}
			if out, err := AppendEvent(nil, e); err == nil {
				streams = append(streams, string(out))
			}
		case "FuzzComment":
			streams = append(streams, string(AppendComment(nil, values[0])))
		}
		streams = append(streams, values...)
	}
	if len(streams) == 0 {
		t.Fatal("no fuzz corpus under testdata/fuzz")
	}
	return streams
}

func TestDecoderMatchesParser(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var streams []string
	for _, tt := range parseTests {
		streams = append(streams, tt.stream)
	}
	streams = append(streams, decoderStreams...)
	streams = append(streams, corpusStreams(t)...)
	for _, stream := range streams {
		checkChunkings(t, stream, rng)
	}
}

// FuzzDecoder checks the Decoder against the parser on any stream cut
// into reads of any sizes, and that each event it returns, encoded again,
// reads back the same.
func FuzzDecoder(f *testing.F) {
	for _, tt := range parseTests {
		f.Add([]byte(tt.stream), []byte{})
	}
	for _, s := range decoderStreams {
		// Long seeds make slow inputs to minimize; a 16-byte buffer
		// tries long lines on short ones.
		if len(s) <= 600 {
			f.Add([]byte(s), []byte{0, 3, 1})
		}
	}
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		sizes := make([]int, len(cuts))
		for i, c := range cuts {
			sizes[i] = 1 + int(c)
		}
		s := string(stream)
		checkDecoder(t, s, fmt.Sprintf("in pieces of %v", sizes), func() io.Reader { return &chunkReader{s: s, sizes: sizes} })

		d := NewDecoder(strings.NewReader(s))
		for {
			e, err := d.Next()
			if err != nil {
				break
			}
			out, err := AppendEvent(nil, e)
			if err != nil {
				// An event type with NUL reads but cannot be written.
				if !errors.Is(err, ErrInvalidField) || !strings.Contains(e.Type, "\x00") {
					t.Fatalf("AppendEvent(%+v), from %q: %v", e, s, err)
				}
				continue
			}
			back, err := NewDecoder(strings.NewReader(string(out))).Next()
			if err != nil || back != e {
				t.Fatalf("event %+v from %q encoded as %q reads back as %+v, %v", e, s, out, back, err)
			}
		}
	})
}
