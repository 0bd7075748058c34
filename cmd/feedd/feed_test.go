package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPostReachesLiveFeed(t *testing.T) {
	s := startServer(t)
	f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)

	created := s.post(t, `{"user":"alice","type":"order.shipped","data":"line one\nline two"}`)
	if len(created) != 1 || created[0].User != "alice" || created[0].Type != "order.shipped" || created[0].Broadcast {
		t.Fatalf("201 answer %+v", created)
	}
	if got := string(created[0].Data); got != `"line one\nline two"` {
		t.Fatalf("answer data %s, want the posted string", got)
	}
	if _, err := time.Parse(time.RFC3339, created[0].CreatedAt); err != nil {
		t.Fatalf("created_at %q is not RFC 3339: %v", created[0].CreatedAt, err)
	}
	ev := f.next(t)
	want := sseEvent{ID: fmt.Sprint(created[0].ID), Type: "order.shipped", Data: "line one\nline two"}
	if ev != want {
		t.Fatalf("received %+v, want %+v", ev, want)
	}

	created = s.post(t, `{"user":"alice","data":{"b": [1, 2],  "a": "x"}}`)
	ev = f.next(t)
	want = sseEvent{ID: fmt.Sprint(created[0].ID), Data: `{"b":[1,2],"a":"x"}`}
	if ev != want {
		t.Fatalf("JSON data received as %+v, want compact JSON %+v", ev, want)
	}
}

func TestFeedHeaders(t *testing.T) {
	s := startServer(t, "--retry", "1500ms")
	resp, cancel := s.openRaw(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	defer cancel()
	for k, v := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); !strings.HasPrefix(got, v) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	buf := make([]byte, len("retry: 1500\n\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "retry: 1500\n\n" {
		t.Fatalf("first bytes %q, want the retry field", buf)
	}
}

func TestResumeByHeaderAndQuery(t *testing.T) {
	s := startServer(t)
	tok := s.userToken(t, "alice", time.Hour)
	var ids []int64
	for i := range 4 {
		ids = append(ids, s.post(t, fmt.Sprintf(`{"user":"alice","data":"%d"}`, i))[0].ID)
	}

	byHeader := s.openFeed(t, "token="+tok, http.Header{"Last-Event-Id": {fmt.Sprint(ids[0])}})
	if got := byHeader.nextIDs(t, 3); !slices.Equal(got, ids[1:]) {
		t.Fatalf("resume by header after %d replayed %v, want %v", ids[0], got, ids[1:])
	}
	byQuery := s.openFeed(t, fmt.Sprintf("token=%s&last_event_id=%d", tok, ids[1]), nil)
	if got := byQuery.nextIDs(t, 2); !slices.Equal(got, ids[2:]) {
		t.Fatalf("resume by last_event_id replayed %v, want %v", got, ids[2:])
	}
	polyfill := s.openFeed(t, fmt.Sprintf("token=%s&lastEventId=%d", tok, ids[2]), nil)
	if got := polyfill.nextIDs(t, 1); !slices.Equal(got, ids[3:]) {
		t.Fatalf("resume by lastEventId replayed %v, want %v", got, ids[3:])
	}
	both := s.openFeed(t, fmt.Sprintf("token=%s&last_event_id=%d", tok, ids[2]),
		http.Header{"Last-Event-Id": {fmt.Sprint(ids[0])}})
	if got := both.nextIDs(t, 3); !slices.Equal(got, ids[1:]) {
		t.Fatalf("with header and query the feed replayed %v, want %v (the header wins)", got, ids[1:])
	}
	all := s.openFeed(t, "token="+tok+"&last_event_id=0", nil)
	if got := all.nextIDs(t, 4); !slices.Equal(got, ids) {
		t.Fatalf("last_event_id=0 replayed %v, want all of %v", got, ids)
	}

	// Each resumed feed goes on live after its replay, without a gap.
	next := s.post(t, `{"user":"alice","data":"live"}`)[0].ID
	for name, f := range map[string]*feedClient{"header": byHeader, "query": byQuery, "both": both, "all": all} {
		if got := f.nextIDs(t, 1); got[0] != next {
			t.Errorf("%s: live event after replay has id %d, want %d", name, got[0], next)
		}
	}
}

func TestNoCursorIsLiveOnly(t *testing.T) {
	s := startServer(t)
	s.post(t, `{"user":"alice","data":"old"}`)
	s.post(t, `{"broadcast":true,"data":"old news"}`)
	f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	fresh := s.post(t, `{"user":"alice","data":"new"}`)[0]
	if ev := f.next(t); ev.ID != fmt.Sprint(fresh.ID) || ev.Data != "new" {
		t.Fatalf("first event on a feed without cursor is %+v, want the new one (%d)", ev, fresh.ID)
	}
}

func TestUsersAreIsolated(t *testing.T) {
	s := startServer(t)
	alice := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	bob := s.openFeed(t, "token="+s.userToken(t, "bob", time.Hour), nil)
	bobsID := s.post(t, `{"user":"bob","data":"for bob"}`)[0].ID
	alicesID := s.post(t, `{"user":"alice","data":"for alice"}`)[0].ID

	if ev := alice.next(t); ev.ID != fmt.Sprint(alicesID) {
		t.Fatalf("alice received %+v before her own event %d", ev, alicesID)
	}
	if ev := bob.next(t); ev.ID != fmt.Sprint(bobsID) {
		t.Fatalf("bob received %+v, want %d", ev, bobsID)
	}
	// A replay of alice's history holds only her own event.
	replay := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour)+"&last_event_id=0", nil)
	if got := replay.nextIDs(t, 1); got[0] != alicesID {
		t.Fatalf("alice's replay starts with %d, want %d", got[0], alicesID)
	}
	marker := s.post(t, `{"user":"alice","data":"marker"}`)[0].ID
	if got := replay.nextIDs(t, 1); got[0] != marker {
		t.Fatalf("alice's replay holds %d, not only her own events", got[0])
	}

	// History through /v1 is per user too.
	status, body := s.do(t, http.MethodGet, "/v1/notifications", s.userToken(t, "bob", time.Hour), "")
	var page struct{ Events []apiEvent }
	if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil {
		t.Fatalf("history: %d %s", status, body)
	}
	if len(page.Events) != 1 || page.Events[0].ID != bobsID {
		t.Fatalf("bob's history %+v, want only %d", page.Events, bobsID)
	}
}

func TestMulticastAndBroadcast(t *testing.T) {
	s := startServer(t)
	feeds := map[string]*feedClient{}
	for _, u := range []string{"alice", "bob", "carol"} {
		feeds[u] = s.openFeed(t, "token="+s.userToken(t, u, time.Hour), nil)
	}
	multi := s.post(t, `{"users":["alice","bob"],"type":"team","data":{"n":1}}`)
	if len(multi) != 2 || multi[0].User != "alice" || multi[1].User != "bob" || multi[0].ID == multi[1].ID {
		t.Fatalf("multicast created %+v, want one event each for alice and bob", multi)
	}
	bc := s.post(t, `{"broadcast":true,"type":"news","data":"to all"}`)
	if len(bc) != 1 || !bc[0].Broadcast || bc[0].User != "" {
		t.Fatalf("broadcast created %+v, want one event without a user", bc)
	}

	if got := feeds["alice"].nextIDs(t, 2); !slices.Equal(got, []int64{multi[0].ID, bc[0].ID}) {
		t.Errorf("alice got %v", got)
	}
	if got := feeds["bob"].nextIDs(t, 2); !slices.Equal(got, []int64{multi[1].ID, bc[0].ID}) {
		t.Errorf("bob got %v", got)
	}
	if got := feeds["carol"].nextIDs(t, 1); got[0] != bc[0].ID {
		t.Errorf("carol got %v, want only the broadcast %d", got, bc[0].ID)
	}
	// The broadcast is one row, and a resume finds it for any user.
	dave := s.openFeed(t, "token="+s.userToken(t, "dave", time.Hour)+"&last_event_id=0", nil)
	if got := dave.nextIDs(t, 1); got[0] != bc[0].ID {
		t.Errorf("dave's replay %v, want the broadcast %d", got, bc[0].ID)
	}
}

func TestTypesFilter(t *testing.T) {
	s := startServer(t)
	tok := s.userToken(t, "alice", time.Hour)
	live := s.openFeed(t, "token="+tok+"&types=b,c", nil)
	s.post(t, `{"user":"alice","type":"a","data":"1"}`)
	b := s.post(t, `{"user":"alice","type":"b","data":"2"}`)[0].ID
	s.post(t, `{"broadcast":true,"type":"a","data":"3"}`)
	c := s.post(t, `{"broadcast":true,"type":"c","data":"4"}`)[0].ID
	if got := live.nextIDs(t, 2); !slices.Equal(got, []int64{b, c}) {
		t.Fatalf("types=b,c live got %v, want %v", got, []int64{b, c})
	}
	replay := s.openFeed(t, "token="+tok+"&types=b,c&last_event_id=0", nil)
	if got := replay.nextIDs(t, 2); !slices.Equal(got, []int64{b, c}) {
		t.Fatalf("types=b,c replay got %v, want %v", got, []int64{b, c})
	}
}

func TestFeedEndsWhenTokenExpires(t *testing.T) {
	s := startServer(t)
	f := s.openFeed(t, "token="+s.userToken(t, "alice", 2*time.Second), nil)
	select {
	case <-f.ended:
	case <-time.After(waitLong):
		t.Fatal("feed still open long after its token expired")
	}
}

func TestFeedHeartbeat(t *testing.T) {
	s := startServer(t, "--heartbeat", "50ms")
	resp, cancel := s.openRaw(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	defer cancel()
	buf := make([]byte, len("retry: 3000\n\n:\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "retry: 3000\n\n:\n" {
		t.Fatalf("stream %q, want the retry field then a heartbeat comment", buf)
	}
}

func TestAuthFailures(t *testing.T) {
	s := startServer(t)
	expired, err := s.signer.Mint("alice", time.Minute, false, "", "", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	algNone := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		b64([]byte(fmt.Sprintf(`{"sub":"alice","exp":%d}`, time.Now().Add(time.Hour).Unix()))) + "."
	good := s.userToken(t, "alice", time.Hour)
	tampered := good[:len(good)-4] + "AAAA"
	admin := s.adminToken(t)

	for _, tc := range []struct {
		name, method, path, header string
		want                       int
	}{
		{"no token", "GET", "/events", "", 401},
		{"garbage token", "GET", "/events?token=not.a.jwt", "", 401},
		{"expired", "GET", "/events?token=" + expired, "", 401},
		{"alg none", "GET", "/events?token=" + algNone, "", 401},
		{"bad signature", "GET", "/events?token=" + tampered, "", 401},
		{"history without token", "GET", "/v1/notifications", "", 401},
		{"admin without token", "GET", "/admin/notifications", "", 401},
		{"admin token in the query", "GET", "/admin/notifications?token=" + admin, "", 401},
		{"user token on admin", "GET", "/admin/notifications", good, 403},
		{"user token posting", "POST", "/admin/notifications", good, 403},
		{"expired admin header", "GET", "/admin/notifications", expired, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.base+tc.path, strings.NewReader(`{"broadcast":true,"data":"x"}`))
			if tc.header != "" {
				req.Header.Set("Authorization", "Bearer "+tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == "" {
				t.Errorf("body is not a JSON error: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.want, body.Error)
			}
			if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// Nothing above created an event.
	status, body := s.do(t, http.MethodGet, "/admin/notifications", admin, "")
	if status != 200 || !strings.Contains(string(body), `"events":[]`) {
		t.Fatalf("after failed requests the log holds %s", body)
	}
	if strings.Contains(s.stderr.String(), good) || strings.Contains(s.stderr.String(), admin) {
		t.Fatal("a token appears in the log")
	}
}

func TestShutdownEndsFeedsCleanly(t *testing.T) {
	s := startServer(t)
	f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	id := s.post(t, `{"user":"alice","data":"before stop"}`)[0].ID
	if got := f.nextIDs(t, 1); got[0] != id {
		t.Fatalf("got %v, want %d", got, id)
	}
	s.stop()
	select {
	case err := <-f.ended:
		if err != nil {
			t.Fatalf("feed ended with %v, want a clean end of stream", err)
		}
	case <-time.After(waitLong):
		t.Fatal("feed still open after shutdown")
	}
	s.shutdown(t) // fails the test unless run returns nil in time
	if info, err := os.Stat(s.dbPath + "-wal"); !onPostgres() && err == nil && info.Size() > 0 {
		t.Fatalf("WAL holds %d bytes after shutdown; want it checkpointed", info.Size())
	}

	// Restarted on the same file, the event is still there to resume from.
	s2 := startServer(t, "--db", s.dbPath)
	replay := s2.openFeed(t, "token="+s2.userToken(t, "alice", time.Hour)+"&last_event_id=0", nil)
	if got := replay.nextIDs(t, 1); got[0] != id {
		t.Fatalf("after restart replay gave %v, want %d", got, id)
	}
}

func TestShutdownDelayAnswersNotReadyFirst(t *testing.T) {
	s := startServer(t, "--shutdown-delay", "2s")
	f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	if status, body := s.do(t, http.MethodGet, "/readyz", "", ""); status != http.StatusOK {
		t.Fatalf("/readyz before the stop: %d %s", status, body)
	}
	s.stop()
	s.stderr.WaitFor(t, "not-ready log line", nil, func(logs string) bool {
		return strings.Contains(logs, "shutting down: not ready, still serving")
	})
	if status, body := s.do(t, http.MethodGet, "/readyz", "", ""); status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after the stop: %d %s, want 503", status, body)
	}
	// While not ready the server still serves: the open feed gets events.
	id := s.post(t, `{"user":"alice","data":"during the delay"}`)[0].ID
	if got := f.nextIDs(t, 1); got[0] != id {
		t.Fatalf("feed got %v during the delay, want %d", got, id)
	}
	select {
	case err := <-f.ended:
		if err != nil {
			t.Fatalf("feed ended with %v, want a clean end", err)
		}
	case <-time.After(waitLong):
		t.Fatal("feed still open after the delay")
	}
}

func TestMaxConnsPerUser(t *testing.T) {
	s := startServer(t, "--max-conns-per-user", "2")
	tok := s.userToken(t, "alice", time.Hour)
	first := s.openFeed(t, "token="+tok, nil)
	s.openFeed(t, "token="+tok, nil)
	s.openFeed(t, "token="+s.userToken(t, "bob", time.Hour), nil) // other users are not counted

	resp, cancel := s.openRaw(t, "token="+tok, nil)
	var body struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&body)
	cancel()
	if resp.StatusCode != http.StatusTooManyRequests || body.Error == "" {
		t.Fatalf("third feed for alice: %d %q, want 429 with a JSON error", resp.StatusCode, body.Error)
	}

	// Closing a feed frees its slot as soon as the server sees the client
	// go, which it logs.
	first.cancel()
	s.stderr.WaitFor(t, "log line of the closed feed", nil, func(logs string) bool {
		return strings.Contains(logs, "ended=client_left")
	})
	resp, cancel = s.openRaw(t, "token="+tok, nil)
	cancel()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after closing a feed: %d, want 200", resp.StatusCode)
	}
}

// A feed outlives --read-timeout: it sends nothing after its headers, so
// the deadline that bounds request bodies must not end it. (net/http clears
// the read deadline when it starts watching a body-less request for the
// client leaving; this holds it to that.)
func TestFeedOutlivesReadTimeout(t *testing.T) {
	s := startServer(t, "--read-timeout", "200ms", "--heartbeat", "100ms")
	resp, cancel := s.openRaw(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	defer cancel()
	r := bufio.NewReader(resp.Body)
	for beats := 0; beats < 5; { // five heartbeats: well past the read timeout
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("feed ended after %d heartbeats: %v", beats, err)
		}
		if line == ":\n" {
			beats++
		}
	}
	id := s.post(t, `{"user":"alice","data":"still here"}`)[0].ID
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("feed ended before event %d: %v", id, err)
		}
		if line == fmt.Sprintf("id: %d\n", id) {
			return
		}
	}
}
