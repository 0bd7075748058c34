package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// copyFile copies src to dst, which must not exist.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// loseDatabase removes a stopped server's database file and its WAL.
func loseDatabase(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// TestRestoredBackupNeverReissuesIDs follows an operator who backs up at id
// 3, goes on to id 6 (which a client sees), loses the live file, puts the
// backup in its place and starts feedd again: the new events must get ids
// no client can already hold, a client resuming from 6 must get every one
// of them and be told that history after its cursor was lost, and a client
// resuming from inside the backup must get them too.
func TestRestoredBackupNeverReissuesIDs(t *testing.T) {
	for _, how := range []string{"feedd backup of the live database", "copy of the stopped database"} {
		t.Run(how, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "feedd.db")
			backup := filepath.Join(t.TempDir(), "backup.db")
			s := startServer(t, "--db", dbPath)
			for i := range 3 {
				s.post(t, fmt.Sprintf(`{"user":"alice","data":"before %d"}`, i))
			}
			if how == "copy of the stopped database" {
				s.shutdown(t)
				copyFile(t, dbPath, backup)
				s = startServer(t, "--db", dbPath)
			} else if code, out, stderr := runCmd(t, nil, "backup", "--db", dbPath, backup); code != 0 {
				t.Fatalf("backup: exit %d %s %s", code, out, stderr)
			}
			var seen []int64
			for i := range 3 {
				seen = append(seen, s.post(t, fmt.Sprintf(`{"user":"alice","data":"lost %d"}`, i))[0].ID)
			}
			f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour)+"&last_event_id=0", nil)
			held := f.nextIDs(t, 6)
			if held[5] != seen[2] {
				t.Fatalf("the client saw %v, want it to end with %d", held, seen[2])
			}
			f.cancel()
			s.shutdown(t)

			loseDatabase(t, dbPath)
			copyFile(t, backup, dbPath)
			r := startServer(t, "--db", dbPath)
			var fresh []int64
			for i := range 4 {
				fresh = append(fresh, r.post(t, fmt.Sprintf(`{"user":"alice","data":"after %d"}`, i))[0].ID)
			}
			if fresh[0] <= held[5] {
				t.Fatalf("after the restore the log issued %v again: the client already holds ids up to %d", fresh, held[5])
			}

			tok := r.userToken(t, "alice", time.Hour)
			lost := r.openFeed(t, "token="+tok, http.Header{"Last-Event-Id": {fmt.Sprint(held[5])}})
			notice := lost.next(t)
			var data struct {
				LastEventID      int64  `json:"last_event_id"`
				OldestRetainedID int64  `json:"oldest_retained_id"`
				Reason           string `json:"reason"`
			}
			if err := json.Unmarshal([]byte(notice.Data), &data); notice.Type != "feed.truncated" || notice.ID != "" || err != nil ||
				data.LastEventID != held[5] || data.OldestRetainedID != fresh[0] || data.Reason != "restored" {
				t.Fatalf("a client resuming from the lost id %d first got %+v, want feed.truncated without an id naming %d and reason restored",
					held[5], notice, fresh[0])
			}
			if got := lost.nextIDs(t, 4); !slices.Equal(got, fresh) {
				t.Fatalf("a client resuming from the lost id %d got %v, want every event written after the restore, %v", held[5], got, fresh)
			}

			kept := r.openFeed(t, "token="+tok, http.Header{"Last-Event-Id": {fmt.Sprint(held[2])}})
			if got := kept.nextIDs(t, 4); !slices.Equal(got, fresh) {
				t.Fatalf("a client resuming from %d, which the backup holds, got %v, want %v", held[2], got, fresh)
			}
		})
	}
}
