package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The store contract on writing the log: idempotency keys and publishes
// that fail alone. See testStoreContract.

func once(key, hash string) *Once {
	return &Once{Key: key, Hash: []byte(hash), TTL: time.Hour}
}

// keyedEvents are the events of the keyed publishes below: a retry sends
// the same ones again.
func keyedEvents() []NewEvent {
	return []NewEvent{msg("alice", "first"), news("second"), msg("bob", "third")}
}

// logAfter returns every row after cursor.
func logAfter(t *testing.T, s contractStore, cursor int64) []Event {
	t.Helper()
	rows, err := s.Tail(context.Background(), cursor, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// firstKeyed appends the first publish with key k and hash h at now and
// checks that it was appended, not replayed.
func firstKeyed(t *testing.T, s contractStore, now time.Time, k, h string) *Publish {
	t.Helper()
	p := &Publish{Events: keyedEvents(), Once: once(k, h)}
	appendGroup(t, s, now, p)
	if p.Err != nil || p.Replayed || len(p.Created) != len(p.Events) {
		t.Fatalf("first publish with key %q: err %v, replayed %v, %d of %d events created; want appended, not replayed",
			k, p.Err, p.Replayed, len(p.Created), len(p.Events))
	}
	return p
}

func contractOnceRetry(t *testing.T, open openStore) {
	s := open(t, contractOptions{})
	first := firstKeyed(t, s, contractT0, "k", "h1")
	last := first.Created[len(first.Created)-1].ID

	// A minute later, in a group with a publish without a key.
	retry := &Publish{Events: keyedEvents(), Once: once("k", "h1")}
	other := &Publish{Events: []NewEvent{msg("carol", "other")}}
	appendGroup(t, s, contractT0.Add(time.Minute), retry, other)
	if retry.Err != nil || !retry.Replayed {
		t.Fatalf("retry with the same key and hash: err %v, replayed %v; want replayed", retry.Err, retry.Replayed)
	}
	if d := diffEvents(retry.Created, first.Created); d != "" {
		t.Fatalf("a retry must get what the first publish created (ids, users, types, data, created_at): %s", d)
	}
	if other.Err != nil || len(other.Created) != 1 {
		t.Fatalf("the publish grouped with a retry: err %v, %d events created", other.Err, len(other.Created))
	}
	if d := diffEvents(logAfter(t, s, last), other.Created); d != "" {
		t.Fatalf("a retry must append nothing: the log after the first publish: %s", d)
	}
}

func contractOnceReused(t *testing.T, open openStore) {
	s := open(t, contractOptions{})
	first := firstKeyed(t, s, contractT0, "k", "h1")
	last := first.Created[len(first.Created)-1].ID

	reused := &Publish{Events: []NewEvent{msg("alice", "something else")}, Once: once("k", "h2")}
	appendGroup(t, s, contractT0.Add(time.Minute), reused)
	if !errors.Is(reused.Err, ErrKeyReused) {
		t.Fatalf("same key, another hash: err %v, want ErrKeyReused", reused.Err)
	}
	if reused.Replayed || len(reused.Created) != 0 {
		t.Fatalf("same key, another hash: replayed %v, created %v; want neither", reused.Replayed, ids(reused.Created))
	}
	if rows := logAfter(t, s, last); len(rows) != 0 {
		t.Fatalf("a reused key appended %v", ids(rows))
	}
	// The key still answers for its first request.
	retry := &Publish{Events: keyedEvents(), Once: once("k", "h1")}
	appendGroup(t, s, contractT0.Add(2*time.Minute), retry)
	if retry.Err != nil || !retry.Replayed || diffEvents(retry.Created, first.Created) != "" {
		t.Fatalf("retry after a refused reuse: err %v, replayed %v, created %v; want the first's %v",
			retry.Err, retry.Replayed, ids(retry.Created), ids(first.Created))
	}
}

func contractOnceExpires(t *testing.T, open openStore) {
	s := open(t, contractOptions{})
	first := firstKeyed(t, s, contractT0, "k", "h1")
	later := contractT0.Add(time.Hour + time.Second) // past the key's TTL

	second := &Publish{Events: []NewEvent{msg("alice", "new")}, Once: once("k", "h2")}
	appendGroup(t, s, later, second)
	if second.Err != nil || second.Replayed || len(second.Created) != 1 {
		t.Fatalf("an expired key used again: err %v, replayed %v, %d created; want appended", second.Err, second.Replayed, len(second.Created))
	}
	if second.Created[0].ID <= first.Created[len(first.Created)-1].ID {
		t.Fatalf("an expired key used again created id %d, not after the first's %v", second.Created[0].ID, ids(first.Created))
	}
	retry := &Publish{Events: []NewEvent{msg("alice", "new")}, Once: once("k", "h2")}
	appendGroup(t, s, later.Add(time.Second), retry)
	if retry.Err != nil || !retry.Replayed || diffEvents(retry.Created, second.Created) != "" {
		t.Fatalf("retry of the key's new request: err %v, replayed %v, created %v; want %v", retry.Err, retry.Replayed, ids(retry.Created), ids(second.Created))
	}
	old := &Publish{Events: keyedEvents(), Once: once("k", "h1")}
	appendGroup(t, s, later.Add(time.Second), old)
	if !errors.Is(old.Err, ErrKeyReused) {
		t.Fatalf("the expired first request again, once the key was reused: err %v, want ErrKeyReused", old.Err)
	}
}

func contractOnceConcurrent(t *testing.T, open openStore) {
	s := open(t, contractOptions{})
	// Rounds of duplicates released at once, each round with its own key:
	// a store that checks a key apart from appending lets some round
	// through twice.
	const rounds, n = 10, 8
	var last int64
	for round := range rounds {
		key := fmt.Sprint("k", round)
		ps := make([]*Publish, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			ps[i] = &Publish{Events: keyedEvents(), Once: once(key, "h1")}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.AppendMany(context.Background(), []*Publish{ps[i]}, contractT0)
			}()
		}
		close(start)
		wg.Wait()

		var firsts []int
		for i, p := range ps {
			if errs[i] != nil || p.Err != nil {
				t.Fatalf("round %d, duplicate %d: AppendMany %v, publish err %v", round, i, errs[i], p.Err)
			}
			if !p.Replayed {
				firsts = append(firsts, i)
			}
		}
		if len(firsts) != 1 {
			t.Fatalf("round %d, %d concurrent duplicates: %v appended (not Replayed); want exactly one", round, n, firsts)
		}
		want := ps[firsts[0]].Created
		for i, p := range ps {
			if d := diffEvents(p.Created, want); d != "" {
				t.Fatalf("round %d, duplicate %d got other events than the one that appended: %s", round, i, d)
			}
		}
		if d := diffEvents(logAfter(t, s, last), want); d != "" {
			t.Fatalf("round %d, %d concurrent duplicates must create once: the log: %s", round, n, d)
		}
		last = want[len(want)-1].ID
	}
}

func contractAllOrNothing(t *testing.T, open openStore) {
	s := open(t, contractOptions{})
	bad := strings.Repeat("x", 256) // a user id over 255 bytes: the store refuses it
	ps := []*Publish{
		{Events: []NewEvent{msg("alice", "ok 1")}},
		{Events: []NewEvent{msg(bad, "single, bad")}},
		{Events: []NewEvent{msg("bob", "multi, ok part"), msg(bad, "multi, bad"), news("multi, ok part")}},
		{Events: []NewEvent{msg("carol", "keyed ok")}, Once: once("good", "1")},
		{Events: []NewEvent{msg("carol", "keyed, ok part"), msg(bad, "keyed, bad")}, Once: once("bad", "1")},
		{Events: []NewEvent{msg("dave", "ok 2"), news("ok 3")}},
	}
	appendGroup(t, s, contractT0, ps...)
	var want []Event
	for i, wantErr := range []bool{false, true, true, false, true, false} {
		p := ps[i]
		switch {
		case wantErr && p.Err == nil:
			t.Errorf("publish %d has a row the store refuses, but no Err", i)
		case wantErr && len(p.Created) != 0:
			t.Errorf("publish %d failed (%v) but reports created events %v", i, p.Err, ids(p.Created))
		case !wantErr && (p.Err != nil || len(p.Created) != len(p.Events)):
			t.Errorf("publish %d is good, but got err %v, %d of %d events; a bad publish took it down", i, p.Err, len(p.Created), len(p.Events))
		}
		if !wantErr {
			want = append(want, p.Created...)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if d := diffEvents(logAfter(t, s, 0), want); d != "" {
		t.Fatalf("the log must hold the good publishes' events and nothing of the bad ones: %s", d)
	}
	// The failed keyed publish kept nothing under its key.
	retry := &Publish{Events: []NewEvent{msg("carol", "keyed, fixed")}, Once: once("bad", "2")}
	appendGroup(t, s, contractT0, retry)
	if retry.Err != nil || retry.Replayed || len(retry.Created) != 1 {
		t.Fatalf("a key whose publish failed, used again: err %v, replayed %v, %d created; want appended", retry.Err, retry.Replayed, len(retry.Created))
	}
	// A group whose only publish fails.
	alone := &Publish{Events: []NewEvent{msg("alice", "ok part"), msg(bad, "bad")}}
	appendGroup(t, s, contractT0, alone)
	if alone.Err == nil || len(alone.Created) != 0 {
		t.Fatalf("a bad publish alone in its group: err %v, created %v; want an error and nothing", alone.Err, ids(alone.Created))
	}
	if rows := logAfter(t, s, retry.Created[0].ID); len(rows) != 0 {
		t.Fatalf("a bad publish alone in its group left %v", ids(rows))
	}
}
