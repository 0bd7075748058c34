package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// page is a listing as /admin/notifications and /v1/notifications answer it.
type page struct {
	Events     []apiEvent `json:"events"`
	HasMore    bool       `json:"has_more"`
	NextAfter  int64      `json:"next_after"`
	NextBefore int64      `json:"next_before"`
}

// getPage GETs a listing and fails the test unless it answers 200.
func getPage(t *testing.T, s *testServer, path, token string) page {
	t.Helper()
	status, body := s.do(t, http.MethodGet, path, token, "")
	var p page
	if err := json.Unmarshal(body, &p); status != http.StatusOK || err != nil {
		t.Fatalf("GET %s: %d %s (%v)", path, status, body, err)
	}
	return p
}

// wantError fails unless the answer is status with a JSON {"error": ...}
// whose message contains each of words.
func wantError(t *testing.T, status int, body []byte, want int, words ...string) {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("answer %d %q is not a JSON error (%v)", status, body, err)
	}
	if status != want {
		t.Errorf("status %d (%s), want %d", status, e.Error, want)
	}
	for _, w := range words {
		if !strings.Contains(e.Error, w) {
			t.Errorf("error %q does not name %q", e.Error, w)
		}
	}
}

func eventIDs(evs []apiEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// logIDs returns the ids of every event in the log.
func logIDs(t *testing.T, s *testServer) []int64 {
	t.Helper()
	return eventIDs(getPage(t, s, "/admin/notifications?limit=1000", s.adminToken(t)).Events)
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestPostNotificationAnswersCreatedEvents(t *testing.T) {
	s := startServer(t)
	admin := s.adminToken(t)
	var last int64
	for _, tc := range []struct {
		name, body string
		users      []string // "" for a broadcast
		typ, data  string
	}{
		{"string data", `{"user":"alice","data":"hi\nthere"}`, []string{"alice"}, "message", `"hi\nthere"`},
		{"object data", `{"user":"alice","type":"t.x","data":{"b": [1, 2]}}`, []string{"alice"}, "t.x", `{"b":[1,2]}`},
		{"number broadcast", `{"broadcast":true,"data":42}`, []string{""}, "message", `42`},
		{"bool data", `{"user":"bob","data":true}`, []string{"bob"}, "message", `true`},
		{"array data to users", `{"users":["alice","bob"],"data":["a",1]}`, []string{"alice", "bob"}, "message", `["a",1]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.do(t, http.MethodPost, "/admin/notifications", admin, tc.body)
			var out struct{ Events []json.RawMessage }
			if err := json.Unmarshal(body, &out); status != http.StatusCreated || err != nil {
				t.Fatalf("POST: %d %s", status, body)
			}
			if len(out.Events) != len(tc.users) {
				t.Fatalf("%d events, want %d: %s", len(out.Events), len(tc.users), body)
			}
			for i, raw := range out.Events {
				var e apiEvent
				var fields map[string]json.RawMessage
				if err := json.Unmarshal(raw, &e); err != nil {
					t.Fatal(err)
				}
				json.Unmarshal(raw, &fields)
				if _, has := fields["user"]; has == (tc.users[i] == "") {
					t.Errorf("event %s: \"user\" present = %v for user %q", raw, has, tc.users[i])
				}
				if e.ID <= last || e.User != tc.users[i] || e.Broadcast != (tc.users[i] == "") || e.Type != tc.typ {
					t.Errorf("event %s, want a new id, user %q, type %q", raw, tc.users[i], tc.typ)
				}
				last = e.ID
				if !sameJSON(t, e.Data, []byte(tc.data)) {
					t.Errorf("data %s, want %s as posted", e.Data, tc.data)
				}
				if at, err := time.Parse(time.RFC3339, e.CreatedAt); err != nil || time.Since(at) > time.Minute {
					t.Errorf("created_at %q is not a recent RFC 3339 time (%v)", e.CreatedAt, err)
				}
				status, got := s.do(t, http.MethodGet, fmt.Sprint("/admin/notifications/", e.ID), admin, "")
				if status != http.StatusOK || !sameJSON(t, got, raw) {
					t.Errorf("GET the event: %d %s, want %s", status, got, raw)
				}
			}
		})
	}
}

func TestBatchIsAllOrNothing(t *testing.T) {
	s := startServer(t)
	admin := s.adminToken(t)
	status, body := s.do(t, http.MethodPost, "/admin/notifications/batch", admin, `{"notifications":[
		{"user":"a","data":"1"}, {"users":["b","c"],"type":"t","data":{"n":2}}, {"broadcast":true,"data":3}, {"user":"a","data":"4"}]}`)
	var out struct{ Events []apiEvent }
	if err := json.Unmarshal(body, &out); status != http.StatusCreated || err != nil {
		t.Fatalf("batch: %d %s", status, body)
	}
	var users []string
	for _, e := range out.Events {
		users = append(users, e.User)
	}
	if !slices.Equal(users, []string{"a", "b", "c", "", "a"}) || !slices.Equal(logIDs(t, s), eventIDs(out.Events)) {
		t.Fatalf("batch created %+v, want one event per row (a, b, c, broadcast, a), all in the log", out.Events)
	}

	before := logIDs(t, s)
	many := strings.Repeat(`{"user":"a","data":"x"},`, 1000) + `{"user":"a","data":"x"}`
	for _, tc := range []struct {
		name, body string
		words      []string
	}{
		{"bad third item", `{"notifications":[{"user":"a","data":"1"},{"broadcast":true,"data":2},{"user":"a","type":"feed.x","data":3}]}`,
			[]string{"notifications[2]", "type"}},
		{"bad multicast item", `{"notifications":[{"user":"a","data":"1"},{"users":["b","b"],"data":2}]}`, []string{"notifications[1]"}},
		{"empty batch", `{"notifications":[]}`, []string{"notifications"}},
		{"no list", `{}`, []string{"notifications"}},
		{"null list", `{"notifications":null}`, []string{"notifications"}},
		{"1001 items", `{"notifications":[` + many + `]}`, []string{"1000"}},
		{"unknown field in an item", `{"notifications":[{"user":"a","data":"x","colour":1}]}`, []string{"colour"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.do(t, http.MethodPost, "/admin/notifications/batch", admin, tc.body)
			wantError(t, status, body, http.StatusBadRequest, tc.words...)
			if after := logIDs(t, s); !slices.Equal(after, before) {
				t.Fatalf("a rejected batch changed the log from %v to %v", before, after)
			}
		})
	}
}

func TestAdminListPaging(t *testing.T) {
	s := startServer(t)
	admin := s.adminToken(t)
	var all, alices []int64
	for _, body := range []string{`{"user":"alice","data":"1"}`, `{"user":"bob","data":"2"}`, `{"broadcast":true,"data":"3"}`,
		`{"user":"alice","data":"4"}`, `{"users":["bob","alice"],"data":"5"}`, `{"broadcast":true,"data":"6"}`} {
		for _, e := range s.post(t, body) {
			all = append(all, e.ID)
			if e.User == "alice" {
				alices = append(alices, e.ID)
			}
		}
	}
	if p := getPage(t, s, "/admin/notifications", admin); !slices.Equal(eventIDs(p.Events), all) || p.HasMore {
		t.Fatalf("whole log %v (has_more %v), want %v oldest first", eventIDs(p.Events), p.HasMore, all)
	}
	if p := getPage(t, s, "/admin/notifications?user=alice", admin); !slices.Equal(eventIDs(p.Events), alices) {
		t.Fatalf("user=alice lists %v, want only her events %v", eventIDs(p.Events), alices)
	}
	for _, tc := range []struct {
		query string
		want  []int64
	}{{"limit=2", all}, {"limit=1&user=alice", alices}, {"limit=3", all}} {
		t.Run("walk "+tc.query, func(t *testing.T) {
			var got []int64
			after := int64(0)
			for range len(tc.want) + 1 {
				p := getPage(t, s, fmt.Sprintf("/admin/notifications?%s&after=%d", tc.query, after), admin)
				got = append(got, eventIDs(p.Events)...)
				if !p.HasMore {
					break
				}
				if p.NextAfter != got[len(got)-1] {
					t.Fatalf("next_after %d, want the last id of the page %d", p.NextAfter, got[len(got)-1])
				}
				after = p.NextAfter
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("paging walked %v, want %v once each", got, tc.want)
			}
		})
	}
	for _, q := range []string{"limit=0", "limit=1001", "after=-1", "after=abc", "before=x", "limit=1&limit=2", "user=%01"} {
		status, body := s.do(t, http.MethodGet, "/admin/notifications?"+q, admin, "")
		wantError(t, status, body, http.StatusBadRequest)
	}
}

func TestAdminGetAndDelete(t *testing.T) {
	s := startServer(t)
	admin := s.adminToken(t)
	a := s.post(t, `{"user":"alice","data":"a"}`)[0].ID
	b := s.post(t, `{"user":"alice","type":"x","data":{"k":"b"}}`)[0]
	c := s.post(t, `{"user":"alice","data":"c"}`)[0].ID
	path := fmt.Sprint("/admin/notifications/", b.ID)

	status, body := s.do(t, http.MethodGet, path, admin, "")
	var got apiEvent
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil ||
		got.ID != b.ID || got.User != "alice" || got.Type != "x" || !sameJSON(t, got.Data, []byte(`{"k":"b"}`)) {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	for _, p := range []string{"/admin/notifications/999999", "/admin/notifications/0", "/admin/notifications/99999999999999999999"} {
		status, body := s.do(t, http.MethodGet, p, admin, "")
		wantError(t, status, body, http.StatusNotFound)
	}
	if status, body := s.do(t, http.MethodDelete, path, admin, ""); status != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("DELETE: %d %q, want 204 without a body", status, body)
	}
	status, body = s.do(t, http.MethodGet, path, admin, "")
	wantError(t, status, body, http.StatusNotFound)
	status, body = s.do(t, http.MethodDelete, path, admin, "")
	wantError(t, status, body, http.StatusNotFound)

	f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour)+"&last_event_id=0", nil)
	if ids := f.nextIDs(t, 2); !slices.Equal(ids, []int64{a, c}) {
		t.Fatalf("replay from 0 sent %v, want %v without the deleted %d", ids, []int64{a, c}, b.ID)
	}
	marker := s.post(t, `{"user":"alice","data":"marker"}`)[0].ID
	if ids := f.nextIDs(t, 1); ids[0] != marker {
		t.Fatalf("after the replay the feed sent %d, want the marker %d", ids[0], marker)
	}
}

func TestUserHistory(t *testing.T) {
	s := startServer(t)
	var alice, bob []int64 // what each may see: own and broadcast
	for _, body := range []string{`{"user":"alice","data":"1"}`, `{"user":"bob","data":"2"}`, `{"broadcast":true,"data":"3"}`,
		`{"user":"alice","data":"4"}`, `{"user":"bob","data":"5"}`, `{"user":"alice","data":"6"}`, `{"broadcast":true,"data":"7"}`} {
		e := s.post(t, body)[0]
		if e.User != "bob" {
			alice = append(alice, e.ID)
		}
		if e.User != "alice" {
			bob = append(bob, e.ID)
		}
	}
	tok := s.userToken(t, "alice", time.Hour)
	if p := getPage(t, s, "/v1/notifications", tok); !slices.Equal(eventIDs(p.Events), alice) || p.HasMore {
		t.Fatalf("alice's history %v (has_more %v), want %v", eventIDs(p.Events), p.HasMore, alice)
	}
	if p := getPage(t, s, "/v1/notifications?token="+tok, ""); !slices.Equal(eventIDs(p.Events), alice) {
		t.Fatalf("with ?token= alice's history is %v, want %v", eventIDs(p.Events), alice)
	}
	if p := getPage(t, s, "/v1/notifications", s.userToken(t, "bob", time.Hour)); !slices.Equal(eventIDs(p.Events), bob) {
		t.Fatalf("bob's history %v, want %v", eventIDs(p.Events), bob)
	}

	// Without after=: the newest page, then older ones through before=.
	p := getPage(t, s, "/v1/notifications?limit=2", tok)
	if !slices.Equal(eventIDs(p.Events), alice[3:]) || !p.HasMore || p.NextBefore != alice[3] {
		t.Fatalf("limit=2 gave %+v, want the newest %v oldest first, has_more, next_before %d", p, alice[3:], alice[3])
	}
	var back []int64
	for p.HasMore {
		back = append(eventIDs(p.Events), back...)
		p = getPage(t, s, fmt.Sprintf("/v1/notifications?limit=2&before=%d", p.NextBefore), tok)
	}
	if back = append(eventIDs(p.Events), back...); !slices.Equal(back, alice) {
		t.Fatalf("walking back with before= found %v, want %v", back, alice)
	}
	// With after=: pages forward.
	var fwd []int64
	for after, more := int64(0), true; more; {
		p := getPage(t, s, fmt.Sprintf("/v1/notifications?limit=2&after=%d", after), tok)
		fwd, more, after = append(fwd, eventIDs(p.Events)...), p.HasMore, p.NextAfter
	}
	if !slices.Equal(fwd, alice) {
		t.Fatalf("walking forward with after= found %v, want %v", fwd, alice)
	}
	if p := getPage(t, s, fmt.Sprintf("/v1/notifications?after=%d&before=%d", alice[0], alice[3]), tok); !slices.Equal(eventIDs(p.Events), alice[1:3]) {
		t.Fatalf("after=%d&before=%d gave %v, want %v", alice[0], alice[3], eventIDs(p.Events), alice[1:3])
	}
	status, body := s.do(t, http.MethodGet, "/v1/notifications?limit=0", tok, "")
	wantError(t, status, body, http.StatusBadRequest, "limit")
}

func TestBadRequestsGetJSONErrors(t *testing.T) {
	s := startServer(t)
	admin := "Bearer " + s.adminToken(t)
	jsonCT := []string{"application/json"}
	huge := `{"user":"a","data":"` + strings.Repeat("x", 1<<20) + `"}`
	for _, tc := range []struct {
		name, method, path string
		ct                 []string
		body               string
		want               int
	}{
		{"malformed JSON", "POST", "/admin/notifications", jsonCT, `{"user":`, 400},
		{"unknown field", "POST", "/admin/notifications", jsonCT, `{"user":"a","data":"x","colour":"red"}`, 400},
		{"trailing garbage", "POST", "/admin/notifications", jsonCT, `{"user":"a","data":"x"} x`, 400},
		{"second object", "POST", "/admin/notifications", jsonCT, `{"user":"a","data":"x"}{}`, 400},
		{"wrong type", "POST", "/admin/notifications", jsonCT, `{"user":5,"data":"x"}`, 400},
		{"not an object", "POST", "/admin/notifications", jsonCT, `["x"]`, 400},
		{"empty body", "POST", "/admin/notifications", jsonCT, ``, 400},
		{"wrong Content-Type", "POST", "/admin/notifications", []string{"text/plain"}, `{"user":"a","data":"x"}`, 415},
		{"body over 1 MiB", "POST", "/admin/notifications", jsonCT, huge, 413},
		{"batch body over 1 MiB", "POST", "/admin/notifications/batch", jsonCT, `{"notifications":[` + huge + `]}`, 413},
		{"unknown route", "GET", "/nope", nil, "", 404},
		{"unknown admin route", "GET", "/admin/nope", nil, "", 404},
		{"id that is not a number", "GET", "/admin/notifications/abc", nil, "", 404},
		{"PUT on notifications", "PUT", "/admin/notifications", jsonCT, `{"user":"a","data":"x"}`, 405},
		{"DELETE on the list", "DELETE", "/admin/notifications", nil, "", 405},
		{"POST on history", "POST", "/v1/notifications", jsonCT, `{}`, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := send(t, s, tc.method, tc.path, http.Header{"Authorization": {admin}, "Content-Type": tc.ct}, tc.body)
			wantError(t, status, body, tc.want)
			if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}
	if ids := logIDs(t, s); len(ids) != 0 {
		t.Fatalf("bad requests created events %v", ids)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s := startServer(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		status, body := s.do(t, http.MethodGet, path, "", "")
		var v map[string]any
		if err := json.Unmarshal(body, &v); status != http.StatusOK || err != nil {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}
}

// encoding/json matches keys case-insensitively and lets a repeated key
// overwrite the first; SPEC 4 answers unknown fields with 400, and a body
// that names two addressees must not pick one silently.
func TestFieldNamesMustMatchExactlyOnce(t *testing.T) {
	s := startServer(t)
	admin := s.adminToken(t)
	for _, tc := range []struct{ name, body string }{
		{"field in capitals", `{"USER":"alice","data":"x"}`},
		{"capitalised data", `{"user":"alice","Data":"x"}`},
		{"user and User", `{"user":"alice","User":"bob","data":"x"}`},
		{"user twice", `{"user":"alice","user":"bob","data":"x"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.do(t, http.MethodPost, "/admin/notifications", admin, tc.body)
			wantError(t, status, body, http.StatusBadRequest)
		})
	}
	if ids := logIDs(t, s); len(ids) != 0 {
		t.Fatalf("ambiguous bodies created events %v", ids)
	}
}
