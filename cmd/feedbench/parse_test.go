package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/sse"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 0, 7 * time.Millisecond},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 100, 7 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2), 51, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 0, 1 * time.Millisecond},
		{ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 90, 90 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 99.5, 100 * time.Millisecond},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{1, 3}, 2}, {[]float64{1, 2, 10}, 2},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPromValues(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 4013
go_goroutines_extra 7
go_gc_duration_seconds{quantile="0.5"} 1.5e-05
process_resident_memory_bytes 1.03284736e+08
process_cpu_seconds_total 0.37 1712345678000
feedd_feeds_open{shard="a b"} 5
feedd_feeds_open 2000
broken_line
process_virtual_memory_bytes NaN-ish
`
	got := promValues(text, "go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total",
		"feedd_feeds_open", "process_virtual_memory_bytes", "absent")
	want := map[string]float64{
		"go_goroutines":                 4013,
		"process_resident_memory_bytes": 103284736,
		"process_cpu_seconds_total":     0.37,
		"feedd_feeds_open":              2000,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestParseStat(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
	line := "4242 (feedd (a) b) S 1 4242 4242 0 -1 4194560 1200 0 3 0 137 25 0 0 20 0 9 0 100 0 0\n"
	got, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1620 * time.Millisecond; got != want {
		t.Errorf("parseStat = %v, want %v", got, want)
	}
	if _, err := parseStat("4242 (feedd) S 1 2"); err == nil {
		t.Error("a short line parsed")
	}
}

func TestReadEvents(t *testing.T) {
	stream := "retry: 3000\n\n" +
		"id: 1\ndata: hello\n\n" +
		": heartbeat\n\n" +
		"id: 2\nevent: news\ndata: two\r\ndata: lines\n\n" +
		"event: feed.reset\ndata: {\"newest_id\":2}\n\n" +
		"data: no id of its own\n\n" +
		"id: 3\ndata:" + strings.Repeat("x", 5000) + "\n\n" +
		"id: x7\ndata: not a log id\n\n" +
		"id: 9223372036854775808\ndata: too large\n\n" +
		"id: 4\ndata: cut"
	type ev struct {
		id   int64
		data string
	}
	var got []ev
	f := &feedConn{events: sse.NewDecoder(strings.NewReader(stream))}
	err := f.readEvents(func(id int64, data string) bool {
		got = append(got, ev{id, data})
		return true
	})
	if err != io.EOF {
		t.Errorf("error %v at the end of the stream, want io.EOF", err)
	}
	want := []ev{{1, "hello"}, {2, "two\nlines"}, {-1, `{"newest_id":2}`}, {2, "no id of its own"},
		{3, strings.Repeat("x", 5000)}, {-1, "not a log id"}, {-1, "too large"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestListenURL(t *testing.T) {
	for line, want := range map[string]string{
		"feedd listening on http://127.0.0.1:40123 (database /tmp/x/feedd.db)": "http://127.0.0.1:40123",
		"feedd listening on https://127.0.0.1:40123 (database x)":              "",
		"Demo page (user \"demo\", token valid 24h):":                          "",
	} {
		if got := listenURL(line); got != want {
			t.Errorf("listenURL(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestJSONLine(t *testing.T) {
	r1, r2 := &result{}, &result{}
	r1.add("accepted_per_s", 100, "/s")
	r1.add("errors_503", 4, "")
	r2.add("accepted_per_s", 300, "/s")
	line, err := jsonLine("publish", map[string]any{"batch": 0}, 2, summarize([]*result{r1, r2}))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	for k, v := range map[string]float64{
		"runs": 2, "accepted_per_s": 200, "accepted_per_s_min": 100, "accepted_per_s_max": 300,
		"errors_503": 2, "errors_503_min": 0, "errors_503_max": 4,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, got[k], v, line)
		}
	}
	if !strings.HasPrefix(string(line), `{"scenario":"publish","runs":2,`) {
		t.Errorf("line starts %s", line)
	}
}

// TestFillAgrees checks that the SQL fill writes the log fillUser
// describes, which the batch fill posts.
func TestFillAgrees(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "fill.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT,
		user_id TEXT, type TEXT NOT NULL, data TEXT NOT NULL, data_json INTEGER NOT NULL, created_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const n, users = 1000, 7
	if _, err := db.ExecContext(ctx, fillSQL, 1, n, users, 0); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, "SELECT id, user_id, data FROM events ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	perUser := map[string]int{}
	for rows.Next() {
		var id int
		var user sql.NullString
		var data string
		if err := rows.Scan(&id, &user, &data); err != nil {
			t.Fatal(err)
		}
		seen++
		want := ""
		if u := fillUser(id, users); u >= 0 {
			want = "r" + strconv.Itoa(u)
		}
		if user.String != want || data != "event "+strconv.Itoa(id) {
			t.Fatalf("row %d: user %q data %q; want user %q", id, user.String, data, want)
		}
		perUser[user.String]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != n || len(perUser) != users+1 {
		t.Errorf("%d rows over %d users (with broadcasts), want %d over %d", seen, len(perUser), n, users+1)
	}
}
