package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// postKeyed posts body with an Idempotency-Key and returns status and body.
func (s *testServer) postKeyed(t *testing.T, path, key, body string) (int, string) {
	t.Helper()
	status, _, b := send(t, s, http.MethodPost, path, http.Header{
		"Authorization":   {"Bearer " + s.adminToken(t)},
		"Content-Type":    {"application/json"},
		"Idempotency-Key": {key},
	}, body)
	return status, string(b)
}

// countEvents returns how many events the whole log holds.
func (s *testServer) countEvents(t *testing.T) int {
	t.Helper()
	status, body := s.do(t, http.MethodGet, "/admin/notifications?limit=1000", s.adminToken(t), "")
	var page struct{ Events []apiEvent }
	if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil {
		t.Fatalf("list: %d %s", status, body)
	}
	return len(page.Events)
}

func TestIdempotencyKey(t *testing.T) {
	s := startServer(t)
	body := `{"user":"alice","data":{"n":1}}`
	status, first := s.postKeyed(t, "/admin/notifications", "key-1", body)
	if status != http.StatusCreated {
		t.Fatalf("first post: %d %s", status, first)
	}
	status, again := s.postKeyed(t, "/admin/notifications", "key-1", `{"user": "alice", "data": {"n": 1}}`)
	if status != http.StatusCreated || again != first {
		t.Fatalf("retry: %d %s, want 201 and the first answer %s", status, again, first)
	}
	status, other := s.postKeyed(t, "/admin/notifications", "key-1", `{"user":"alice","data":{"n":2}}`)
	if status != http.StatusUnprocessableEntity || !strings.Contains(other, "error") {
		t.Fatalf("same key, other body: %d %s, want 422", status, other)
	}
	status, batch := s.postKeyed(t, "/admin/notifications/batch", "key-1", `{"notifications":[`+body+`]}`)
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("same key on the batch endpoint: %d %s, want 422", status, batch)
	}
	for _, key := range []string{strings.Repeat("k", 256), "ключ"} {
		status, bad := s.postKeyed(t, "/admin/notifications", key, body)
		if status != http.StatusBadRequest {
			t.Fatalf("key %q: %d %s, want 400", key, status, bad)
		}
	}
	if n := s.countEvents(t); n != 1 {
		t.Fatalf("log holds %d events, want 1", n)
	}

	// Kept across a restart.
	s.shutdown(t)
	s2 := startServer(t, "--db", s.dbPath)
	status, afterRestart := s2.postKeyed(t, "/admin/notifications", "key-1", body)
	if status != http.StatusCreated || afterRestart != first {
		t.Fatalf("retry after restart: %d %s, want the first answer %s", status, afterRestart, first)
	}
	if n := s2.countEvents(t); n != 1 {
		t.Fatalf("after restart the log holds %d events, want 1", n)
	}
}

func TestConcurrentDuplicatesCreateOnce(t *testing.T) {
	s := startServer(t)
	const tries = 16
	answers := make([]string, tries)
	statuses := make([]int, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			statuses[i], answers[i] = s.postKeyed(t, "/admin/notifications/batch", "same",
				`{"notifications":[{"users":["a","b"],"data":"x"},{"broadcast":true,"data":"y"}]}`)
		})
	}
	wg.Wait()
	for i := range tries {
		if statuses[i] != http.StatusCreated || answers[i] != answers[0] {
			t.Fatalf("try %d: %d %s, want 201 and %s", i, statuses[i], answers[i], answers[0])
		}
	}
	if n := s.countEvents(t); n != 3 {
		t.Fatalf("%d concurrent duplicates created %d events, want 3", tries, n)
	}
}
