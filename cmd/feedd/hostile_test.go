package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileBody is one request of TestHostileAdminRequests: 201 for the
// valid ones interleaved with the hostile ones.
type hostileBody struct {
	name, path, ct, body string
	want                 int
	words                []string // the error must name each of these
}

func TestHostileAdminRequests(t *testing.T) {
	s := startServer(t)
	admin := "Bearer " + s.adminToken(t)
	const one, batch, jsonCT = "/admin/notifications", "/admin/notifications/batch", "application/json"

	users := func(n int, dup bool) string {
		list := make([]string, n)
		for i := range list {
			list[i] = strconv.Quote(fmt.Sprint("u", i))
		}
		if dup {
			list[n-1] = list[0]
		}
		return "[" + strings.Join(list, ",") + "]"
	}
	max64K := strings.Repeat("d", 64<<10)
	nested := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

	cases := []hostileBody{
		{"valid: user", one, jsonCT, `{"user":"alice","data":"hello"}`, 201, nil},
		{"malformed JSON", one, jsonCT, `{"user":"a","data":`, 400, []string{"JSON"}},
		{"truncated string", one, jsonCT, `{"user":"a","data":"x`, 400, []string{"JSON"}},
		{"trailing garbage", one, jsonCT, `{"user":"a","data":"x"} garbage`, 400, []string{"after"}},
		{"trailing object", one, jsonCT, `{"user":"a","data":"x"}{"user":"b","data":"y"}`, 400, []string{"after"}},
		{"unknown field", one, jsonCT, `{"user":"a","data":"x","priority":9}`, 400, []string{"priority"}},
		{"user as number", one, jsonCT, `{"user":42,"data":"x"}`, 400, []string{"user"}},
		{"users as string", one, jsonCT, `{"users":"alice,bob","data":"x"}`, 400, []string{"users"}},
		{"broadcast as yes", one, jsonCT, `{"broadcast":"yes","data":"x"}`, 400, []string{"broadcast"}},
		{"type as number", one, jsonCT, `{"user":"a","type":7,"data":"x"}`, 400, []string{"type"}},
		{"data missing", one, jsonCT, `{"user":"a"}`, 400, []string{"data"}},
		{"valid: multicast", one, jsonCT, `{"users":["bob","carol"],"type":"team:x","data":{"n":[1,2]}}`, 201, nil},
		{"user and broadcast", one, jsonCT, `{"user":"a","broadcast":true,"data":"x"}`, 400, []string{"exactly one"}},
		{"user and users", one, jsonCT, `{"user":"a","users":["b"],"data":"x"}`, 400, []string{"exactly one"}},
		{"no addressee", one, jsonCT, `{"data":"x"}`, 400, []string{"exactly one"}},
		{"broadcast false only", one, jsonCT, `{"broadcast":false,"data":"x"}`, 400, []string{"exactly one"}},
		{"user null", one, jsonCT, `{"user":null,"data":"x"}`, 400, []string{"exactly one"}},
		{"empty user", one, jsonCT, `{"user":"","data":"x"}`, 400, []string{"user", "empty"}},
		{"256-byte user", one, jsonCT, `{"user":"` + strings.Repeat("u", 256) + `","data":"x"}`, 400, []string{"user", "255"}},
		{"user with a control character", one, jsonCT, `{"user":"al\u0007ice","data":"x"}`, 400, []string{"user", "control"}},
		{"user with NEL (C1 control)", one, jsonCT, `{"user":"al\u0085ice","data":"x"}`, 400, []string{"user", "control"}},
		{"user with a newline", one, jsonCT, `{"user":"al\nice","data":"x"}`, 400, []string{"user", "control"}},
		{"empty users", one, jsonCT, `{"users":[],"data":"x"}`, 400, []string{"users"}},
		{"1001 users", one, jsonCT, `{"users":` + users(1001, false) + `,"data":"x"}`, 400, []string{"users", "1000"}},
		{"duplicate users", one, jsonCT, `{"users":` + users(5, true) + `,"data":"x"}`, 400, []string{"twice"}},
		{"control character in users", one, jsonCT, `{"users":["ok","b\u0000d"],"data":"x"}`, 400, []string{"users", "control"}},
		{"valid: broadcast", one, jsonCT, `{"broadcast":true,"type":"news","data":42}`, 201, nil},
		{"valid: 255-byte user", one, jsonCT, `{"user":"` + strings.Repeat("u", 255) + `","data":"long id"}`, 201, nil},
		{"type with a space", one, jsonCT, `{"user":"a","type":"a b","data":"x"}`, 400, []string{"type"}},
		{"type with a newline", one, jsonCT, `{"user":"a","type":"a\nevent: admin","data":"x"}`, 400, []string{"type"}},
		{"type with CR", one, jsonCT, `{"user":"a","type":"a\rb","data":"x"}`, 400, []string{"type"}},
		{"reserved type", one, jsonCT, `{"user":"a","type":"feed.truncated","data":"x"}`, 400, []string{"type", "reserved"}},
		{"empty type", one, jsonCT, `{"user":"a","type":"","data":"x"}`, 400, []string{"type"}},
		{"65-char type", one, jsonCT, `{"user":"a","type":"` + strings.Repeat("t", 65) + `","data":"x"}`, 400, []string{"type", "64"}},
		{"unicode type", one, jsonCT, `{"user":"a","type":"caf\u00e9","data":"x"}`, 400, []string{"type"}},
		{"null data", one, jsonCT, `{"user":"a","data":null}`, 400, []string{"data", "null"}},
		{"data over 64 KiB", one, jsonCT, `{"user":"a","data":"` + max64K + `x"}`, 400, []string{"data", "limit"}},
		{"JSON data over 64 KiB", one, jsonCT, `{"user":"a","data":{"k":"` + max64K + `"}}`, 400, []string{"data", "limit"}},
		{"escaped data over 64 KiB", one, jsonCT, `{"user":"a","data":"` + strings.Repeat(`\u00e9`, 32<<10) + `e"}`, 400, []string{"data", "limit"}},
		{"valid: data of 64 KiB", one, jsonCT, `{"user":"alice","data":"` + max64K + `"}`, 201, nil},
		{"valid: 500 nested arrays", one, jsonCT, `{"user":"alice","data":` + nested(500) + `}`, 201, nil},
		{"valid: awkward strings", one, jsonCT, `{"user":"\u2028 d\u00e9j\u00e0 vu","type":"a-b_c:d.e","data":"nul \u0000, cr \r, crlf \r\n, lf \n, end"}`, 201, nil},
		{"invalid UTF-8 in data", one, jsonCT, "{\"user\":\"a\",\"data\":\"\xff\xfe\"}", 400, []string{"UTF-8"}},
		{"invalid UTF-8 in user", one, jsonCT, "{\"user\":\"a\xc3\",\"data\":\"x\"}", 400, []string{"UTF-8"}},
		{"body over 1 MiB", one, jsonCT, `{"user":"a","data":"` + strings.Repeat("x", 1<<20) + `"}`, 413, []string{"over"}},
		{"text/plain", one, "text/plain", `{"user":"a","data":"x"}`, 415, []string{"Content-Type"}},
		{"form post (CSRF shape)", one, "application/x-www-form-urlencoded", `{"user":"a","data":"x"}`, 415, []string{"Content-Type"}},
		{"unparsable Content-Type", one, "application/json; charset", `{"user":"a","data":"x"}`, 415, []string{"Content-Type"}},
		{"valid: Content-Type with charset", one, "application/json; charset=utf-8", `{"user":"bob","data":{"ok":true}}`, 201, nil},
		{"empty body", one, jsonCT, ``, 400, []string{"empty"}},
		{"blank body", one, jsonCT, " \n\t ", 400, []string{"empty"}},
		{"array instead of object", one, jsonCT, `[{"user":"a","data":"x"}]`, 400, []string{"object"}},
		{"string instead of object", one, jsonCT, `"hello"`, 400, []string{"object"}},
		{"null body", one, jsonCT, `null`, 400, nil},

		{"valid: batch", batch, jsonCT, `{"notifications":[{"user":"alice","data":"b1"},{"broadcast":true,"data":{"b":2}}]}`, 201, nil},
		{"batch: malformed", batch, jsonCT, `{"notifications":[{"user":"a","data":"x"}`, 400, []string{"JSON"}},
		{"batch: trailing garbage", batch, jsonCT, `{"notifications":[{"user":"a","data":"x"}]}]`, 400, []string{"after"}},
		{"batch: unknown top-level field", batch, jsonCT, `{"notifications":[{"user":"a","data":"x"}],"dry_run":true}`, 400, []string{"dry_run"}},
		{"batch: list as object", batch, jsonCT, `{"notifications":{"user":"a","data":"x"}}`, 400, []string{"notifications"}},
		{"batch: list as string", batch, jsonCT, `{"notifications":"x"}`, 400, []string{"notifications"}},
		{"batch: null item", batch, jsonCT, `{"notifications":[{"user":"a","data":"x"},null]}`, 400, []string{"notifications[1]"}},
		{"batch: item user and broadcast", batch, jsonCT, `{"notifications":[{"user":"a","broadcast":true,"data":"x"}]}`, 400, []string{"notifications[0]", "exactly one"}},
		{"batch: item with wrong type", batch, jsonCT, `{"notifications":[{"user":"a","data":"x"},{"users":"b","data":"x"}]}`, 400, []string{"users"}},
		{"batch: item with data over 64 KiB", batch, jsonCT, `{"notifications":[{"user":"a","data":"x"},{"user":"a","data":"` + max64K + `x"}]}`, 400, []string{"notifications[1]", "data"}},
		{"batch: item with invalid UTF-8", batch, jsonCT, "{\"notifications\":[{\"user\":\"a\",\"data\":\"\xc0\xaf\"}]}", 400, []string{"UTF-8"}},
		{"batch: item with 1001 users", batch, jsonCT, `{"notifications":[{"users":` + users(1001, false) + `,"data":"x"}]}`, 400, []string{"notifications[0]", "1000"}},
		{"batch: body over 1 MiB", batch, jsonCT, `{"notifications":[{"user":"a","data":"` + strings.Repeat("x", 1<<20) + `"}]}`, 413, []string{"over"}},
		{"batch: wrong Content-Type", batch, "text/plain", `{"notifications":[{"user":"a","data":"x"}]}`, 415, []string{"Content-Type"}},
		{"batch: empty body", batch, jsonCT, ``, 400, []string{"empty"}},
		{"batch: array", batch, jsonCT, `[{"user":"a","data":"x"}]`, 400, []string{"object"}},
		{"batch: null", batch, jsonCT, `null`, 400, []string{"notifications"}},
		{"valid: last", one, jsonCT, `{"user":"carol","type":"end","data":"last"}`, 201, nil},
	}

	var created []apiEvent
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := send(t, s, http.MethodPost, tc.path,
				http.Header{"Authorization": {admin}, "Content-Type": {tc.ct}}, tc.body)
			if tc.want == http.StatusCreated {
				var out struct{ Events []apiEvent }
				if err := json.Unmarshal(body, &out); status != http.StatusCreated || err != nil || len(out.Events) == 0 {
					t.Fatalf("valid request: %d %.300s", status, body)
				}
				created = append(created, out.Events...)
				return
			}
			wantError(t, status, body, tc.want, tc.words...)
			if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}

	// The log holds the events of the valid requests and nothing else.
	listed := getPage(t, s, "/admin/notifications?limit=1000", s.adminToken(t)).Events
	if !slices.Equal(eventIDs(listed), eventIDs(created)) {
		t.Fatalf("the log lists %v, want exactly the events of the valid requests %v", eventIDs(listed), eventIDs(created))
	}
	for i, e := range listed {
		if c := created[i]; e.User != c.User || e.Type != c.Type || !sameJSON(t, e.Data, c.Data) {
			t.Errorf("event %d is listed as %+v, created as %+v", e.ID, e, c)
		}
	}
	hostileStillHealthy(t, s)
}

// hostileStillHealthy checks that the server answers /healthz and /readyz
// and that a feed still carries a new event.
func hostileStillHealthy(t *testing.T, s *testServer) {
	t.Helper()
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := s.do(t, http.MethodGet, path, "", ""); status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
	}
	f := s.openFeed(t, "token="+s.userToken(t, "healthy", time.Hour), nil)
	defer f.cancel()
	id := s.post(t, `{"user":"healthy","data":"still here"}`)[0].ID
	if ev := f.next(t); ev.ID != fmt.Sprint(id) || ev.Data != "still here" {
		t.Fatalf("after the hostile requests a feed got %+v, want event %d", ev, id)
	}
}

// TestHostileDeeplyNestedJSON posts data nested far deeper than any real
// notification. The body stays within the 1 MiB cap, so the answer must be
// a 4xx or a 201 within the limits, at a cost in proportion to the body.
func TestHostileDeeplyNestedJSON(t *testing.T) {
	s := startServer(t)
	admin := s.adminToken(t)
	post := func(data string) (int, []byte, uint64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		status, body := s.do(t, http.MethodPost, "/admin/notifications", admin, `{"user":"a","data":`+data+`}`)
		runtime.ReadMemStats(&after)
		return status, body, after.TotalAlloc - before.TotalAlloc
	}
	okStatus := func(status int) bool { return status == http.StatusCreated || status >= 400 && status < 500 }

	// 10000 levels is a 20 KB body: decoding it should cost a few MB at
	// most. A cost that grows with the square of the depth would turn the
	// 100000 levels below into gigabytes, so measure first.
	const depth, budget = 10000, 32 << 20
	status, body, cost := post(strings.Repeat("[", depth) + strings.Repeat("]", depth))
	if !okStatus(status) {
		t.Fatalf("%d nested arrays: %d %s, want 4xx or 201", depth, status, body)
	}
	if cost > budget {
		t.Fatalf("%d nested arrays (a %d-byte body) made the server allocate %d MiB (budget %d MiB): "+
			"the cost grows with the square of the depth, so 100000 levels (200 KB, well under the 1 MiB cap) "+
			"would take about %d GiB; not sending them",
			depth, 2*depth+20, cost>>20, budget>>20, cost*100/(1<<30))
	}
	for _, tc := range []struct{ name, data string }{
		{"100000 nested arrays", strings.Repeat("[", 100000) + strings.Repeat("]", 100000)},
		{"100000 nested objects", strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)},
		{"unclosed nesting up to the body cap", strings.Repeat("[", 1<<20-64)},
	} {
		status, body, cost := post(tc.data)
		if !okStatus(status) || cost > 8*budget {
			t.Errorf("%s: %d %.200s, allocating %d MiB; want a 4xx or 201 at a bounded cost", tc.name, status, body, cost>>20)
		}
	}
	hostileStillHealthy(t, s)
}

// hostileGet sends a GET and returns its status, headers and body. An event
// stream (which would not end) is not read but cancelled. A connection the
// server closes before answering is an error, so err is returned.
func hostileGet(s *testServer, path string, header http.Header) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, resp.Header, nil, nil
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func TestHostileFeedRequests(t *testing.T) {
	s := startServer(t)
	tok := s.userToken(t, "mallory", time.Hour)
	q := "token=" + tok + "&"
	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	with := func(h http.Header, k string, vs ...string) http.Header {
		out := h.Clone()
		if out == nil {
			out = http.Header{}
		}
		out[k] = vs
		return out
	}
	// a valid token, but longer than the 8192 bytes --max-token-bytes
	// allows: the signature check must not even be reached.
	long, err := s.signer.Mint(strings.Repeat("m", 255), time.Hour, false, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(long, ".", 3)
	overlong := parts[0] + "." + parts[1] + strings.Repeat("A", 8200-len(long)) + "." + parts[2]
	names65 := strings.TrimSuffix(strings.Repeat("t,", 65), ",")
	huge := strings.Repeat("9", 80<<10) // over the 64 KiB --max-header-bytes
	type hostileGetCase struct {
		name, path string
		header     http.Header
		want       int // 0: any 4xx
	}
	cases := []hostileGetCase{
		{"negative cursor", "/events?" + q + "last_event_id=-1", nil, 400},
		{"plus-signed cursor", "/events?" + q + "last_event_id=%2B1", nil, 400},
		{"cursor 2^63", "/events?" + q + "last_event_id=9223372036854775808", nil, 400},
		{"cursor of 20 nines", "/events?" + q + "last_event_id=99999999999999999999", nil, 400},
		{"cursor of 5000 digits", "/events?" + q + "last_event_id=" + strings.Repeat("7", 5000), nil, 400},
		{"non-numeric cursor", "/events?" + q + "last_event_id=abc", nil, 400},
		{"hex cursor", "/events?" + q + "last_event_id=0x10", nil, 400},
		{"exponent cursor", "/events?" + q + "last_event_id=1e3", nil, 400},
		{"fractional cursor", "/events?" + q + "last_event_id=1.0", nil, 400},
		{"fullwidth digit cursor", "/events?" + q + "last_event_id=%EF%BC%91", nil, 400},
		{"cursor with a space inside", "/events?" + q + "last_event_id=1%202", nil, 400},
		{"cursor with a leading space", "/events?" + q + "last_event_id=%201", nil, 400},
		{"cursor with a NUL", "/events?" + q + "last_event_id=1%00", nil, 400},
		{"cursor given twice", "/events?" + q + "last_event_id=1&last_event_id=2", nil, 400},
		{"polyfill cursor negative", "/events?" + q + "lastEventId=-5", nil, 400},
		{"polyfill cursor given twice", "/events?" + q + "lastEventId=1&lastEventId=1", nil, 400},
		{"negative Last-Event-ID", "/events", with(bearer, "Last-Event-ID", "-1"), 400},
		{"non-numeric Last-Event-ID", "/events", with(bearer, "Last-Event-ID", "1; DROP TABLE events"), 400},
		{"huge Last-Event-ID", "/events", with(bearer, "Last-Event-ID", "99999999999999999999"), 400},
		{"two Last-Event-ID headers", "/events", with(bearer, "Last-Event-ID", "1", "2"), 400},
		{"Last-Event-ID with a space inside", "/events", with(bearer, "Last-Event-ID", "1 2"), 400},
		{"types with a space", "/events?" + q + "types=a%20b", nil, 400},
		{"types of commas only", "/events?" + q + "types=,,,", nil, 400},
		{"types with an empty name", "/events?" + q + "types=a,,b", nil, 400},
		{"65 types", "/events?" + q + "types=" + names65, nil, 400},
		{"65-char type", "/events?" + q + "types=" + strings.Repeat("t", 65), nil, 400},
		{"unicode type", "/events?" + q + "types=caf%C3%A9", nil, 400},
		{"type with a newline", "/events?" + q + "types=a%0Aevent:x", nil, 400},
		{"types given twice", "/events?" + q + "types=a&types=b", nil, 400},
		{"token over 8192 bytes in the query", "/events?token=" + overlong, nil, 401},
		{"token over 8192 bytes in the header", "/events", http.Header{"Authorization": {"Bearer " + overlong}}, 401},
		{"token of garbage", "/events?token=" + strings.Repeat("%FF", 100), nil, 401},
		{"token with a NUL", "/events?token=" + tok + "%00", nil, 401},
		{"two tokens", "/events?" + q + "token=" + tok, nil, 401},
		{"two Authorization headers", "/events", with(bearer, "Authorization", "Bearer "+tok, "Bearer "+tok), 401},
		{"Bearer without a token", "/events", http.Header{"Authorization": {"Bearer"}}, 401},
		{"Basic credentials only", "/events", http.Header{"Authorization": {"Basic bWFsbG9yeTpwdw=="}}, 401},
		{"query over --max-header-bytes", "/events?" + q + "pad=" + huge, nil, 431},
		{"header over --max-header-bytes", "/events", with(bearer, "X-Pad", huge), 431},
		{"Last-Event-ID over --max-header-bytes", "/events", with(bearer, "Last-Event-ID", huge), 431},

		{"history: negative limit", "/v1/notifications?" + q + "limit=-1", nil, 400},
		{"history: limit over 1000", "/v1/notifications?" + q + "limit=1001", nil, 400},
		{"history: huge limit", "/v1/notifications?" + q + "limit=99999999999999999999", nil, 400},
		{"history: fractional limit", "/v1/notifications?" + q + "limit=1.5", nil, 400},
		{"history: non-numeric limit", "/v1/notifications?" + q + "limit=all", nil, 400},
		{"history: limit given twice", "/v1/notifications?" + q + "limit=1&limit=2", nil, 400},
		{"history: negative after", "/v1/notifications?" + q + "after=-1", nil, 400},
		{"history: after 2^63", "/v1/notifications?" + q + "after=9223372036854775808", nil, 400},
		{"history: non-numeric after", "/v1/notifications?" + q + "after=yesterday", nil, 400},
		{"history: after with spaces", "/v1/notifications?" + q + "after=%201%20", nil, 400},
		{"history: after given twice", "/v1/notifications?" + q + "after=1&after=2", nil, 400},
		{"history: before 0", "/v1/notifications?" + q + "before=0", nil, 400},
		{"history: negative before", "/v1/notifications?" + q + "before=-3", nil, 400},
		{"history: plus-signed before", "/v1/notifications?" + q + "before=%2B3", nil, 400},
		{"history: before of 20 nines", "/v1/notifications?" + q + "before=99999999999999999999", nil, 400},
		{"history: token over 8192 bytes", "/v1/notifications?token=" + overlong, nil, 401},
		{"history: query over --max-header-bytes", "/v1/notifications?" + q + "pad=" + huge, nil, 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body, err := hostileGet(s, tc.path, tc.header)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if status == http.StatusRequestHeaderFieldsTooLarge && tc.want == status {
				return // written by net/http itself, not as JSON
			}
			if status < 400 || status >= 500 || tc.want != 0 && status != tc.want {
				t.Fatalf("status %d (%.200s), want %d", status, body, tc.want)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("answer %d %.200q is not a JSON error (%v)", status, body, err)
			}
			if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}

	// An empty cursor is no cursor (internal/feed/events.go parseCursor):
	// the feed opens live only. Either that or a 400 would keep to SPEC 3;
	// what must not happen is a 500 or a replay.
	for _, c := range []struct {
		query  string
		header http.Header
	}{{q + "last_event_id=", nil}, {q + "lastEventId=", nil}, {"", with(bearer, "Last-Event-ID", "")}} {
		status, _, body, err := hostileGet(s, "/events?"+c.query, c.header)
		if err != nil || status != http.StatusOK && status != http.StatusBadRequest {
			t.Errorf("empty cursor (%s %v): %d %.200s %v, want 200 (live only) or 400", c.query, c.header, status, body, err)
		}
	}
	hostileStillHealthy(t, s)
}

// hostileDial opens a raw TCP connection to s.
func hostileDial(t *testing.T, s *testServer) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.base, "http://"), waitLong)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// hostileClosed waits until the server closes conn, reading and discarding
// whatever it sends first, and returns what it sent. It fails the test if
// the connection is still open after wait.
func hostileClosed(t *testing.T, conn net.Conn, wait time.Duration, what string) []byte {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open for %s (it sent %q)", what, wait, got)
	}
	return got // io.EOF or a reset: closed
}

func TestAbusiveStalledClientsDoNotHoldUpOthers(t *testing.T) {
	const headerTimeout = time.Second
	s := startServer(t, "--read-header-timeout", headerTimeout.String())
	tok := s.userToken(t, "patient", time.Hour)

	halfLine := hostileDial(t, s)
	fmt.Fprintf(halfLine, "GET /events?token=%s", tok[:20])
	halfHeaders := hostileDial(t, s)
	fmt.Fprintf(halfHeaders, "GET /v1/notifications HTTP/1.1\r\nHost: feedd\r\nAuthoriz")
	// A slowloris: a header trickled one byte every 20ms would take 10s
	// to finish; --read-header-timeout is a deadline for all of it.
	trickle := hostileDial(t, s)
	slow := "GET /healthz HTTP/1.1\r\nHost: feedd\r\nX-Slow: " + strings.Repeat("z", 500) + "\r\n\r\n"
	var sent int
	trickleDone := make(chan struct{})
	stopTrickle := make(chan struct{})
	go func() {
		defer close(trickleDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for ; sent < len(slow); sent++ {
			select {
			case <-stopTrickle:
				return
			case <-tick.C:
			}
			if _, err := trickle.Write([]byte{slow[sent]}); err != nil {
				return
			}
		}
	}()

	// Meanwhile everyone else is served.
	start := time.Now()
	f := s.openFeed(t, "token="+tok, nil)
	id := s.post(t, `{"user":"patient","data":"served"}`)[0].ID
	if got := f.nextIDs(t, 1); got[0] != id {
		t.Fatalf("feed got %v, want %d", got, id)
	}
	if status, body := s.do(t, http.MethodGet, "/v1/notifications", tok, ""); status != http.StatusOK {
		t.Fatalf("history while clients stall: %d %s", status, body)
	}
	t.Logf("other requests served in %s while three clients stalled", time.Since(start))

	// And the server hangs up on the stalled clients (net/http may first
	// answer 400 to an incomplete request).
	for _, c := range []struct {
		conn net.Conn
		what string
	}{{halfLine, "half a request line"}, {halfHeaders, "half the headers"}, {trickle, "a trickled header"}} {
		if got := hostileClosed(t, c.conn, waitLong, c.what); len(got) != 0 && !strings.HasPrefix(string(got), "HTTP/1.1 4") {
			t.Errorf("%s: the server answered %q", c.what, got)
		}
	}
	close(stopTrickle)
	<-trickleDone
	if sent >= len(slow) {
		t.Fatalf("the trickled request was sent whole (%d bytes over %s) before the server hung up", sent, time.Since(start))
	}
	hostileStillHealthy(t, s)
}

// A client that declares a body and never sends it must not hold a
// connection (and a goroutine) for as long as it likes, least of all
// without a token: net/http reads the unread body (up to 256 KiB) before
// it writes any answer, so --read-timeout must cut the wait short.
func TestAbusiveStalledBodyIsCutOff(t *testing.T) {
	s := startServer(t, "--read-header-timeout", "500ms", "--read-timeout", "1s")
	const wait = 3 * time.Second
	var wg sync.WaitGroup
	for _, req := range []string{"POST /admin/notifications", "GET /events", "GET /healthz"} {
		conn := hostileDial(t, s)
		wg.Go(func() {
			fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: feedd\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user\":", req)
			conn.SetReadDeadline(time.Now().Add(wait))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				resp.Body.Close()
				return // answered without the body
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				t.Errorf("%s with Content-Length: 1000 and 8 bytes of body sent, no token: no answer, connection still open after %s", req, wait)
			}
		})
	}
	wg.Wait()
}

func TestAbusiveConnectionStormLeavesNoGoroutines(t *testing.T) {
	s := startServer(t)
	const n = 200
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = s.userToken(t, fmt.Sprint("storm", i), time.Hour)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	http.DefaultClient.CloseIdleConnections()

	baseline := hostileSettledGoroutines()

	// 200 feeds opened at once, each until the server has sent its retry
	// field (so it is registered), then all dropped at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var opened, dropped sync.WaitGroup
	errs := make(chan error, n)
	opened.Add(n)
	for i := range n {
		dropped.Go(func() {
			ok := false
			defer func() {
				if !ok {
					opened.Done()
				}
			}()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/events?token="+tokens[i], nil)
			if err != nil {
				errs <- err
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("feed %d: status %d", i, resp.StatusCode)
				return
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if !strings.HasPrefix(line, "retry:") {
				errs <- fmt.Errorf("feed %d: first line %q (%v)", i, line, err)
				return
			}
			ok = true
			opened.Done()
			<-ctx.Done()
		})
	}
	opened.Wait()
	cancel()
	dropped.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// 200 connections opened and closed without a request.
	conns := make([]net.Conn, 0, n)
	for range n {
		conns = append(conns, hostileDial(t, s))
	}
	for _, c := range conns {
		c.Close()
	}
	tr.CloseIdleConnections()

	deadline := time.Now().Add(waitLong)
	for {
		now := runtime.NumGoroutine()
		if now <= baseline+5 {
			break
		}
		if time.Now().After(deadline) {
			var dump strings.Builder
			pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Fatalf("%d goroutines %s after the storm, %d before it:\n%s", now, waitLong, baseline, dump.String())
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	hostileStillHealthy(t, s)
}

// hostileSettledGoroutines returns the goroutine count once it has stopped
// falling (goroutines of earlier tests' connections may still be ending).
func hostileSettledGoroutines() int {
	n := runtime.NumGoroutine()
	deadline := time.Now().Add(2 * time.Second)
	for stable := 0; stable < 10 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // polling with a deadline
		if m := runtime.NumGoroutine(); m < n {
			n, stable = m, 0
		} else {
			stable++
		}
	}
	return n
}

func TestTokensNeverLeak(t *testing.T) {
	s := startServer(t)
	user := s.userToken(t, "alice", time.Hour)
	admin := s.adminToken(t)
	sig := user[strings.LastIndex(user, ".")+1:]
	badSig := user[:strings.LastIndex(user, ".")+1] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, sig)
	expired, err := s.signer.Mint("alice", time.Minute, false, "", "", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	malformed := b64([]byte(`{"alg":"HS256","typ":"JWT"}`)) + ".!!!" + sig + "." + sig
	badAlg := b64([]byte(`{"alg":"HS256`+sig[:30]+`","typ":"JWT"}`)) + "." + strings.Split(user, ".")[1] + "." + sig
	secrets := []string{user, admin, badSig, expired, malformed, badAlg}

	// Requests that carry a token in the query string, and the status they get.
	f := s.openFeed(t, "token="+user, nil)
	id := s.post(t, `{"user":"alice","data":"x"}`)[0].ID
	if got := f.nextIDs(t, 1); got[0] != id {
		t.Fatalf("feed got %v, want %d", got, id)
	}
	f.cancel()
	for _, c := range []struct {
		query string
		want  int
	}{
		{"/v1/notifications?token=" + user, 200},
		{"/events?token=" + badSig, 401},
		{"/events?token=" + expired + "&last_event_id=0", 401},
		{"/v1/notifications?token=" + malformed, 401},
		{"/events?token=" + badAlg, 401},
		{"/admin/notifications?token=" + admin, 401},
		{"/admin/notifications?limit=5&token=" + admin + "&user=alice", 401},
		{"/v1/notifications?%74oken=" + user, 200},                   // an escaped name is still "token"
		{"/v1/notifications?token=" + user + "&token=" + admin, 401}, // two tokens
		{"/v1/notifications?token=" + user + "&bad=%zz", 200},        // unparsable for the log
		{"/v1/notifications?token=" + user + ";x=1", 401},            // semicolon: no token for Go
		{"/nope?token=" + user, 404},                                 // unknown route
		{"/admin/notifications/1?token=" + admin, 401},
	} {
		status, _, body, err := hostileGet(s, c.query, nil)
		if err != nil || status != c.want {
			t.Errorf("GET %.60s...: %d %s %v, want %d", c.query, status, body, err, c.want)
		}
	}
	// The access log line of the feed is written when the feed ends.
	s.stderr.WaitFor(t, "access log line for the feed", nil, hostileFeedLogged)
	logs := s.stderr.String()
	if !strings.Contains(logs, "REDACTED") {
		t.Errorf("no redacted token in the access log:\n%s", logs)
	}
	for _, tok := range secrets {
		if leak := hostileLeak(logs, tok); leak != "" {
			var lines []string
			for line := range strings.Lines(logs) {
				if strings.Contains(line, leak) {
					lines = append(lines, line)
				}
			}
			t.Errorf("the log holds %q of token %.30s... in:\n%s", leak, tok, strings.Join(lines, ""))
		}
	}

	// Error answers never echo a token, in their body or challenge.
	for _, tok := range secrets[2:] {
		for _, how := range []string{"query", "header"} {
			path, header := "/events?token="+hostileEscape(tok), http.Header(nil)
			if how == "header" {
				path, header = "/v1/notifications", http.Header{"Authorization": {"Bearer " + tok}}
			}
			status, h, body, err := hostileGet(s, path, header)
			if err != nil || status != http.StatusUnauthorized {
				t.Errorf("token %.30s... in the %s: %d %s %v, want 401", tok, how, status, body, err)
			}
			for _, where := range []string{string(body), h.Get("WWW-Authenticate")} {
				if leak := hostileLeak(where, tok); leak != "" {
					t.Errorf("401 for a token in the %s echoes %q: %s", how, leak, where)
				}
			}
		}
	}
}

// hostileEscape escapes a token for a query string (a malformed one may hold '!').
func hostileEscape(tok string) string {
	return strings.NewReplacer("!", "%21", "+", "%2B", "/", "%2F", "=", "%3D").Replace(tok)
}

// hostileLeak returns the token, or a 20-character piece of its signature
// (its last part), if text holds it; "" if not.
func hostileLeak(text, tok string) string {
	if strings.Contains(text, tok) {
		return tok
	}
	sig := tok[strings.LastIndex(tok, ".")+1:]
	for i := 0; i+20 <= len(sig); i++ {
		if strings.Contains(text, sig[i:i+20]) {
			return sig[i : i+20]
		}
	}
	return ""
}

// hostileFeedLogged reports whether logs hold the access log line of a
// feed that was answered 200.
func hostileFeedLogged(logs string) bool {
	for line := range strings.Lines(logs) {
		if strings.Contains(line, "msg=request") && strings.Contains(line, "route=/events") && strings.Contains(line, "status=200") {
			return true
		}
	}
	return false
}
