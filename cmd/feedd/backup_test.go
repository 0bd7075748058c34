package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// allEvents lists the whole log through the admin API.
func (s *testServer) allEvents(t *testing.T) []apiEvent {
	t.Helper()
	var out []apiEvent
	after := int64(0)
	for {
		status, body := s.do(t, http.MethodGet, fmt.Sprintf("/admin/notifications?after=%d&limit=1000", after), s.adminToken(t), "")
		var page struct {
			Events    []apiEvent
			HasMore   bool  `json:"has_more"`
			NextAfter int64 `json:"next_after"`
		}
		if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil {
			t.Fatalf("list: %d %s", status, body)
		}
		out = append(out, page.Events...)
		if !page.HasMore {
			return out
		}
		after = page.NextAfter
	}
}

func TestBackupOfALiveDatabase(t *testing.T) {
	sqliteOnly(t) // PostgreSQL is backed up with pg_dump
	s := startServer(t)
	for i := range 50 {
		s.post(t, fmt.Sprintf(`{"user":"alice","data":"%d"}`, i))
	}
	s.post(t, `{"broadcast":true,"type":"news","data":{"n":1}}`)

	// Back up while publishers keep writing.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	admin := s.adminToken(t)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodPost, s.base+"/admin/notifications",
				strings.NewReader(fmt.Sprintf(`{"user":"bob","data":"during %d"}`, i)))
			req.Header.Set("Authorization", "Bearer "+admin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("post during the backup: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("post during the backup: %d", resp.StatusCode)
				return
			}
		}
	})
	dst := filepath.Join(t.TempDir(), "copy.db")
	code, out, stderr := runCmd(t, nil, "backup", "--db", s.dbPath, dst)
	close(stop)
	wg.Wait()
	if code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("backup: exit %d %q %q", code, out, stderr)
	}
	if code, _, _ := runCmd(t, nil, "backup", "--db", s.dbPath, dst); code != 2 {
		t.Fatalf("backup onto an existing file: exit %d, want 2", code)
	}

	code, status, _ := runCmd(t, nil, "migrate", "status", "--db", dst)
	if code != 0 || strings.Contains(status, "pending") {
		t.Fatalf("the copy is not migrated: %q", status)
	}

	// The copy is a consistent prefix of the live log and serves it.
	original := s.allEvents(t)
	c := startServer(t, "--db", dst)
	copied := c.allEvents(t)
	if len(copied) < 51 || len(copied) > len(original) {
		t.Fatalf("copy holds %d events, the original %d", len(copied), len(original))
	}
	for i, e := range copied {
		o := original[i]
		if e.ID != o.ID || e.User != o.User || string(e.Data) != string(o.Data) {
			t.Fatalf("copy event %d is %+v, the original %+v", i, e, o)
		}
	}
	replay := c.openFeed(t, "token="+c.userToken(t, "alice", time.Hour)+"&last_event_id=0", nil)
	if got := replay.nextIDs(t, 51); got[50] != original[50].ID {
		t.Fatalf("replay from the copy ends %d, want %d", got[50], original[50].ID)
	}
}
