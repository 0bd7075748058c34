package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sqliteShell returns the path of the system's sqlite3 shell. Without one
// the test skips, except in CI, whose .ci/run installs Debian's.
func sqliteShell(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("sqlite3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no sqlite3 shell; .ci/run installs Debian's sqlite3 package")
		}
		t.Skip("no sqlite3 shell on this machine (apt-get install sqlite3)")
	}
	return path
}

// TestREADMESQLWorksWithTheSQLiteShell runs the statements README gives an
// application through the system's sqlite3 shell, an older SQLite than the
// one feedd embeds (Debian 12's is 3.40), against a running server's
// database: every row is delivered as README says, with a created_at of
// now, and a row the API would refuse is refused.
func TestREADMESQLWorksWithTheSQLiteShell(t *testing.T) {
	sqliteOnly(t)
	shell := sqliteShell(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## Publishing from your own app with SQL\n")
	m := regexp.MustCompile("(?s)```sql\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("README's SQL section has no sql block")
	}
	statements := m[1]

	s := startServer(t, "--poll-interval", "20ms")
	alice := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	bob := s.openFeed(t, "token="+s.userToken(t, "bob", time.Hour), nil)
	version, _ := exec.Command(shell, "-version").Output()
	t.Logf("sqlite3 shell %s", strings.TrimSpace(string(version)))

	start := time.Now()
	out, err := exec.Command(shell, "-bail", "-cmd", ".timeout 5000", s.dbPath, statements).CombinedOutput()
	if err != nil {
		t.Fatalf("README's SQL through %s: %v\n%s", shell, err, out)
	}
	for _, want := range []sseEvent{{Data: "hello"}, {Type: "news", Data: `{"n":1}`}} {
		if got := alice.next(t); got.Type != want.Type || got.Data != want.Data {
			t.Fatalf("alice got %+v, want %+v", got, want)
		}
	}
	for _, want := range []sseEvent{{Type: "news", Data: `{"n":1}`}, {Data: "line one\nline two"}} {
		if got := bob.next(t); got.Type != want.Type || got.Data != want.Data {
			t.Fatalf("bob got %+v, want %+v", got, want)
		}
	}
	for _, e := range s.allEvents(t) {
		created, err := time.Parse(time.RFC3339, e.CreatedAt)
		if err != nil || created.Before(start.Add(-time.Second)) || created.After(time.Now().Add(time.Second)) {
			t.Errorf("event %d was created at %q, not now (%s)", e.ID, e.CreatedAt, start.UTC().Format(time.RFC3339))
		}
		if e.ID == 2 && string(e.Data) != `{"n":1}` {
			t.Errorf("the JSON row reads back as %s, want the JSON value", e.Data)
		}
	}

	out, err = exec.Command(shell, "-bail", "-cmd", ".timeout 5000", s.dbPath,
		`INSERT INTO events (user_id, type, data) VALUES ('alice', 'feed.reset', '{}');`).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "type_is_an_event_type") {
		t.Fatalf("a feed.* row through the shell: %v %s, want the type_is_an_event_type check to refuse it", err, out)
	}
}
