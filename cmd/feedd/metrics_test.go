package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics and parses the exposition format.
func (s *testServer) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return families
}

// value sums a counter, gauge or histogram count over the series whose
// labels include want.
func value(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	f := families[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func TestMetrics(t *testing.T) {
	s := startServer(t)
	f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	s.post(t, `{"user":"alice","data":"one"}`)
	s.post(t, `{"users":["alice","bob"],"data":"two"}`)
	f.nextIDs(t, 2)
	s.do(t, http.MethodGet, "/admin/notifications/12345", s.adminToken(t), "")

	m := s.scrape(t)
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"feedd_feeds_open", nil, 1},
		{"feedd_feeds_opened_total", nil, 1},
		{"feedd_events_written_total", nil, 3},
		{"feedd_events_delivered_total", nil, 2},
		{"feedd_delivery_lag_seconds", nil, 2},
		{"feedd_tailer_poll_seconds", nil, 1},
		{"feedd_tailer_rows_per_poll", nil, 1},
		{"feedd_http_requests_total", map[string]string{"route": "/admin/notifications", "method": "POST", "status": "201"}, 2},
		{"feedd_http_requests_total", map[string]string{"route": "/admin/notifications/{id:[0-9]+}", "status": "404"}, 1},
		{"feedd_http_request_seconds", map[string]string{"route": "/admin/notifications"}, 2},
		{"go_goroutines", nil, 1},
		{"process_resident_memory_bytes", nil, 1},
	} {
		if got := value(m, c.name, c.labels); got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	if got := value(m, "feedd_events_written_total", nil); got != 3 {
		t.Errorf("feedd_events_written_total = %v, want 3", got)
	}

	// No label carries a user id or a raw path.
	for name, fam := range m {
		for _, metric := range fam.Metric {
			for _, l := range metric.Label {
				if v := l.GetValue(); strings.Contains(v, "alice") || strings.Contains(v, "bob") || strings.Contains(v, "12345") {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
			}
		}
	}

	// A feed that ends is counted by why.
	f.cancel()
	deadline := time.Now().Add(waitLong)
	for value(s.scrape(t), "feedd_feeds_closed_total", map[string]string{"reason": "client_left"}) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("feedd_feeds_closed_total{reason=\"client_left\"} never counted the closed feed")
		}
	}
	if got := value(s.scrape(t), "feedd_feeds_open", nil); got != 0 {
		t.Errorf("feedd_feeds_open = %v after the feed closed", got)
	}
	// Its access-log line, written when it ended, says how it went.
	if !regexp.MustCompile(`msg=request method=GET route=/events .* status=200 .*events=2 ended=client_left`).MatchString(s.stderr.String()) {
		t.Errorf("no access-log line for the feed with its events and end:\n%s", s.stderr)
	}
}

func TestJSONLogs(t *testing.T) {
	s := startServer(t, "--log-format", "json", "--log-level", "info")
	tok := s.userToken(t, "alice", time.Hour)
	resp, cancel := s.openRaw(t, "token="+tok, nil)
	cancel()
	resp.Body.Close()
	s.do(t, http.MethodGet, "/healthz", "", "")
	deadline := time.Now().Add(waitLong)
	for !strings.Contains(s.stderr.String(), `"route":"/healthz"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line for /healthz:\n%s", s.stderr)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(s.stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["level"] == "DEBUG" {
			t.Fatalf("debug line at --log-level info: %q", line)
		}
		if strings.Contains(line, tok) {
			t.Fatalf("log line holds the token: %q", line)
		}
	}
}
