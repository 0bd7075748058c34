package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// corsOrigins are the Origin headers every setting is tried with: the
// configured one, and near misses that a prefix, suffix or case-blind
// match would let through.
var corsOrigins = []string{
	"http://app.example",
	"http://evil.example",
	"https://app.example",
	"http://app.example:8080",
	"http://app.example.evil.example",
	"http://evil.example?http://app.example",
	"HTTP://APP.EXAMPLE",
	"null",
}

// corsAsk sends a request with an Origin header (and, for OPTIONS, the
// preflight headers a browser adds) and returns the answer's status and
// headers. An event stream is not read.
func corsAsk(t *testing.T, s *testServer, method, path, origin string, header http.Header, body string) (int, http.Header) {
	t.Helper()
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Origin", origin)
	if method == http.MethodOptions {
		h.Set("Access-Control-Request-Method", http.MethodGet)
		h.Set("Access-Control-Request-Headers", "authorization,last-event-id")
		if strings.HasPrefix(path, "/admin/") {
			h.Set("Access-Control-Request-Method", http.MethodPost)
			h.Set("Access-Control-Request-Headers", "authorization,content-type")
		}
	}
	if method == http.MethodGet {
		status, rh, _, err := hostileGet(s, path, h)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return status, rh
	}
	status, rh, _ := send(t, s, method, path, h, body)
	return status, rh
}

func TestCORS(t *testing.T) {
	for _, setting := range []struct {
		name    string
		args    []string
		allowed []string // "*": any
	}{
		{"default", nil, nil},
		{"one origin", []string{"--cors-origins", "http://app.example"}, []string{"http://app.example"}},
		{"two origins", []string{"--cors-origins", " https://other.example , http://app.example "}, []string{"http://app.example", "https://other.example"}},
		{"any origin", []string{"--cors-origins", "*"}, []string{"*"}},
	} {
		t.Run(setting.name, func(t *testing.T) {
			s := startServer(t, setting.args...)
			tok := s.userToken(t, "alice", time.Hour)
			bearer := http.Header{"Authorization": {"Bearer " + tok}}
			admin := http.Header{"Authorization": {"Bearer " + s.adminToken(t)}, "Content-Type": {"application/json"}}
			id := s.post(t, `{"user":"alice","data":"x"}`)[0].ID

			for _, origin := range append(slices.Clone(corsOrigins), "https://other.example") {
				allowed := slices.Contains(setting.allowed, "*") || slices.Contains(setting.allowed, origin)
				for _, c := range []struct {
					method, path string
					header       http.Header
					want         int
				}{
					{http.MethodGet, "/events?token=" + tok, nil, http.StatusOK},
					{http.MethodGet, "/events", bearer, http.StatusOK},
					{http.MethodGet, "/v1/notifications", bearer, http.StatusOK},
					{http.MethodGet, "/v1/notifications?token=" + tok, nil, http.StatusOK},
					{http.MethodOptions, "/events", nil, 0},
					{http.MethodOptions, "/v1/notifications", nil, 0},
				} {
					status, h := corsAsk(t, s, c.method, c.path, origin, c.header, "")
					what := fmt.Sprintf("%s %s from %q", c.method, c.path[:min(len(c.path), 20)], origin)
					if c.want != 0 && status != c.want || c.want == 0 && status >= 300 {
						t.Errorf("%s: status %d", what, status)
					}
					acao := h.Get("Access-Control-Allow-Origin")
					if !allowed {
						if acao != "" || h.Get("Access-Control-Allow-Credentials") != "" {
							t.Errorf("%s: Access-Control-Allow-Origin %q, Allow-Credentials %q, want none: the origin is not allowed",
								what, acao, h.Get("Access-Control-Allow-Credentials"))
						}
						continue
					}
					if acao != origin && !(acao == "*" && slices.Contains(setting.allowed, "*")) {
						t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", what, acao, origin)
					}
					if acao != "*" && !slices.ContainsFunc(h.Values("Vary"), func(v string) bool { return strings.Contains(v, "Origin") }) {
						t.Errorf("%s: Vary %q, want Origin in it", what, h.Values("Vary"))
					}
					if c.method == http.MethodOptions {
						hs := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
						if !strings.Contains(hs, "authorization") || !strings.Contains(hs, "last-event-id") ||
							!strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") {
							t.Errorf("%s: preflight allows headers %q, methods %q; want Authorization, Last-Event-ID and GET",
								what, h.Get("Access-Control-Allow-Headers"), h.Get("Access-Control-Allow-Methods"))
						}
					}
				}

				// The admin API is never cross-origin, whatever the setting.
				for _, c := range []struct{ method, path, body string }{
					{http.MethodGet, "/admin/notifications", ""},
					{http.MethodGet, fmt.Sprint("/admin/notifications/", id), ""},
					{http.MethodPost, "/admin/notifications", `{"user":"bob","data":"cors"}`},
					{http.MethodPost, "/admin/notifications/batch", `{"notifications":[{"user":"bob","data":"cors"}]}`},
					{http.MethodDelete, "/admin/notifications/999999", ""},
					{http.MethodOptions, "/admin/notifications", ""},
					{http.MethodOptions, "/admin/notifications/batch", ""},
					{http.MethodOptions, fmt.Sprint("/admin/notifications/", id), ""},
				} {
					status, h := corsAsk(t, s, c.method, c.path, origin, admin, c.body)
					for k := range h {
						if strings.HasPrefix(strings.ToLower(k), "access-control-") {
							t.Errorf("%s %s from %q: %d with %s: %q; admin endpoints are never cross-origin",
								c.method, c.path, origin, status, k, h.Values(k))
						}
					}
					if c.method == http.MethodOptions && status < 400 {
						t.Errorf("OPTIONS %s from %q: %d, want it refused", c.path, origin, status)
					}
				}
			}
		})
	}
}
