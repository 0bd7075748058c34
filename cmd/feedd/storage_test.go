package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the unprivileged user a test runs feedd as when it runs as
// root, which file permissions do not stop.
const nobody = 65534

// storageError reads a JSON error body and checks that it names the fault
// with all of words.
func storageError(t *testing.T, what string, status int, body []byte, words ...string) {
	t.Helper()
	var e struct{ Error string }
	if status != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil {
		t.Fatalf("%s: %d %s, want 503 with a JSON error", what, status, body)
	}
	for _, w := range words {
		if !strings.Contains(e.Error, w) {
			t.Fatalf("%s: error %q does not say %q", what, e.Error, w)
		}
	}
}

// waitReady polls /readyz until it answers want, and returns its last body.
func waitReady(t *testing.T, s *testServer, want int) []byte {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		status, body := s.do(t, http.MethodGet, "/readyz", "", "")
		if status == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %d %s, want %d", status, body, want)
		}
		time.Sleep(20 * time.Millisecond) // polling a server's state: nothing to wait on
	}
}

// postData publishes data to alice and returns the status and body.
func postData(t *testing.T, s *testServer, data string) (int, []byte) {
	t.Helper()
	return s.do(t, http.MethodPost, "/admin/notifications", s.adminToken(t), fmt.Sprintf(`{"user":"alice","data":%q}`, data))
}

// createdIDs returns the ids of a 201 answer.
func createdIDs(t *testing.T, body []byte) []int64 {
	t.Helper()
	var out struct{ Events []apiEvent }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return eventIDs(out.Events)
}

// checkStored fails unless every id answered 201 is in the log.
func checkStored(t *testing.T, s *testServer, answered []int64) {
	t.Helper()
	stored := map[int64]bool{}
	for _, e := range s.allEvents(t) {
		stored[e.ID] = true
	}
	for _, id := range answered {
		if !stored[id] {
			t.Fatalf("id %d was answered 201 but is not in the log", id)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes for the test, or skips it where
// this process may not mount.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): needs root", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// TestStorageFaultDiskFull fills the file system under a running server:
// publishes answer 503 saying the disk is full, never 500, /readyz answers
// 503, nothing answered 201 is missing, and once there is room again feedd
// goes on by itself.
func TestStorageFaultDiskFull(t *testing.T) {
	dir := mountTmpfs(t, 8<<20)
	s := startServer(t, "--db", filepath.Join(dir, "feedd.db"))
	answered := eventIDs(s.post(t, `{"user":"alice","data":"before"}`))
	fill(t, filepath.Join(dir, "filler"))

	data := strings.Repeat("x", 32<<10)
	for i := 0; ; i++ {
		status, body := postData(t, s, data)
		if status == http.StatusCreated {
			answered = append(answered, createdIDs(t, body)...)
			if i == 1000 {
				t.Fatal("1000 publishes of 32 KiB went into a full 8 MiB file system")
			}
			continue
		}
		storageError(t, "a publish on a full disk", status, body, "disk", "full")
		break
	}
	status, body := s.do(t, http.MethodGet, "/readyz", "", "")
	storageError(t, "/readyz on a full disk", status, body, "disk", "full")
	status, body = postData(t, s, "small")
	storageError(t, "a small publish on a full disk", status, body, "disk", "full")

	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s, http.StatusOK)
	answered = append(answered, eventIDs(s.post(t, `{"user":"alice","data":"after"}`))...)
	checkStored(t, s, answered)
}

// TestStorageFaultMissingDatabase removes the database's directory under a
// running server, which SQLite does not notice: publishes must answer 503
// instead of 201s that vanish at exit. Putting a backup back in place is a
// restore, after which feedd goes on, with ids beyond any it gave before.
func TestStorageFaultMissingDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "feedd.db")
	s := startServer(t, "--db", dbPath)
	before := eventIDs(s.post(t, `{"user":"alice","data":"before"}`))
	backup := filepath.Join(t.TempDir(), "backup.db")
	if code, out, stderr := runCmd(t, nil, "backup", "--db", dbPath, backup); code != 0 {
		t.Fatalf("backup: exit %d %s %s", code, out, stderr)
	}
	last := eventIDs(s.post(t, `{"user":"alice","data":"lost with the directory"}`))[0]

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	status, body := postData(t, s, "into the void")
	storageError(t, "a publish with the database removed", status, body, "missing")
	status, body = s.do(t, http.MethodGet, "/readyz", "", "")
	storageError(t, "/readyz with the database removed", status, body, "missing")

	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, backup, dbPath)
	waitReady(t, s, http.StatusOK)
	after := eventIDs(s.post(t, `{"user":"alice","data":"after"}`))
	if after[0] <= last {
		t.Fatalf("after the restore the log gave id %d, which it had given before (up to %d)", after[0], last)
	}
	checkStored(t, s, append(before, after...))
}

// TestStorageFaultReadOnly starts feedd on a database it may read but not
// write: it starts, but /readyz and publishes answer 503 saying the
// database is read-only, until the file is made writable, when it goes on
// without a restart.
func TestStorageFaultReadOnly(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// As root, run feedd as nobody, from a copy of the test binary
		// nobody may run, on a directory nobody owns; t.TempDir's parent
		// is private to root.
		dir = openTempDir(t)
		bin := openTempDir(t)
		copied := filepath.Join(bin, "feedd.test")
		copyExecutable(t, exe, copied)
		exe = copied
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		cred = &syscall.Credential{Uid: nobody, Gid: nobody}
	}
	dbPath := filepath.Join(dir, "feedd.db")
	p := startProcessAs(t, exe, cred, dbPath)
	before := eventIDs(p.post(t, `{"user":"alice","data":"before"}`))
	p.signal(t, syscall.SIGTERM)
	if code, _ := p.wait(t); code != 0 {
		t.Fatalf("first run exited %d", code)
	}

	if err := os.Chmod(dbPath, 0o444); err != nil {
		t.Fatal(err)
	}
	p = startProcessAs(t, exe, cred, dbPath)
	status, body := p.do(t, http.MethodGet, "/readyz", "", "")
	storageError(t, "/readyz on a read-only database", status, body, "read-only")
	status, body = postData(t, p.testServer, "refused")
	storageError(t, "a publish to a read-only database", status, body, "read-only")
	if got := p.allEvents(t); len(got) != 1 || got[0].ID != before[0] {
		t.Fatalf("a read-only database lists %v, want the one event written before", eventIDs(got))
	}

	if err := os.Chmod(dbPath, 0o644); err != nil {
		t.Fatal(err)
	}
	waitReady(t, p.testServer, http.StatusOK)
	after := eventIDs(p.post(t, `{"user":"alice","data":"after"}`))
	checkStored(t, p.testServer, append(before, after...))
	p.signal(t, syscall.SIGTERM)
	if code, _ := p.wait(t); code != 0 {
		t.Fatalf("second run exited %d\n%s", code, tail(p.stderr.String(), 20))
	}
}

// openTempDir makes a directory that every user may enter, removed at the
// end of the test.
func openTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "feedd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyExecutable copies the program at src to dst, runnable by anyone.
func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// corruptPages overwrites the pages of the file at path from the fraction
// from to the fraction to of its length with garbage.
func corruptPages(t *testing.T, path string, from, to float64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	pages := fi.Size() / page
	garbage := make([]byte, page)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	for p := int64(float64(pages) * from); p < int64(float64(pages)*to); p++ {
		if _, err := f.WriteAt(garbage, p*page); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStorageFaultUnreadablePages corrupts the middle of a stopped
// server's database: a feed whose replay cannot be read answers an error
// status that says so before it starts streaming (EventSource does not
// retry an error status; it would reopen a stream that ends for ever), and
// so does the history it cannot read.
func TestStorageFaultUnreadablePages(t *testing.T) {
	sqliteOnly(t)
	s := startServer(t)
	var b strings.Builder
	b.WriteString(`{"notifications":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"user":"alice","data":"%d %s"}`, i, strings.Repeat("x", 1000))
	}
	b.WriteString(`]}`)
	if status, body := s.do(t, http.MethodPost, "/admin/notifications/batch", s.adminToken(t), b.String()); status != http.StatusCreated {
		t.Fatalf("batch: %d %s", status, body)
	}
	s.shutdown(t)
	corruptPages(t, s.dbPath, 0.3, 0.6)

	r := startServer(t, "--db", s.dbPath)
	tok := r.userToken(t, "alice", time.Hour)
	resp, cancel := r.openRaw(t, "last_event_id=0&token="+tok, nil)
	body, _ := io.ReadAll(resp.Body)
	cancel()
	storageError(t, "a feed replaying unreadable pages", resp.StatusCode, body, "cannot be read", "backup")
	status, body := r.do(t, http.MethodGet, "/v1/notifications?after=0&limit=1000", tok, "")
	storageError(t, "history over unreadable pages", status, body, "cannot be read")
}
