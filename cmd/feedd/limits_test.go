package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLimitsAreSettings(t *testing.T) {
	s := startServer(t,
		"--max-feeds", "2",
		"--max-body-bytes", "2048",
		"--max-data-bytes", "100",
		"--max-users-per-request", "3",
		"--max-token-bytes", "300",
		"--max-header-bytes", "4096",
	)
	admin := s.adminToken(t)
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"data at the limit", fmt.Sprintf(`{"user":"a","data":"%s"}`, strings.Repeat("x", 100)), 201},
		{"data over the limit", fmt.Sprintf(`{"user":"a","data":"%s"}`, strings.Repeat("x", 101)), 400},
		{"users at the limit", `{"users":["a","b","c"],"data":1}`, 201},
		{"users over the limit", `{"users":["a","b","c","d"],"data":1}`, 400},
		{"body over the limit", fmt.Sprintf(`{"user":"a","data":"x","type":"%s"}`, strings.Repeat(" ", 2048)), 413},
	} {
		if status, body := s.do(t, http.MethodPost, "/admin/notifications", admin, tc.body); status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
	}

	long, err := s.signer.Mint(strings.Repeat("u", 255), time.Hour, false, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, cancel := s.openRaw(t, "token="+long, nil)
	cancel()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token of %d bytes over --max-token-bytes 300: %d, want 401", len(long), resp.StatusCode)
	}
	resp, cancel = s.openRaw(t, "token="+s.userToken(t, "a", time.Hour)+"&pad="+strings.Repeat("p", 9000), nil)
	cancel()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("request line over --max-header-bytes: %d, want 431", resp.StatusCode)
	}

	s.openFeed(t, "token="+s.userToken(t, "a", time.Hour), nil)
	s.openFeed(t, "token="+s.userToken(t, "b", time.Hour), nil)
	resp, cancel = s.openRaw(t, "token="+s.userToken(t, "c", time.Hour), nil)
	cancel()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("feed over --max-feeds: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
