package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLiveFeedSkipsRowsCommittedBeforeItOpened: a feed without a cursor
// starts after the newest row committed when it opens, even one the
// tailer has not dispatched yet.
func TestLiveFeedSkipsRowsCommittedBeforeItOpened(t *testing.T) {
	e := newLogEnv(t, 64)
	before := e.commit(t, time.Now(), logRow("alice", "m")) // committed, not yet dispatched
	f := e.subscribe(t, Request{UserID: "alice"})
	e.poll()
	after := e.commit(t, time.Now(), logRow("alice", "m"))
	e.poll()
	f.drain(t)
	if got := f.sent(t); !slices.Equal(got, after) {
		t.Fatalf("live-only feed sent %v, want %v (not %d, committed before it opened)", got, after, before[0])
	}
}

// TestResumedFeedReplaysThenGoesLive resumes a feed whose replay spans
// rows dispatched before it opened and rows still waiting for the tailer,
// in a queue small enough to overflow: every event after the cursor comes
// once, in order, then live ones.
func TestResumedFeedReplaysThenGoesLive(t *testing.T) {
	e := newLogEnv(t, 4)
	var want []int64
	for i := range 20 {
		ids := e.commit(t, time.Now(), logRow("alice", "m"), logRow("bob", "m"))
		want = append(want, ids[0])
		if i == 10 {
			e.poll() // the rest are committed but not dispatched when the feed opens
		}
	}
	f := e.subscribe(t, Request{UserID: "alice", Cursor: want[2], Resume: true})
	for range 10 {
		want = append(want, e.commit(t, time.Now(), logRow("alice", "m"), logRow("", "m"))...)
	}
	e.poll()
	f.drain(t)
	marker := e.commit(t, time.Now(), logRow("alice", "m"))[0]
	e.poll()
	f.drain(t)
	want = append(want[3:], marker)
	if got := f.sent(t); !slices.Equal(got, want) {
		t.Fatalf("feed sent %v\nwant every event after the cursor once, in order, then the marker: %v", got, want)
	}
}

// TestNextHandsOutChunks: a long replay is handed out in chunks of about
// WriteChunk bytes, Ready staying signalled until all of it is out.
func TestNextHandsOutChunks(t *testing.T) {
	e := newLogEnv(t, 64)
	data := strings.Repeat("y", 1000)
	var want []int64
	for range 3 * replayPage {
		p := logRow("alice", "m")
		p.Data = data
		want = append(want, e.commit(t, time.Now(), p)...)
	}
	f := e.subscribe(t, Request{UserID: "alice", Resume: true})
	chunks := 0
	for {
		select {
		case <-f.Ready():
		default:
			if got := f.sent(t); !slices.Equal(got, want) {
				t.Fatalf("the replay handed out %d events, want the %d of the log in order", len(got), len(want))
			}
			if chunks < len(f.out)/WriteChunk {
				t.Fatalf("%d bytes came in %d chunks, want chunks of at most about %d bytes", len(f.out), chunks, WriteChunk)
			}
			return
		}
		chunk, err := f.Next(t.Context(), nil)
		must(t, err)
		if len(chunk) > WriteChunk+2*len(data) {
			t.Fatalf("a chunk of %d bytes, want at most about %d", len(chunk), WriteChunk)
		}
		f.out = append(f.out, chunk...)
		chunks++
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
		f := e.subscribe(t, Request{UserID: "alice", Cursor: old[0], Resume: true})
		f.drain(t)
		evs := f.events(t)
		if len(evs) == 0 || evs[0].typ != "feed.truncated" || evs[0].id != "" {
			t.Fatalf("first event %+v, want feed.truncated without an id (events %d-%d after the cursor were pruned)", evs, old[1], old[2])
		}
		var data struct {
			LastEventID      int64  `json:"last_event_id"`
			OldestRetainedID int64  `json:"oldest_retained_id"`
			Reason           string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(evs[0].data), &data); err != nil || data.LastEventID != old[0] ||
			data.OldestRetainedID != kept[0] || data.Reason != "retention" {
			t.Fatalf("feed.truncated data %q, want the cursor %d, the oldest retained id %d and reason retention (%v)",
				evs[0].data, old[0], kept[0], err)
		}
		if got := f.sent(t); !slices.Equal(got, kept) {
			t.Fatalf("after feed.truncated the feed sent %v, want %v", got, kept)
		}
	})
	t.Run("cursor at the newest pruned row", func(t *testing.T) {
		f := e.subscribe(t, Request{UserID: "alice", Cursor: old[2], Resume: true})
		f.drain(t)
		if evs := f.events(t); len(evs) != len(kept) || evs[0].typ == "feed.truncated" {
			t.Fatalf("the feed sent %+v, want only %v: nothing after the cursor was pruned", evs, kept)
		}
	})
}

// A cursor beyond every id the log issued (the database was replaced by an
// older copy, say) gets feed.reset, and the events the log writes next are
// delivered rather than taken for ones the client already has.
func TestCursorBeyondTheLogSendsReset(t *testing.T) {
	e := newLogEnv(t, 64)
	e.commit(t, time.Now(), logRow("alice", "m"))
	f := e.subscribe(t, Request{UserID: "alice", Cursor: 500, Resume: true})
	ids := e.commit(t, time.Now(), logRow("alice", "m"))
	e.poll()
	f.drain(t)
	evs := f.events(t)
	if len(evs) != 2 || evs[0].typ != "feed.reset" || evs[0].data != `{"last_event_id":500,"newest_id":1}` {
		t.Fatalf("the feed sent %+v, want feed.reset naming the newest id 1, then the new event", evs)
	}
	if evs[1].id != fmt.Sprint(ids[0]) {
		t.Fatalf("after feed.reset the feed sent %+v, want the new event %d", evs[1], ids[0])
	}
}

// A cursor inside a stretch of ids that a start skipped (a lost copy of
// the database may have issued them) gets feed.truncated with reason
// restored, then every event after it.
func TestCursorInALostStretchSendsTruncated(t *testing.T) {
	e := newLogEnv(t, 64)
	ctx := context.Background()
	must(t, e.store.Start(ctx, time.Now()))
	before := e.commit(t, time.Now(), logRow("alice", "m"))[0]
	must(t, e.store.Start(ctx, time.Now().Add(time.Second))) // a restart, or a restore
	after := e.commit(t, time.Now(), logRow("alice", "m"))[0]
	lost := before + (after-before)/2
	f := e.subscribe(t, Request{UserID: "alice", Cursor: lost, Resume: true})
	f.drain(t)
	evs := f.events(t)
	want := fmt.Sprintf(`{"last_event_id":%d,"oldest_retained_id":%d,"reason":"restored"}`, lost, after)
	if len(evs) != 2 || evs[0].typ != "feed.truncated" || evs[0].data != want || evs[1].id != fmt.Sprint(after) {
		t.Fatalf("a feed resumed from %d in the skipped stretch %d..%d sent %+v, want feed.truncated %s, then %d",
			lost, before, after, evs, want, after)
	}
	g := e.subscribe(t, Request{UserID: "alice", Cursor: before, Resume: true})
	g.drain(t)
	if evs := g.events(t); len(evs) != 1 || evs[0].id != fmt.Sprint(after) {
		t.Fatalf("a feed resumed from %d, which this log issued, sent %+v, want only %d", before, evs, after)
	}
}
