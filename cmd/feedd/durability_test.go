package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run feedd as a real process (process_test.go) to check what
// only a process can show: SIGKILL, SIGTERM, and two processes on one file.

func TestKilledServerLosesNothingAnswered201(t *testing.T) {
	for _, mode := range []string{"normal", "full"} {
		t.Run("sync="+mode, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "feedd.db")
			p := startProcess(t, dbPath, "--sync", mode)
			users := []string{"u0", "u1", "u2", "u3"}
			l := startLoad(t, p, 16, users, 300)
			select {
			case <-l.goalReached:
			case <-l.done:
				t.Fatalf("the publishers stopped before %d events were answered: %s", l.goal, l.summary())
			case <-time.After(waitLong):
				t.Fatalf("%d events not answered within %s: %s", l.goal, waitLong, l.summary())
			}
			inFlight, answered := l.inFlight.Load(), l.created.Load()
			killedAt := time.Now()
			p.kill(t)
			if code, _ := p.wait(t); code != -1 {
				t.Fatalf("feedd exited with status %d before SIGKILL ended it", code)
			}
			l.wait(t)
			for _, f := range l.failures() {
				if f.at.Before(killedAt) {
					t.Errorf("a publish failed before the kill: %v", f.err)
				}
			}
			for _, r := range l.rejections() {
				t.Errorf("a publish was answered %s", r)
			}
			want := l.check(t)
			t.Logf("SIGKILL with %d events answered 201 and %d requests in flight; %d events answered in all; %d requests then failed (%s)",
				answered, inFlight, len(want), len(l.failures()), l.failureKinds())

			p2 := startProcess(t, dbPath, "--sync", mode)
			rows := logRows(t, p2)
			checkCommitted(t, rows, want)
			unanswered := 0
			for _, r := range rows {
				if _, ok := want[r.ID]; !ok {
					unanswered++
				}
			}
			if asked := l.failedEvents(); unanswered > asked {
				t.Errorf("the log holds %d events nobody was told about, but the failed requests asked for only %d", unanswered, asked)
			}
			t.Logf("after restart the log holds %d events: %d answered 201, %d committed by requests whose answer was lost", len(rows), len(rows)-unanswered, unanswered)
			for _, u := range users {
				checkReplay(t, p2, u, 0, rowsFor(rows, u))
			}
		})
	}
}

func TestSIGTERMShutsDownGracefully(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "feedd.db")
	// The delay keeps /readyz at 503 for a while before the listener
	// closes and the feeds end; it is also what lets every event answered
	// before the SIGTERM reach the open feeds before they end.
	const delay = time.Second
	p := startProcess(t, dbPath, "--shutdown-delay", delay.String())
	if status, body := p.do(t, http.MethodGet, "/readyz", "", ""); status != http.StatusOK {
		t.Fatalf("/readyz before the stop: %d %s", status, body)
	}
	type watched struct {
		user string
		got  <-chan feedResult
	}
	var feeds []watched
	for _, u := range []string{"a", "a", "b", "b"} {
		f := p.openFeed(t, "token="+p.userToken(t, u, time.Hour)+"&last_event_id=0", nil)
		feeds = append(feeds, watched{u, collect(f)})
	}
	l := startLoad(t, p, 8, []string{"a", "b"}, 100)
	select {
	case <-l.goalReached:
	case <-l.done:
		t.Fatalf("the publishers stopped before %d events were answered: %s", l.goal, l.summary())
	case <-time.After(waitLong):
		t.Fatalf("%d events not answered within %s: %s", l.goal, waitLong, l.summary())
	}

	sigterm := time.Now()
	p.signal(t, syscall.SIGTERM)
	// Each probe is a new connection, so a 503 shows the listener still
	// accepts while the server says it is not ready.
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitLong}
	for deadline := time.Now().Add(waitLong); ; {
		resp, err := probe.Get(p.base + "/readyz")
		if err != nil {
			t.Errorf("/readyz failed (%v) before it answered 503: no not-ready period with the listener open", err)
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			t.Logf("/readyz answered 503 %s after SIGTERM, on a new connection", time.Since(sigterm).Round(time.Millisecond))
			break
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/readyz answered %d during the shutdown, want 200 then 503", resp.StatusCode)
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/readyz still answers 200 %s after SIGTERM", waitLong)
			break
		}
	}

	code, elapsed := p.wait(t)
	if code != 0 {
		t.Errorf("feedd exited with status %d after SIGTERM, want 0", code)
	}
	if elapsed >= 10*time.Second {
		t.Errorf("feedd took %s to exit after SIGTERM, want under 10s", elapsed)
	}
	l.wait(t)
	for _, f := range l.failures() {
		if f.at.Before(sigterm) {
			t.Errorf("a publish failed before the SIGTERM: %v", f.err)
		}
	}
	for _, r := range l.rejections() {
		if !strings.HasPrefix(r, "503 ") {
			t.Errorf("a publish during the shutdown was answered %s", r)
		}
	}
	want := l.check(t)
	beforeSIGTERM := map[int64]bool{}
	for _, a := range l.answered() {
		for _, e := range a.got {
			if a.at.Before(sigterm) {
				beforeSIGTERM[e.ID] = true
			}
		}
	}
	t.Logf("exit status %d %s after SIGTERM (shutdown delay %s); %d events answered 201 before SIGTERM, %d after; %d publishes then failed (%s), %d were refused",
		code, elapsed.Round(time.Millisecond), delay, len(beforeSIGTERM), len(want)-len(beforeSIGTERM), len(l.failures()), l.failureKinds(), len(l.rejections()))

	if info, err := os.Stat(dbPath + "-wal"); err == nil && info.Size() > 0 {
		t.Errorf("the WAL holds %d bytes after the exit; want it checkpointed", info.Size())
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Error(err)
	}

	results := make([]feedResult, len(feeds))
	for i, f := range feeds {
		select {
		case results[i] = <-f.got:
		case <-time.After(waitLong):
			t.Fatalf("feed %d (%s) still open after feedd exited", i, f.user)
		}
		if err := results[i].err; err != nil {
			t.Errorf("feed %d (%s) ended with %v, want a clean end of stream", i, f.user, err)
		}
	}

	p2 := startProcess(t, dbPath)
	rows := logRows(t, p2)
	checkCommitted(t, rows, want)
	for _, r := range rows {
		if _, ok := want[r.ID]; !ok {
			t.Errorf("event %d is in the log but its publish got no 201: a graceful stop lost an answer", r.ID)
		}
	}
	for i, f := range feeds {
		all := rowsFor(rows, f.user)
		got := results[i].events
		// What the feed got before its end is the start of the user's
		// feed, with no gap, and includes every event answered before the
		// SIGTERM.
		n := min(len(got), len(all))
		for j := range n {
			checkEvent(t, fmt.Sprintf("feed %d (%s), event %d", i, f.user, j), got[j], all[j])
		}
		if len(got) > len(all) {
			t.Errorf("feed %d (%s) got %d events; the log holds only %d for it", i, f.user, len(got), len(all))
		}
		for _, e := range all[n:] {
			if beforeSIGTERM[e.ID] {
				t.Errorf("feed %d (%s) ended after %d events without event %d, answered 201 before the SIGTERM", i, f.user, n, e.ID)
				break
			}
		}
		t.Logf("feed %d (%s) got %d of its %d events before its end", i, f.user, len(got), len(all))
		if t.Failed() {
			return
		}
		// A client that reconnects to the restarted server with its last
		// id gets the rest.
		var last int64
		if n > 0 {
			last = all[n-1].ID
		}
		checkReplay(t, p2, f.user, last, all[n:])
	}
	for _, u := range []string{"a", "b"} {
		checkReplay(t, p2, u, 0, rowsFor(rows, u))
	}
}

func TestSecondProcessRowsAreDelivered(t *testing.T) {
	const poll = 50 * time.Millisecond
	dbPath := filepath.Join(t.TempDir(), "feedd.db")
	a := startProcess(t, dbPath, "--poll-interval", poll.String())
	b := startProcess(t, dbPath)
	fa := a.openFeed(t, "token="+a.userToken(t, "alice", time.Hour), nil)

	// Rows B writes reach A's feed through A's tailer.
	var delays []time.Duration
	for i, body := range []string{
		`{"user":"alice","type":"from.b","data":{"i":0}}`,
		`{"broadcast":true,"type":"news","data":"to everyone"}`,
		`{"user":"alice","data":"second\nline"}`,
		`{"user":"alice","data":{"i":3}}`,
		`{"broadcast":true,"data":[4]}`,
	} {
		ev := b.post(t, body)[0]
		posted := time.Now()
		select {
		case got := <-fa.events:
			delays = append(delays, time.Since(posted).Round(time.Millisecond))
			checkEvent(t, fmt.Sprintf("post %d through B", i), got, ev)
		case err := <-fa.ended:
			t.Fatalf("A's feed ended (%v) while waiting for event %d, written by B", err, ev.ID)
		case <-time.After(waitLong):
			t.Fatalf("event %d, written by B, did not reach A's feed within %s (poll interval %s)", ev.ID, waitLong, poll)
		}
	}
	t.Logf("rows written by B reached a feed on A (poll interval %s) %v after B answered 201", poll, delays)

	// Both processes publishing at once: each feed gets every event once,
	// in id order, and neither process reports a locked database.
	fb := b.openFeed(t, "token="+b.userToken(t, "alice", time.Hour), nil)
	const perProcess, workers = 100, 4
	var (
		mu     sync.Mutex
		posted = map[int64]string{}
		errs   []string
		wg     sync.WaitGroup
	)
	for _, p := range []*proc{a, b} {
		client, token := loadClient(workers), p.adminToken(t)
		for w := range workers {
			wg.Go(func() {
				for n := range perProcess / workers {
					data := fmt.Sprintf("via %s worker %d post %d", p.base, w, n)
					body := fmt.Sprintf(`{"user":"alice","data":%q}`, data)
					status, resp, err := postTo(client, p.base+"/admin/notifications", token, body)
					var out struct{ Events []apiEvent }
					if err == nil && status == http.StatusCreated {
						err = json.Unmarshal(resp, &out)
					}
					mu.Lock()
					switch {
					case err != nil:
						errs = append(errs, fmt.Sprintf("%s: %v", p.base, err))
					case status != http.StatusCreated || len(out.Events) != 1:
						errs = append(errs, fmt.Sprintf("%s: %d %s", p.base, status, resp))
					default:
						posted[out.Events[0].ID] = data
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for _, e := range errs {
		t.Errorf("publish: %s", e)
	}
	if t.Failed() {
		return
	}
	ids := make([]int64, 0, len(posted))
	for id := range posted {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for name, f := range map[string]*feedClient{"A": fa, "B": fb} {
		for i, id := range ids {
			ev := f.next(t)
			if ev.ID != fmt.Sprint(id) || ev.Data != posted[id] {
				t.Fatalf("feed on %s: event %d is id %s %q, want id %d %q (every event once, in id order)", name, i, ev.ID, ev.Data, id, posted[id])
			}
		}
	}
	for name, p := range map[string]*proc{"A": a, "B": b} {
		for _, bad := range []string{"database is locked", "SQLITE_BUSY", "level=ERROR"} {
			if strings.Contains(p.stderr.String(), bad) {
				t.Errorf("process %s logged %q:\n%s", name, bad, tail(p.stderr.String(), 20))
			}
		}
	}
}

// logRows returns every event in p's log, oldest first, through the admin
// listing, paging with after= by the last id of each page.
func logRows(t *testing.T, p *proc) []apiEvent {
	t.Helper()
	token := p.adminToken(t)
	var out []apiEvent
	var after int64
	for {
		pg := getPage(t, p.testServer, fmt.Sprintf("/admin/notifications?after=%d&limit=1000", after), token)
		if len(pg.Events) == 0 {
			return out
		}
		for _, e := range pg.Events {
			if e.ID <= after {
				t.Fatalf("listing after=%d gave id %d", after, e.ID)
			}
			after = e.ID
		}
		out = append(out, pg.Events...)
	}
}

// checkCommitted fails the test for each event of want that the log does
// not hold as it was posted.
func checkCommitted(t *testing.T, rows []apiEvent, want map[int64]published) {
	t.Helper()
	byID := make(map[int64]apiEvent, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	missing := 0
	for id, w := range want {
		r, ok := byID[id]
		switch {
		case !ok:
			missing++
			if missing <= 10 {
				t.Errorf("event %d (%s to %q) was answered 201 and is not in the log", id, w.data, w.user)
			}
		case r.User != w.user || r.Broadcast != (w.user == "") || r.Type != w.typ || !sameJSON(t, r.Data, w.data):
			t.Errorf("event %d was posted as %+v and the log holds %+v", id, w, r)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d events answered 201 are not in the log", missing, len(want))
	}
}

// rowsFor returns the events of rows that user's feed carries: its own
// and the broadcasts.
func rowsFor(rows []apiEvent, user string) []apiEvent {
	var out []apiEvent
	for _, r := range rows {
		if r.Broadcast || r.User == user {
			out = append(out, r)
		}
	}
	return out
}

// checkReplay opens user's feed on p with last_event_id=after and checks
// that it replays exactly want, in order.
func checkReplay(t *testing.T, p *proc, user string, after int64, want []apiEvent) {
	t.Helper()
	f := p.openFeed(t, fmt.Sprintf("token=%s&last_event_id=%d", p.userToken(t, user, time.Hour), after), nil)
	defer f.cancel()
	for i, w := range want {
		if !checkEvent(t, fmt.Sprintf("%s's feed after %d, event %d of %d", user, after, i, len(want)), f.next(t), w) {
			return
		}
	}
	select {
	case ev := <-f.events:
		t.Errorf("%s's feed after %d: unexpected event %+v after the %d expected", user, after, ev, len(want))
	default:
	}
}

// checkEvent reports whether ev, as a feed delivered it, is the log's
// event e; if not, it fails the test.
func checkEvent(t *testing.T, what string, ev sseEvent, e apiEvent) bool {
	t.Helper()
	typ := ev.Type
	if typ == "" {
		typ = "message"
	}
	var data bool
	var s string
	if json.Unmarshal(e.Data, &s) == nil {
		data = ev.Data == s
	} else {
		data = json.Valid([]byte(ev.Data)) && sameJSON(t, []byte(ev.Data), e.Data)
	}
	if ev.ID != fmt.Sprint(e.ID) || typ != e.Type || !data {
		t.Errorf("%s: got id %s type %q data %q, want id %d type %q data %s", what, ev.ID, typ, ev.Data, e.ID, e.Type, e.Data)
		return false
	}
	return true
}

// feedResult is everything a feed received, and how its stream ended.
type feedResult struct {
	events []sseEvent
	err    error
}

// collect reads f in the background until its stream ends.
func collect(f *feedClient) <-chan feedResult {
	out := make(chan feedResult, 1)
	go func() {
		var r feedResult
		for {
			select {
			case ev := <-f.events:
				r.events = append(r.events, ev)
			case r.err = <-f.ended:
				// The reader queued every event before it reported the end.
				for {
					select {
					case ev := <-f.events:
						r.events = append(r.events, ev)
					default:
						out <- r
						return
					}
				}
			}
		}
	}()
	return out
}
