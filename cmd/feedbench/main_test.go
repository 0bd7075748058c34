package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// feeddBin is the feedd binary TestMain builds for the scenario tests.
var feeddBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "feedbench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		return 1
	}
	feeddBin = filepath.Join(dir, "feedd")
	build := exec.Command("go", "build", "-o", feeddBin, "./cmd/feedd")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/feedd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// bench runs feedbench with args against a feedd it starts, and returns
// the figures of its JSON line.
func bench(t *testing.T, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args = append(args, "--feedd", feeddBin, "--json")
	noEnv := func(string) string { return "" }
	if err := run(ctx, args, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("feedbench %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("--json printed %d lines, want 1:\n%s", len(lines), stdout.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("JSON line %q: %v", lines[0], err)
	}
	if got["scenario"] != args[0] {
		t.Errorf("scenario = %v, want %s", got["scenario"], args[0])
	}
	for _, key := range []string{"wall_s", "client_cpu_s", "server_cpu_s"} {
		if _, ok := got[key].(float64); !ok {
			t.Errorf("no %s in %s", key, lines[0])
		}
	}
	t.Logf("%s", lines[0])
	return got
}

// num returns figure key of got, failing the test if it is missing.
func num(t *testing.T, got map[string]any, key string) float64 {
	t.Helper()
	v, ok := got[key].(float64)
	if !ok {
		t.Fatalf("figure %s missing or not a number: %v", key, got[key])
	}
	return v
}

func TestPublish(t *testing.T) {
	t.Parallel()
	got := bench(t, "publish", "--concurrency", "4", "--duration", "1s")
	if num(t, got, "accepted") <= 0 || num(t, got, "accepted_per_s") <= 0 {
		t.Errorf("nothing accepted")
	}
	if num(t, got, "errors") != 0 {
		t.Errorf("errors = %v", got["errors"])
	}
	if p50, p99 := num(t, got, "latency_p50_ms"), num(t, got, "latency_p99_ms"); p50 <= 0 || p99 < p50 {
		t.Errorf("latency p50 %v, p99 %v", p50, p99)
	}
}

func TestPublishBatch(t *testing.T) {
	t.Parallel()
	got := bench(t, "publish", "--concurrency", "2", "--duration", "500ms", "--batch", "50")
	if a := num(t, got, "accepted"); a <= 0 || int(a)%50 != 0 {
		t.Errorf("accepted = %v, want a positive multiple of 50", a)
	}
}

func TestIdle(t *testing.T) {
	t.Parallel()
	got := bench(t, "idle", "--feeds", "20", "--settle", "200ms")
	if n := num(t, got, "feeds_open"); n != 20 {
		t.Errorf("feeds_open = %v, want 20", n)
	}
	if v := num(t, got, "rss_per_feed_kb"); v <= 0 {
		t.Errorf("rss_per_feed_kb = %v, want > 0", v)
	}
	if v := num(t, got, "goroutines_per_feed"); v < 1 {
		t.Errorf("goroutines_per_feed = %v, want >= 1", v)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	got := bench(t, "latency", "--feeds", "20", "--rate", "50", "--duration", "1s")
	if exp, del := num(t, got, "expected"), num(t, got, "delivered"); exp < 40 || del != exp {
		t.Errorf("delivered %v of %v expected", del, exp)
	}
	if d := num(t, got, "duplicates"); d != 0 {
		t.Errorf("duplicates = %v", d)
	}
	if p50, max := num(t, got, "latency_p50_ms"), num(t, got, "latency_max_ms"); p50 <= 0 || max < p50 {
		t.Errorf("latency p50 %v, max %v", p50, max)
	}
}

func TestBroadcast(t *testing.T) {
	t.Parallel()
	got := bench(t, "broadcast", "--feeds", "20", "--events", "3")
	if exp, del := num(t, got, "expected"), num(t, got, "delivered"); exp != 60 || del != exp {
		t.Errorf("delivered %v of %v expected, want 60", del, exp)
	}
	if d := num(t, got, "duplicates"); d != 0 {
		t.Errorf("duplicates = %v", d)
	}
	if v := num(t, got, "to_last_median_ms"); v <= 0 || v < num(t, got, "to_first_median_ms") {
		t.Errorf("to_last_median_ms = %v", v)
	}
}

func TestResume(t *testing.T) {
	t.Parallel()
	for _, fill := range []string{"batch", "sql"} {
		t.Run(fill, func(t *testing.T) {
			t.Parallel()
			got := bench(t, "resume", "--events", "2000", "--users", "5", "--samples", "5", "--fill", fill)
			if v := num(t, got, "replayed"); v != 100 {
				t.Errorf("replayed = %v, want 100", v)
			}
			if h, r := num(t, got, "headers_p50_ms"), num(t, got, "replay_p50_ms"); h <= 0 || r < h {
				t.Errorf("headers p50 %v, replay p50 %v", h, r)
			}
			if v := num(t, got, "fill_per_s"); v <= 0 {
				t.Errorf("fill_per_s = %v", v)
			}
			if v := num(t, got, "db_mb"); v <= 0 {
				t.Errorf("db_mb = %v", v)
			}
		})
	}
}

func TestRunsReportMedianMinMax(t *testing.T) {
	t.Parallel()
	got := bench(t, "publish", "--concurrency", "2", "--duration", "200ms", "--runs", "2")
	if num(t, got, "runs") != 2 {
		t.Errorf("runs = %v", got["runs"])
	}
	lo, mid, hi := num(t, got, "accepted_min"), num(t, got, "accepted"), num(t, got, "accepted_max")
	if lo > mid || mid > hi {
		t.Errorf("accepted min %v, median %v, max %v", lo, mid, hi)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "name a scenario"},
		{[]string{"nope"}, "unknown scenario"},
		{[]string{"publish"}, "--feedd PATH"},
		{[]string{"publish", "--server", "http://127.0.0.1:1"}, "--jwt-secret"},
		{[]string{"idle", "--feedd", "/nonexistent/feedd"}, "/nonexistent/feedd"},
		{[]string{"idle", "--feedd", os.Args[0], "--feeds", "100000000"}, "100000000 feeds need 100000100 open files; this process may have at most"},
		{[]string{"resume", "--server", "http://127.0.0.1:1", "--jwt-secret", strings.Repeat("k", 32), "--fill", "bad"}, "--fill"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, func(string) string { return "" }, &stdout, &stderr)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("feedbench %q: error %v, want a usage error containing %q", tc.args, err, tc.want)
		}
		if code := exitCode(err, &stderr); code != 2 {
			t.Errorf("feedbench %q: exit %d, want 2", tc.args, code)
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"help"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"publish", "idle", "latency", "broadcast", "resume"} {
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("help does not mention %s", name)
		}
	}
	err := run(context.Background(), []string{"latency", "--help"}, func(string) string { return "" }, &stdout, &stderr)
	if exitCode(err, &stderr) != 0 || !strings.Contains(stderr.String(), "-rate") {
		t.Errorf("latency --help: %v\n%s", err, stderr.String())
	}
}
