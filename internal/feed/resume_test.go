package feed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/auth"
)

// sseEvent is one event as a client parses it.
type sseEvent struct{ id, typ, data string }

// dial opens /events on a test server for srv and returns a channel of the
// events it sends, once the server has sent its retry field.
func (e *logEnv) dial(t *testing.T, query string) <-chan sseEvent {
	t.Helper()
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	signer, err := auth.NewSigner([]byte(catchupSecret))
	must(t, err)
	tok, err := signer.Mint("alice", time.Hour, false, "", "", time.Now())
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events?token="+tok+"&"+query, nil)
	must(t, err)
	resp, err := ts.Client().Do(req)
	must(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "retry:") {
		t.Fatalf("first line %q, want the retry field", sc.Text())
	}
	events := make(chan sseEvent, 256)
	go func() {
		defer close(events)
		var cur sseEvent
		hasData := false
		for sc.Scan() {
			name, value, _ := strings.Cut(sc.Text(), ": ")
			switch name {
			case "":
				if hasData {
					select {
					case events <- cur:
					case <-ctx.Done():
						return
					}
				}
				cur, hasData = sseEvent{}, false
			case "id":
				cur.id = value
			case "event":
				cur.typ = value
			case "data":
				cur.data, hasData = value, true
			}
		}
	}()
	return events
}

// nextEvent returns the next event of a feed dial opened.
func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("feed ended while an event was expected")
		}
		return ev
	case <-time.After(waitLong):
		t.Fatal("no event within", waitLong)
	}
	return sseEvent{}
}

func TestLiveFeedSkipsRowsCommittedBeforeItOpened(t *testing.T) {
	e := newLogEnv(t, 64)
	before := e.commit(t, time.Now(), logRow("alice", "m")) // committed, not yet dispatched
	events := e.dial(t, "")
	e.poll()
	after := e.commit(t, time.Now(), logRow("alice", "m"))
	e.poll()
	if got := nextEvent(t, events); got.id != fmt.Sprint(after[0]) {
		t.Fatalf("live-only feed sent %q first, want %d (not %d, committed before it opened)", got.id, after[0], before[0])
	}
}

func TestResumedFeedThroughTheHandler(t *testing.T) {
	e := newLogEnv(t, 4)
	var want []int64
	for i := range 20 {
		ids := e.commit(t, time.Now(), logRow("alice", "m"), logRow("bob", "m"))
		want = append(want, ids[0])
		if i == 10 {
			e.poll() // the rest are committed but not dispatched when the feed opens
		}
	}
	events := e.dial(t, fmt.Sprintf("last_event_id=%d", want[2]))
	for range 10 {
		want = append(want, e.commit(t, time.Now(), logRow("alice", "m"), logRow("", "m"))...)
	}
	e.poll()
	want = want[3:]
	for _, id := range want {
		if got := nextEvent(t, events); got.id != fmt.Sprint(id) {
			t.Fatalf("feed sent %q, want %d; every event after the cursor once, in order: %v", got.id, id, want)
		}
	}
	marker := e.commit(t, time.Now(), logRow("alice", "m"))[0]
	e.poll()
	if got := nextEvent(t, events); got.id != fmt.Sprint(marker) {
		t.Fatalf("after the replay the feed sent %q, want the marker %d", got.id, marker)
	}
}

// SPEC 3: if events after the cursor were pruned by retention, the feed
// first sends feed.truncated naming the oldest retained id.
func TestResumeAfterPrunedEventsSendsTruncated(t *testing.T) {
	e := newLogEnv(t, 64)
	old := e.commit(t, time.Now().Add(-2*time.Hour), logRow("alice", "m"), logRow("alice", "m"), logRow("alice", "m"))
	kept := e.commit(t, time.Now(), logRow("alice", "m"), logRow("alice", "m"))
	if n, err := e.store.Prune(context.Background(), time.Now().Add(-time.Hour), 100); err != nil || n != 3 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	e.poll()

	t.Run("cursor before the pruned rows", func(t *testing.T) {
		events := e.dial(t, fmt.Sprintf("last_event_id=%d", old[0]))
		first := nextEvent(t, events)
		if first.typ != "feed.truncated" {
			t.Fatalf("first event %+v, want feed.truncated (events %d-%d after the cursor were pruned)", first, old[1], old[2])
		}
		var data map[string]any
		if err := json.Unmarshal([]byte(first.data), &data); err != nil || !slices.Contains(slices.Collect(maps.Values(data)), any(float64(kept[0]))) {
			t.Fatalf("feed.truncated data %q is not a JSON object naming the oldest retained id %d (%v)", first.data, kept[0], err)
		}
		for _, id := range kept {
			if got := nextEvent(t, events); got.id != fmt.Sprint(id) {
				t.Fatalf("after feed.truncated the feed sent %+v, want %d", got, id)
			}
		}
	})
	t.Run("cursor at the newest pruned row", func(t *testing.T) {
		events := e.dial(t, fmt.Sprintf("last_event_id=%d", old[2]))
		if got := nextEvent(t, events); got.id != fmt.Sprint(kept[0]) || got.typ == "feed.truncated" {
			t.Fatalf("first event %+v, want %d: nothing after the cursor was pruned", got, kept[0])
		}
	})
}

// A cursor beyond every id the log issued (the database was replaced by an
// older copy, say) gets feed.reset, and the events the log writes next are
// delivered rather than taken for ones the client already has.
func TestCursorBeyondTheLogSendsReset(t *testing.T) {
	e := newLogEnv(t, 64)
	e.commit(t, time.Now(), logRow("alice", "m"))
	events := e.dial(t, "last_event_id=500")
	first := nextEvent(t, events)
	if first.typ != "feed.reset" || !strings.Contains(first.data, `"newest_id":1`) {
		t.Fatalf("first event %+v, want feed.reset naming the newest id 1", first)
	}
	ids := e.commit(t, time.Now(), logRow("alice", "m"))
	e.poll()
	if got := nextEvent(t, events); got.id != fmt.Sprint(ids[0]) {
		t.Fatalf("after feed.reset the feed sent %+v, want the new event %d", got, ids[0])
	}
}
