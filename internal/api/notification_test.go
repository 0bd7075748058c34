package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/feedd/feedd/internal/db"
)

// wantAPIError fails unless err is an apiError with status whose message
// contains every one of words.
func wantAPIError(t *testing.T, err error, status int, words ...string) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want an apiError with status %d", err, err, status)
	}
	if ae.status != status {
		t.Errorf("status %d (%q), want %d", ae.status, ae.msg, status)
	}
	for _, w := range words {
		if !strings.Contains(ae.msg, w) {
			t.Errorf("message %q does not name %q", ae.msg, w)
		}
	}
}

// userList returns a JSON array of n distinct user ids.
func userList(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("u%d", i))
	}
	return "[" + strings.Join(ids, ",") + "]"
}

func TestNotificationEvents(t *testing.T) {
	msg := func(user, data string, isJSON bool) db.NewEvent {
		return db.NewEvent{UserID: user, Type: "message", Data: data, DataJSON: isJSON}
	}
	long := strings.Repeat("x", Limits{}.withDefaults().MaxDataBytes)
	for _, tc := range []struct {
		name  string
		body  string
		want  []db.NewEvent
		words []string // when the body is rejected: what the 400 names
	}{
		{name: "user", body: `{"user":"alice","data":"hi"}`, want: []db.NewEvent{msg("alice", "hi", false)}},
		{name: "one of users", body: `{"users":["alice"],"data":"hi"}`, want: []db.NewEvent{msg("alice", "hi", false)}},
		{name: "users in order", body: `{"users":["bob","alice"],"data":"hi"}`,
			want: []db.NewEvent{msg("bob", "hi", false), msg("alice", "hi", false)}},
		{name: "broadcast", body: `{"broadcast":true,"data":"hi"}`, want: []db.NewEvent{msg("", "hi", false)}},
		{name: "user with broadcast false", body: `{"user":"alice","broadcast":false,"data":"hi"}`,
			want: []db.NewEvent{msg("alice", "hi", false)}},
		{name: "1000 users", body: `{"users":` + userList(1000) + `,"data":"hi"}`},
		{name: "type given", body: `{"user":"alice","type":"order.shipped:v2_x-y","data":"hi"}`,
			want: []db.NewEvent{{UserID: "alice", Type: "order.shipped:v2_x-y", Data: "hi"}}},
		{name: "type of 64 characters", body: `{"user":"a","type":"` + strings.Repeat("t", 64) + `","data":"x"}`,
			want: []db.NewEvent{{UserID: "a", Type: strings.Repeat("t", 64), Data: "x"}}},
		{name: "string data keeps its newlines", body: `{"user":"a","data":"one\ntwo\r\nthree\r"}`,
			want: []db.NewEvent{msg("a", "one\ntwo\r\nthree\r", false)}},
		{name: "object data is compacted", body: `{"user":"a","data":{"b": [1, 2]}}`,
			want: []db.NewEvent{msg("a", `{"b":[1,2]}`, true)}},
		{name: "number data", body: `{"user":"a","data": 1.50}`, want: []db.NewEvent{msg("a", "1.50", true)}},
		{name: "bool data", body: `{"user":"a","data":false}`, want: []db.NewEvent{msg("a", "false", true)}},
		{name: "array data", body: `{"user":"a","data":[ "x", {"y" : null} ]}`,
			want: []db.NewEvent{msg("a", `["x",{"y":null}]`, true)}},
		{name: "empty string data", body: `{"user":"a","data":""}`, want: []db.NewEvent{msg("a", "", false)}},
		{name: "string data of 64 KiB", body: `{"user":"a","data":"` + long + `"}`, want: []db.NewEvent{msg("a", long, false)}},

		{name: "broadcast false alone", body: `{"broadcast":false,"data":"x"}`, words: []string{"exactly one"}},
		{name: "user and broadcast", body: `{"user":"a","broadcast":true,"data":"x"}`, words: []string{"exactly one"}},
		{name: "user and users", body: `{"user":"a","users":["b"],"data":"x"}`, words: []string{"exactly one"}},
		{name: "no addressee", body: `{"data":"x"}`, words: []string{"exactly one"}},
		{name: "null user", body: `{"user":null,"data":"x"}`, words: []string{"exactly one"}},
		{name: "empty user", body: `{"user":"","data":"x"}`, words: []string{`"user"`}},
		{name: "duplicate user", body: `{"users":["a","b","a"],"data":"x"}`, words: []string{"users[2] repeats users[0]"}},
		{name: "empty users", body: `{"users":[],"data":"x"}`, words: []string{`"users"`, "1 to 1000"}},
		{name: "1001 users", body: `{"users":` + userList(1001) + `,"data":"x"}`, words: []string{`"users"`, "1001"}},
		{name: "one invalid user", body: `{"users":["a",""],"data":"x"}`, words: []string{`"users"[1]`}},
		{name: "type with a space", body: `{"user":"a","type":"a b","data":"x"}`, words: []string{`"type"`}},
		{name: "type with a newline", body: `{"user":"a","type":"a\nb","data":"x"}`, words: []string{`"type"`}},
		{name: "type of 65 characters", body: `{"user":"a","type":"` + strings.Repeat("t", 65) + `","data":"x"}`,
			words: []string{`"type"`, "64"}},
		{name: "empty type", body: `{"user":"a","type":"","data":"x"}`, words: []string{`"type"`}},
		{name: "non-ASCII type", body: `{"user":"a","type":"café","data":"x"}`, words: []string{`"type"`}},
		{name: "reserved type", body: `{"user":"a","type":"feed.x","data":"x"}`, words: []string{`"type"`, "feed."}},
		{name: "data missing", body: `{"user":"a"}`, words: []string{`"data"`, "required"}},
		{name: "data null", body: `{"user":"a","data":null}`, words: []string{`"data"`, "null"}},
		{name: "string data over 64 KiB", body: `{"user":"a","data":"` + long + `x"}`, words: []string{`"data"`, "65537"}},
		{name: "JSON data over 64 KiB", body: `{"user":"a","data":{"k":"` + long + `"}}`, words: []string{`"data"`, "limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n notification
			if err := json.Unmarshal([]byte(tc.body), &n); err != nil {
				t.Fatalf("decode body: %v", err)
			}
			got, err := n.events(Limits{}.withDefaults())
			if tc.words != nil {
				wantAPIError(t, err, http.StatusBadRequest, tc.words...)
				if got != nil {
					t.Errorf("rejected notification still returned %d events", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if tc.want == nil { // only the count is checked
				if len(got) != 1000 {
					t.Fatalf("%d events, want 1000", len(got))
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("events\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// User ids that JSON cannot carry as such (invalid UTF-8) are checked here
// through Go strings.
func TestNotificationEventsRejectsBadUserIDs(t *testing.T) {
	for _, tc := range []struct{ name, id string }{
		{"control character", "al\x01ice"},
		{"DEL", "alice\x7f"},
		{"256 bytes", strings.Repeat("u", 256)},
		{"invalid UTF-8", "al\xffice"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			_, err := notification{User: &id, Data: json.RawMessage(`"x"`)}.events(Limits{}.withDefaults())
			wantAPIError(t, err, http.StatusBadRequest, `"user"`)

			users := []string{"ok", id}
			_, err = notification{Users: &users, Data: json.RawMessage(`"x"`)}.events(Limits{}.withDefaults())
			wantAPIError(t, err, http.StatusBadRequest, `"users"[1]`)
		})
	}
	id := strings.Repeat("u", 255)
	if _, err := (notification{User: &id, Data: json.RawMessage(`"x"`)}).events(Limits{}.withDefaults()); err != nil {
		t.Fatalf("a 255-byte user id is rejected: %v", err)
	}
}

func TestValidateType(t *testing.T) {
	for _, tc := range []struct {
		typ string
		ok  bool
	}{
		{"message", true},
		{"A-z_0.9:x", true},
		{"feed", true},
		{"feedx.y", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"a b", false},
		{"a\nb", false},
		{"a\x00", false},
		{"a/b", false},
		{"é", false},
		{"feed.", false},
		{"feed.truncated", false},
	} {
		err := validateType(tc.typ)
		if tc.ok && err != nil {
			t.Errorf("validateType(%q) = %v, want nil", tc.typ, err)
		}
		if !tc.ok {
			wantAPIError(t, err, http.StatusBadRequest, `"type"`)
		}
	}
}

func TestPayload(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		data      string
		isJSON    bool
		words     []string
	}{
		{name: "string", raw: `"a\u00e9\n"`, data: "aé\n"},
		{name: "object", raw: ` { "b" : [ 1 , 2 ] } `, data: `{"b":[1,2]}`, isJSON: true},
		{name: "number", raw: `-0.5e3`, data: `-0.5e3`, isJSON: true},
		{name: "true", raw: `true`, data: `true`, isJSON: true},
		{name: "empty array", raw: `[]`, data: `[]`, isJSON: true},
		{name: "missing", raw: ``, words: []string{"required"}},
		{name: "null", raw: `null`, words: []string{"null"}},
		{name: "invalid JSON", raw: `{"a":}`, words: []string{"not valid JSON"}},
		{name: "string over 64 KiB", raw: `"` + strings.Repeat("é", (64<<10)/2) + `x"`, words: []string{"65537"}},
		{name: "JSON over 64 KiB", raw: `[` + strings.Repeat("1,", (64<<10)/2) + `1]`, words: []string{"65539"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, isJSON, err := payload(json.RawMessage(tc.raw), 64<<10)
			if tc.words != nil {
				wantAPIError(t, err, http.StatusBadRequest, append([]string{`"data"`}, tc.words...)...)
				return
			}
			if err != nil || data != tc.data || isJSON != tc.isJSON {
				t.Fatalf("payload(%s) = %q, %v, %v; want %q, %v, nil", tc.raw, data, isJSON, err, tc.data, tc.isJSON)
			}
		})
	}
}

func TestParseCursor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string // Last-Event-ID values
		query  string
		want   int64
		ok     bool
		bad    string // when 400: the name the message gives
	}{
		{name: "none"},
		{name: "header", header: []string{"5"}, want: 5, ok: true},
		{name: "last_event_id", query: "last_event_id=7", want: 7, ok: true},
		{name: "lastEventId", query: "lastEventId=8", want: 8, ok: true},
		{name: "zero replays all", query: "last_event_id=0", want: 0, ok: true},
		{name: "largest id", query: "last_event_id=9223372036854775807", want: 1<<63 - 1, ok: true},
		{name: "header wins over query", header: []string{"5"}, query: "last_event_id=7&lastEventId=8", want: 5, ok: true},
		{name: "empty header means none", header: []string{""}, query: "last_event_id=7", want: 7, ok: true},
		{name: "empty query means none", query: "last_event_id=&lastEventId="},
		{name: "negative", query: "last_event_id=-1", bad: "last_event_id"},
		{name: "plus sign", query: "last_event_id=%2B1", bad: "last_event_id"},
		{name: "decimal point", query: "lastEventId=1.0", bad: "lastEventId"},
		{name: "letters", header: []string{"abc"}, bad: "Last-Event-ID"},
		{name: "2^63", header: []string{"9223372036854775808"}, bad: "Last-Event-ID"},
		{name: "bad header with good query", header: []string{"x"}, query: "last_event_id=1", bad: "Last-Event-ID"},
		{name: "repeated query parameter", query: "last_event_id=1&last_event_id=2", bad: "last_event_id"},
		{name: "repeated header", header: []string{"1", "2"}, bad: "Last-Event-ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/events?"+tc.query, nil)
			for _, v := range tc.header {
				r.Header.Add("Last-Event-ID", v)
			}
			got, ok, err := parseCursor(r)
			if tc.bad != "" {
				wantAPIError(t, err, http.StatusBadRequest, tc.bad)
				return
			}
			if err != nil || got != tc.want || ok != tc.ok {
				t.Fatalf("parseCursor = %d, %v, %v; want %d, %v, nil", got, ok, err, tc.want, tc.ok)
			}
		})
	}
}

func TestParseTypes(t *testing.T) {
	names := func(n int) string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("t%d", i)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name, query string
		want        []string // nil: every type
		bad         bool
	}{
		{name: "absent", query: ""},
		{name: "empty", query: "types="},
		{name: "one", query: "types=a", want: []string{"a"}},
		{name: "two", query: "types=a,b", want: []string{"a", "b"}},
		{name: "64 names", query: "types=" + names(64), want: strings.Split(names(64), ",")},
		{name: "empty name", query: "types=a,,b", bad: true},
		{name: "trailing comma", query: "types=a,", bad: true},
		{name: "space", query: "types=a%20b", bad: true},
		{name: "65 names", query: "types=" + names(65), bad: true},
		{name: "name of 65 characters", query: "types=" + strings.Repeat("a", 65), bad: true},
		{name: "repeated", query: "types=a&types=b", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTypes(httptest.NewRequest(http.MethodGet, "/events?"+tc.query, nil))
			if tc.bad {
				wantAPIError(t, err, http.StatusBadRequest, "types")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if got != nil {
					t.Fatalf("filter %v, want none", got)
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("filter %v, want %v", got, tc.want)
			}
			for _, w := range tc.want {
				if !got[w] {
					t.Fatalf("filter %v lacks %q", got, w)
				}
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  db.Range
		bad   string // the parameter a 400 names
	}{
		{query: "", want: db.Range{Limit: defaultListLimit}},
		{query: "after=5&before=9&limit=10", want: db.Range{After: 5, Before: 9, Limit: 10}},
		{query: "after=0&limit=1", want: db.Range{Limit: 1}},
		{query: "limit=1000", want: db.Range{Limit: 1000}},
		{query: "after=&before=&limit=", want: db.Range{Limit: defaultListLimit}},
		{query: "limit=0", bad: "limit"},
		{query: "limit=1001", bad: "limit"},
		{query: "limit=-1", bad: "limit"},
		{query: "limit=ten", bad: "limit"},
		{query: "limit=1&limit=2", bad: "limit"},
		{query: "after=-1", bad: "after"},
		{query: "after=abc", bad: "after"},
		{query: "after=%2B1", bad: "after"},
		{query: "after=9223372036854775808", bad: "after"},
		{query: "before=1.5", bad: "before"},
		{query: "before=0", bad: "before"},
		{query: "limit=%2B5", bad: "limit"},
		{query: "after=1&after=2", bad: "after"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseRange(q)
			if tc.bad != "" {
				wantAPIError(t, err, http.StatusBadRequest, tc.bad)
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseRange(%q) = %+v, %v; want %+v", tc.query, got, err, tc.want)
			}
		})
	}
}

func TestSingle(t *testing.T) {
	q := url.Values{"one": {"x"}, "empty": {""}, "two": {"a", "b"}}
	for _, tc := range []struct{ name, want string }{{"one", "x"}, {"empty", ""}, {"absent", ""}} {
		if got, err := single(q, tc.name); err != nil || got != tc.want {
			t.Errorf("single(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	_, err := single(q, "two")
	wantAPIError(t, err, http.StatusBadRequest, `"two"`, "2 times")
}

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"007", 7, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"", 0, false},
		{"-1", 0, false},
		{"-0", 0, false},
		{"+1", 0, false},
		{"1.0", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"0x10", 0, false},
		{"1e3", 0, false},
		{"9223372036854775808", 0, false},
	} {
		got, err := parseID(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("parseID(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if !tc.ok && err == nil {
			t.Errorf("parseID(%q) = %d, want an error", tc.in, got)
		}
	}
}
