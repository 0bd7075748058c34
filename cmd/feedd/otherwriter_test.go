package main

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/db"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// insertAsApp inserts into the server's database with SQL, as an
// application sharing it would (README, "Publishing from your own app
// with SQL"): statements in SQLite's dialect, and $1-style placeholders
// for PostgreSQL where needed.
func insertAsApp(t *testing.T, s *testServer, statements ...string) {
	t.Helper()
	ctx := context.Background()
	if db.IsPostgresURL(s.dbPath) {
		conn, err := pgx.Connect(ctx, s.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, q := range statements {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		return
	}
	other, err := sql.Open("sqlite", "file:"+s.dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, q := range statements {
		if _, err := other.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestRowsInsertedWithSQLAreDelivered inserts rows the way README.md tells
// an application to, through its own connection to the database.
func TestRowsInsertedWithSQLAreDelivered(t *testing.T) {
	s := startServer(t, "--poll-interval", "20ms")
	alice := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	jsonTrue := "1"
	if onPostgres() {
		jsonTrue = "true"
	}
	insertAsApp(t, s,
		`INSERT INTO events (user_id, type, data) VALUES ('alice', 'message', 'hello')`,
		`INSERT INTO events (user_id, type, data, data_json) VALUES (NULL, 'news', '{"n":1}', `+jsonTrue+`)`)
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
