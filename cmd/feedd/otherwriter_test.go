package main

import (
	"database/sql"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestRowsInsertedWithSQLAreDelivered inserts rows the way README.md tells
// an application to, through its own connection to the database file.
func TestRowsInsertedWithSQLAreDelivered(t *testing.T) {
	s := startServer(t, "--poll-interval", "20ms")
	alice := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)

	other, err := sql.Open("sqlite", "file:"+s.dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`INSERT INTO events (user_id, type, data) VALUES ('alice', 'message', 'hello')`); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(`INSERT INTO events (user_id, type, data, data_json) VALUES (NULL, 'news', '{"n":1}', 1)`); err != nil {
		t.Fatal(err)
	}
	if ev := alice.next(t); ev.Data != "hello" || ev.Type != "" {
		t.Fatalf("first row arrived as %+v", ev)
	}
	if ev := alice.next(t); ev.Data != `{"n":1}` || ev.Type != "news" {
		t.Fatalf("broadcast row arrived as %+v", ev)
	}
	got := s.post(t, `{"user":"alice","data":"after"}`)
	if got[0].ID != 3 {
		t.Fatalf("feedd's own insert after two foreign rows got id %d, want 3", got[0].ID)
	}
}
