package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// echoAsk sends one request built by the test (any method, any raw path)
// and returns the status, the response headers and the body. An event
// stream is not read: it would not end.
func echoAsk(t *testing.T, s *testServer, method, rawPath string, header http.Header, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// Opaque is sent as the request target as it is (a '#' stays a '#'),
	// unless it starts with "//"; such a path is sent as it is from Path.
	u := &url.URL{Scheme: req.URL.Scheme, Host: req.URL.Host, Opaque: rawPath}
	if strings.HasPrefix(rawPath, "//") {
		u.Opaque = ""
		u.Path, u.RawQuery, _ = strings.Cut(rawPath, "?")
	}
	req.URL = u
	for k, vs := range header {
		req.Header[k] = vs
	}
	// A redirect is an answer too: its Location must not repeat the request.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%.40s %.80s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, resp.Header, nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// echoLogsAfter returns the server's log once it holds the access-log
// lines of every request answered so far: it asks for /healthz, logged
// after them, and waits for that line.
func echoLogsAfter(t *testing.T, s *testServer) string {
	t.Helper()
	s.do(t, http.MethodGet, "/healthz", "", "")
	deadline := time.Now().Add(waitLong)
	for {
		logs := s.stderr.String()
		if strings.Contains(logs, "route=/healthz") || strings.Contains(logs, `"route":"/healthz"`) {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line for /healthz:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond) // polling the log with a deadline
	}
}

// randomWord returns n random lowercase hex digits.
func randomWord(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// TestClientTextNeverEchoed sends a valid token (and an admin one) in every
// place a client can put text other than where a token belongs: the path,
// a path that looks like the demo page's #token= fragment, unknown query
// parameters (name and value), known ones with the wrong shape, JSON field
// names and values, the Last-Event-ID and Idempotency-Key headers, and the
// method. No answer (body or header) and no log line, in either log
// format, may hold any of it.
func TestClientTextNeverEchoed(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			s := startServer(t, "--log-format", format)
			user := s.userToken(t, "alice", time.Hour)
			admin := s.adminToken(t)
			secrets := []string{user, admin}
			bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
			jsonAdmin := http.Header{"Authorization": {"Bearer " + admin}, "Content-Type": {"application/json"}}
			withHeader := func(h http.Header, k, v string) http.Header {
				h = h.Clone()
				h.Set(k, v)
				return h
			}
			esc := url.QueryEscape
			type ask struct {
				method, path string
				header       http.Header
				body         string
				want         int
			}
			var asks []ask
			for _, tok := range secrets {
				asks = append(asks,
					// In the path.
					ask{"GET", "/" + tok, nil, "", 404},
					ask{"GET", "/events/" + tok, nil, "", 404},
					ask{"GET", "/#token=" + tok, nil, "", 404},
					ask{"GET", "/%23token=" + tok, nil, "", 404},
					ask{"GET", "//events?token=" + tok, nil, "", 404}, // not clean: no redirect that repeats it
					ask{"GET", "/assets/" + tok, nil, "", 404},
					ask{"DELETE", "/admin/notifications/1" + tok, bearer(admin), "", 404},
					// In the query, under names feedd does not know, or as
					// values of the wrong shape.
					ask{"GET", "/v1/notifications?zzz=" + tok, bearer(user), "", 200},
					ask{"GET", "/v1/notifications?" + tok + "=1", bearer(user), "", 200},
					ask{"GET", "/v1/notifications?" + esc("a b"+tok) + "=%zz", bearer(user), "", 200},
					ask{"GET", "/v1/notifications?after=" + tok, bearer(user), "", 400},
					ask{"GET", "/v1/notifications?limit=" + tok, bearer(user), "", 400},
					ask{"GET", "/events?token=" + user + "&last_event_id=" + tok, nil, "", 400},
					ask{"GET", "/events?token=" + user + "&lastEventId=" + tok, nil, "", 400},
					ask{"GET", "/events?token=" + user + "&types=" + tok, nil, "", 400},
					ask{"GET", "/events?token=" + user + "&types=a," + tok, nil, "", 400},
					ask{"GET", "/admin/notifications?user=" + tok, bearer(admin), "", 200},
					ask{"GET", "/admin/notifications?user=" + tok + "%00", bearer(admin), "", 400},
					// In headers.
					ask{"GET", "/events?token=" + user, http.Header{"Last-Event-Id": {tok}}, "", 400},
					ask{"GET", "/events", withHeader(bearer(user), "Last-Event-ID", tok+" x"), "", 400},
					ask{"POST", "/admin/notifications", withHeader(jsonAdmin, "Idempotency-Key", tok), `{"user":"a","data":"x"}`, 201},
					ask{"POST", "/admin/notifications", withHeader(jsonAdmin, "Idempotency-Key", tok), `{"user":"b","data":"x"}`, 422},
					ask{"POST", "/admin/notifications", withHeader(jsonAdmin, "Idempotency-Key", tok+strings.Repeat("k", 300)), `{"user":"a","data":"x"}`, 400},
					// In JSON bodies: as field names and as values where they do not belong.
					ask{"POST", "/admin/notifications", jsonAdmin, `{"user":"a","data":"x","` + tok + `":1}`, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"` + tok + `":1,"user":"a","data":"x"}`, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"USER` + tok + `":"a","data":"x"}`, 400},
					ask{"POST", "/admin/notifications/batch", jsonAdmin, `{"notifications":[{"user":"a","data":"x","` + tok + `":1}]}`, 400},
					ask{"POST", "/admin/notifications/batch", jsonAdmin, `{"notifications":{"x":1},"` + tok + `":1}`, 400},
					ask{"POST", "/admin/notifications/batch", jsonAdmin, `{"notifications":[{"users":{"a":1},"` + tok + `":1}]}`, 400},
					ask{"POST", "/admin/notifications/batch", jsonAdmin, `{"notifications":"` + tok + `"}`, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"broadcast":"` + tok + `","data":"x"}`, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"user":"a","type":"` + tok + `","data":"x"}`, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"users":["` + tok + `","b","` + tok + `"],"data":"x"}`, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"user":"` + tok + "\\u0000" + `","data":"x"}`, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"user":"a","data":` + tok + `}`, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"user":"a","data":"x"}` + tok, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"user":"a","data":1` + tok + `}`, 400},
					ask{"POST", "/admin/notifications", jsonAdmin, `{"user":"a","data":"x","broadcast":1` + strings.Repeat("0", 400) + `}`, 400},
					// As the method.
					ask{tok, "/events?token=" + user, nil, "", 405},
					ask{tok, "/admin/notifications", bearer(admin), "", 405},
					ask{tok, "/nope", nil, "", 404},
				)
			}
			for _, a := range asks {
				status, h, body := echoAsk(t, s, a.method, a.path, a.header, a.body)
				what := a.method[:min(len(a.method), 8)] + " " + a.path[:min(len(a.path), 40)]
				if status != a.want {
					t.Errorf("%s...: %d %s, want %d", what, status, body, a.want)
				}
				for _, tok := range secrets {
					if leak := hostileLeak(string(body), tok); leak != "" {
						t.Errorf("%s...: the body repeats %q: %s", what, leak, body)
					}
					for k, vs := range h {
						for _, v := range vs {
							if leak := hostileLeak(v, tok); leak != "" {
								t.Errorf("%s...: header %s repeats %q: %s", what, k, leak, v)
							}
						}
					}
				}
			}
			logs := echoLogsAfter(t, s)
			for _, tok := range secrets {
				if leak := hostileLeak(logs, tok); leak != "" {
					for line := range strings.Lines(logs) {
						if strings.Contains(line, leak) {
							t.Errorf("the %s log holds %q: %s", format, leak, line)
						}
					}
				}
			}
			if t.Failed() {
				t.Logf("log:\n%s", logs)
			}
		})
	}
}

// TestMetricsAndLogsStayBounded sends requests with made-up methods and
// random paths: /metrics keeps a fixed handful of request series and
// shows none of that text, and neither does the log.
func TestMetricsAndLogsStayBounded(t *testing.T) {
	s := startServer(t)
	var madeUp []string
	for i := range 200 {
		method := "M" + strings.ToUpper(randomWord(40))
		path := "/" + randomWord(40)
		madeUp = append(madeUp, method, path[1:])
		target := path
		if i%2 == 0 {
			target = "/events" // a known path: 405
		}
		status, _, _ := echoAsk(t, s, method, target, nil, "")
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s: %d, want 404 or 405", method, target, status)
		}
		if status, _, _ = echoAsk(t, s, http.MethodGet, path, nil, ""); status != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", path, status)
		}
	}
	families := s.scrape(t)
	series := 0
	if f := families["feedd_http_requests_total"]; f != nil {
		series = len(f.Metric)
	}
	// not found x (GET, other), method not allowed x other, and /metrics.
	if series == 0 || series > 6 {
		t.Errorf("feedd_http_requests_total has %d series after 400 made-up requests, want a few", series)
	}
	if got := value(families, "feedd_http_requests_total", map[string]string{"route": "method not allowed", "method": "other", "status": "405"}); got != 100 {
		t.Errorf(`feedd_http_requests_total{route="method not allowed",method="other"} = %v, want 100`, got)
	}
	if got := value(families, "feedd_http_requests_total", map[string]string{"route": "not found", "status": "404"}); got != 300 {
		t.Errorf(`feedd_http_requests_total{route="not found"} = %v, want 300`, got)
	}
	text := metricsText(t, s)
	logs := echoLogsAfter(t, s)
	for _, w := range madeUp {
		if strings.Contains(strings.ToLower(text), strings.ToLower(w)) {
			t.Fatalf("/metrics holds the made-up %q", w)
		}
		if strings.Contains(strings.ToLower(logs), strings.ToLower(w)) {
			t.Fatalf("the log holds the made-up %q", w)
		}
	}
}

// TestMethodNotAllowedSaysAllow checks that a 405 lists the methods the
// path takes, in its Allow header and its message.
func TestMethodNotAllowedSaysAllow(t *testing.T) {
	s := startServer(t)
	admin := http.Header{"Authorization": {"Bearer " + s.adminToken(t)}}
	for _, c := range []struct {
		method, path string
		allow        string
	}{
		{"PUT", "/events", "GET, OPTIONS"},
		{"DELETE", "/admin/notifications", "GET, POST"},
		{"GET", "/admin/notifications/batch", "POST"},
		{"PATCH", "/admin/notifications/7", "GET, DELETE"},
		{"POST", "/healthz", "GET, HEAD"},
		{"POST", "/metrics", "GET"},
		{"BREW", "/", "GET, HEAD"},
	} {
		status, h, body := echoAsk(t, s, c.method, c.path, admin, "")
		if status != http.StatusMethodNotAllowed || h.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d, Allow %q; want 405 with Allow %q", c.method, c.path, status, h.Get("Allow"), c.allow)
		}
		if !strings.Contains(string(body), c.allow) || strings.Contains(string(body), c.method) && !strings.Contains(c.allow, c.method) {
			t.Errorf("%s %s: body %s: want the allowed methods and not the one sent", c.method, c.path, body)
		}
	}
}

// TestHeaderTooLargeIsLogged sends a request whose headers are over
// --max-header-bytes, which net/http answers with 431 before any handler
// runs: it still gets an access-log line and a count, without its text.
func TestHeaderTooLargeIsLogged(t *testing.T) {
	s := startServer(t, "--max-header-bytes", "4096")
	secret := "x-secret-" + strings.Repeat("y", 16<<10)
	req, err := http.NewRequest(http.MethodGet, s.base+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 16 KiB header with --max-header-bytes 4096: %d, want 431", resp.StatusCode)
	}
	if got := value(s.scrape(t), "feedd_http_requests_total", map[string]string{"status": "431"}); got != 1 {
		t.Errorf("feedd_http_requests_total{status=431} = %v, want 1", got)
	}
	logs := s.stderr.String()
	if !strings.Contains(logs, "status=431") {
		t.Errorf("no access-log line for the 431:\n%s", logs)
	}
	if strings.Contains(logs, "x-secret-") {
		t.Error("the refused header's text reached the log")
	}
}
