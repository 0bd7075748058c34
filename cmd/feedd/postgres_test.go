package main

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/feedd/feedd/internal/feedtest"
)

// TestPostgresWakesOtherProcesses runs two servers on one PostgreSQL
// database with a poll interval far longer than the test: a notification
// posted through one reaches a feed on the other at once, woken by
// LISTEN/NOTIFY, and a feed resumes on either with the same events.
func TestPostgresWakesOtherProcesses(t *testing.T) {
	url := feedtest.PostgresURL(t)
	a := startServer(t, "--db", url, "--poll-interval", "1h")
	b := startServer(t, "--db", url, "--poll-interval", "1h")
	onB := b.openFeed(t, "token="+b.userToken(t, "alice", time.Hour), nil)
	posted := a.post(t, `{"user":"alice","data":"through a"}`)[0]
	// Within waitLong, far less than an hour's poll: b was woken.
	if got := onB.nextIDs(t, 1); got[0] != posted.ID {
		t.Fatalf("the feed on b got %v, want %d", got, posted.ID)
	}
	also := b.post(t, `{"broadcast":true,"data":"through b"}`)[0]
	for _, s := range []*testServer{a, b} {
		f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour)+"&last_event_id=0", nil)
		if got := f.nextIDs(t, 2); got[0] != posted.ID || got[1] != also.ID {
			t.Fatalf("resumed on %s the feed got %v, want %d and %d", s.base, got, posted.ID, also.ID)
		}
	}
	for _, s := range []*testServer{a, b} {
		if status, body := s.do(t, http.MethodGet, "/admin/notifications", s.adminToken(t), ""); status != http.StatusOK ||
			!strings.Contains(string(body), "through a") || !strings.Contains(string(body), "through b") {
			t.Fatalf("%s lists %d %s, want both notifications", s.base, status, body)
		}
	}
}

// TestPostgresPasswordNeverShows starts feedd on PostgreSQL with the right
// password and with a wrong one: the banner and the logs never show it, and
// refused credentials are one line, exit 2, without it.
func TestPostgresPasswordNeverShows(t *testing.T) {
	url := feedtest.PostgresURL(t)
	password := passwordOf(t, url)
	s := startServer(t, "--db", url)
	s.post(t, `{"user":"alice","data":"x"}`)
	s.shutdown(t)
	for name, out := range map[string]string{"stdout": s.stdout.String(), "stderr": s.stderr.String()} {
		if strings.Contains(out, password) {
			t.Errorf("the password is in feedd's %s:\n%s", name, out)
		}
	}
	wrong := strings.Replace(url, ":"+password+"@", ":not-"+password+"@", 1)
	code, stdout, stderr := runCmd(t, map[string]string{"FEEDD_JWT_SECRET": testSecret}, "serve", "--db", wrong, "--addr", "127.0.0.1:0")
	if code != 2 || strings.Count(stderr, "\n") != 1 || stdout != "" {
		t.Fatalf("wrong password: exit %d, stdout %q, stderr %q; want exit 2 and one line", code, stdout, stderr)
	}
	if strings.Contains(stderr, password) {
		t.Fatalf("the refused password is in the error: %q", stderr)
	}
	for _, cmd := range [][]string{{"migrate", "status", "--db", wrong}, {"migrate", "up", "--db", wrong}} {
		if code, _, stderr := runCmd(t, nil, cmd...); code == 0 || strings.Contains(stderr, password) {
			t.Fatalf("feedd %s: exit %d, stderr %q; want a failure without the password", cmd[:2], code, stderr)
		}
	}
	if code, _, stderr := runCmd(t, nil, "backup", "--db", url, t.TempDir()+"/x.db"); code != 2 || !strings.Contains(stderr, "pg_dump") {
		t.Fatalf("backup of a PostgreSQL database: exit %d, %q; want exit 2 naming pg_dump", code, stderr)
	}
}

// passwordOf returns the password of a PostgreSQL URL, failing the test
// when there is none (the test server has one).
func passwordOf(t *testing.T, rawURL string) string {
	t.Helper()
	_, rest, _ := strings.Cut(rawURL, "://")
	userinfo, _, ok := strings.Cut(rest, "@")
	_, password, hasPassword := strings.Cut(userinfo, ":")
	if !ok || !hasPassword || password == "" {
		t.Fatalf("the test server's URL has no password")
	}
	return password
}

// ownCluster starts a PostgreSQL cluster of the test's own with
// scripts/postgres.sh, so that the test can stop and restart it, and
// returns its directory and URL. It needs the server's binaries (and, as
// root, the postgres user); without them it skips, except in CI.
func ownCluster(t *testing.T) (dir, url string) {
	t.Helper()
	feedtest.PostgresURL(t) // skips, outside CI, where there is no PostgreSQL
	dir = filepath.Join(openTempDir(t), "cluster")
	out, err := exec.Command("../../scripts/postgres.sh", "start", dir).Output()
	if err != nil {
		t.Fatalf("scripts/postgres.sh start: %v", err)
	}
	t.Cleanup(func() { exec.Command("../../scripts/postgres.sh", "stop", dir).Run() })
	return dir, strings.TrimSpace(string(out))
}

// TestPostgresRestartUnderRunningFeedd stops PostgreSQL under a running
// feedd and starts it again: meanwhile publishes answer 503 with a JSON
// error and /readyz 503, the process keeps running and its feed stays
// open; afterwards everything goes on, with nothing lost and no restart.
func TestPostgresRestartUnderRunningFeedd(t *testing.T) {
	dir, url := ownCluster(t)
	s := startServer(t, "--db", url, "--db-connect-timeout", "1s")
	f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour), nil)
	before := s.post(t, `{"user":"alice","data":"before"}`)[0]
	if got := f.nextIDs(t, 1); got[0] != before.ID {
		t.Fatalf("feed got %v, want %d", got, before.ID)
	}

	if out, err := exec.Command("../../scripts/postgres.sh", "stop", dir).CombinedOutput(); err != nil {
		t.Fatalf("stop PostgreSQL: %v %s", err, out)
	}
	status, body := postData(t, s, "while down")
	storageError(t, "a publish while PostgreSQL is down", status, body, "cannot be reached")
	status, body = s.do(t, http.MethodGet, "/readyz", "", "")
	storageError(t, "/readyz while PostgreSQL is down", status, body, "cannot be reached")
	select {
	case err := <-f.ended:
		t.Fatalf("the feed ended while the database was down: %v", err)
	default:
	}

	if out, err := exec.Command("../../scripts/postgres.sh", "restart", dir).CombinedOutput(); err != nil {
		t.Fatalf("restart PostgreSQL: %v %s", err, out)
	}
	waitReady(t, s, http.StatusOK)
	after := s.post(t, `{"user":"alice","data":"after"}`)[0]
	if got := f.nextIDs(t, 1); got[0] != after.ID {
		t.Fatalf("after the restart the feed got %v, want %d", got, after.ID)
	}
	var datas []string
	for _, e := range s.allEvents(t) {
		datas = append(datas, string(e.Data))
	}
	if strings.Join(datas, " ") != `"before" "after"` {
		t.Fatalf("the log holds %v, want only what was answered 201", datas)
	}
}

// TestPostgresDuplicatesOnTwoProcessesCreateOnce sends the same keyed
// publish to two processes on one database at once: exactly one creates,
// and every try gets its answer.
func TestPostgresDuplicatesOnTwoProcessesCreateOnce(t *testing.T) {
	url := feedtest.PostgresURL(t)
	servers := []*testServer{startServer(t, "--db", url), startServer(t, "--db", url)}
	const tries = 16
	answers := make([]string, tries)
	statuses := make([]int, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			statuses[i], answers[i] = servers[i%2].postKeyed(t, "/admin/notifications/batch", "same",
				`{"notifications":[{"users":["a","b"],"data":"x"},{"broadcast":true,"data":"y"}]}`)
		})
	}
	wg.Wait()
	for i := range tries {
		if statuses[i] != http.StatusCreated || answers[i] != answers[0] {
			t.Fatalf("try %d: %d %s, want 201 and %s", i, statuses[i], answers[i], answers[0])
		}
	}
	for _, s := range servers {
		if n := s.countEvents(t); n != 3 {
			t.Fatalf("%d concurrent duplicates on two processes created %d events, want 3", tries, n)
		}
	}
	code, out, stderr := runCmd(t, nil, "migrate", "status", "--db", url)
	if code != 0 || !strings.Contains(out, "00001") || !strings.Contains(out, "applied") {
		t.Fatalf("migrate status on PostgreSQL: exit %d %q %q", code, out, stderr)
	}
}

// TestPostgresRetentionOnTwoProcesses gives two processes on one database
// the same retention: between them they prune every expired row once, and
// a client resuming from before them on either is told with
// feed.truncated.
func TestPostgresRetentionOnTwoProcesses(t *testing.T) {
	url := feedtest.PostgresURL(t)
	first := startServer(t, "--db", url)
	old := time.Now().Add(-2 * time.Hour).UnixMilli()
	var rows []string
	for i := range 1200 { // more than two batches of 500
		rows = append(rows, fmt.Sprintf(`INSERT INTO events (user_id, data, created_at) VALUES ('alice', 'old %d', %d)`, i, old))
	}
	insertAsAppTo(t, url, rows...)
	fresh := first.post(t, `{"user":"alice","data":"fresh"}`)[0]
	first.shutdown(t)

	servers := []*testServer{startServer(t, "--db", url, "--retention", "1h"), startServer(t, "--db", url, "--retention", "1h")}
	prunedLine := regexp.MustCompile(`retention: pruned old events" count=(\d+)`)
	pruned := 0
	for deadline := time.Now().Add(waitLong); pruned < 1200 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // polling two servers' logs with a deadline
		pruned = 0
		for _, s := range servers {
			for _, m := range prunedLine.FindAllStringSubmatch(s.stderr.String(), -1) {
				n, _ := strconv.Atoi(m[1])
				pruned += n
			}
		}
	}
	for _, s := range servers {
		if strings.Contains(s.stderr.String(), "level=ERROR") {
			t.Fatalf("%s logged an error:\n%s", s.base, s.stderr)
		}
	}
	for _, s := range servers {
		if got := s.allEvents(t); len(got) != 1 || got[0].ID != fresh.ID {
			t.Fatalf("after pruning %s lists %d events, want only the fresh one", s.base, len(got))
		}
		f := s.openFeed(t, "token="+s.userToken(t, "alice", time.Hour)+"&last_event_id=0", nil)
		if ev := f.next(t); ev.Type != "feed.truncated" || !strings.Contains(ev.Data, fmt.Sprintf(`"oldest_retained_id":%d`, fresh.ID)) {
			t.Fatalf("resuming from 0 on %s first got %+v, want feed.truncated naming %d", s.base, ev, fresh.ID)
		}
	}
	if pruned != 1200 {
		t.Fatalf("the two processes pruned %d rows between them, want each of the 1200 old rows once", pruned)
	}
}

// insertAsAppTo inserts into the PostgreSQL database at url with SQL, as
// an application would.
func insertAsAppTo(t *testing.T, url string, statements ...string) {
	t.Helper()
	insertAsApp(t, &testServer{dbPath: url}, statements...)
}
