package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/feedd/feedd/migrations"
)

// refused checks that feedd stopped with exit 2 and one line on stderr
// holding want, before printing anything on stdout.
func refused(t *testing.T, what string, code int, stdout, stderr, want string) {
	t.Helper()
	if code != 2 || stdout != "" {
		t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 and nothing on stdout", what, code, stdout, stderr)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "feedd: ") || !strings.Contains(stderr, want) {
		t.Errorf("%s: stderr %q, want one line starting with feedd: and holding %q", what, stderr, want)
	}
}

func TestSettingsAreCheckedBeforeTheBanner(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t)
	_, otherKey, _ := selfSigned(t)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	long := "https://" + strings.Repeat("a", 5000) + ".example/path"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing cert", []string{"--tls-cert", missing, "--tls-key", keyFile}, missing},
		{"missing key", []string{"--tls-cert", certFile, "--tls-key", missing}, missing},
		{"key of another cert", []string{"--tls-cert", certFile, "--tls-key", otherKey}, "private key does not match"},
		{"garbage PEM", []string{"--tls-cert", garbage, "--tls-key", keyFile}, "--tls-cert"},
		{"origin without scheme", []string{"--cors-origins", "good.example"}, "write https://good.example"},
		{"origin with a path", []string{"--cors-origins", "https://good.example/app"}, "has a path"},
		{"origin with a query", []string{"--cors-origins", "https://good.example?x=1"}, "has a query"},
		{"origin with a fragment", []string{"--cors-origins", "https://good.example#top"}, "has a fragment"},
		{"origin with user info", []string{"--cors-origins", "https://me@good.example"}, "has user info"},
		{"origin of another scheme", []string{"--cors-origins", "ftp://good.example"}, "other than http or https"},
		{"origin without host", []string{"--cors-origins", "https://"}, "has no host"},
		{"wildcard origin", []string{"--cors-origins", "https://*.good.example"}, "wildcards"},
		{"one bad origin among good", []string{"--cors-origins", "https://good.example, good2.example"}, "good2.example"},
		{"database in a missing directory", []string{"--db", filepath.Join(dir, "no", "such", "x.db")},
			"directory " + filepath.Join(dir, "no", "such") + " does not exist; create it or choose another path"},
		{"database in a file", []string{"--db", filepath.Join(garbage, "x.db")}, "is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--db", filepath.Join(t.TempDir(), "feedd.db"), "--addr", "127.0.0.1:0", "--jwt-secret", ""}, tc.args...)
			code, stdout, stderr := runCmd(t, nil, args...)
			refused(t, strings.Join(tc.args, " "), code, stdout, stderr, tc.want)
			if !strings.Contains(stderr, "origin is scheme://host[:port]") && strings.Contains(tc.name, "origin") {
				t.Errorf("stderr %q does not say what an origin looks like", stderr)
			}
		})
	}
	t.Run("long origin", func(t *testing.T) {
		code, stdout, stderr := runCmd(t, nil, "serve", "--db", filepath.Join(t.TempDir(), "feedd.db"), "--cors-origins", long)
		refused(t, "a 5000-byte origin", code, stdout, stderr, "has a path")
		if len(stderr) > 400 {
			t.Errorf("stderr is %d bytes, quoting the whole origin back: %.200q...", len(stderr), stderr)
		}
	})
}

func TestOriginsAreNormalised(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                   nil,
		"https://good.example/":              {"https://good.example"},
		"HTTPS://GOOD.EXAMPLE":               {"https://good.example"},
		"https://good.example:443":           {"https://good.example"},
		"http://good.example:80/":            {"http://good.example"},
		"https://good.example:80":            {"https://good.example:80"},
		"http://localhost:03000":             {"http://localhost:3000"},
		"http://[::1]:8080, http://[::1]":    {"http://[::1]:8080", "http://[::1]"},
		" https://a.example ,, http://b.ex ": {"https://a.example", "http://b.ex"},
		"https://a.example,*":                {"*"},
	} {
		got, err := parseOrigins(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseOrigins(%q) = %q, %v; want %q", in, got, err, want)
		}
	}

	// The server gets them clean: a browser's Origin header matches.
	s := startServer(t, "--cors-origins", "HTTPS://Good.Example:443/")
	bearer := http.Header{"Authorization": {"Bearer " + s.userToken(t, "alice", waitLong)}}
	_, h := corsAsk(t, s, http.MethodGet, "/v1/notifications", "https://good.example", bearer, "")
	if got := h.Get("Access-Control-Allow-Origin"); got != "https://good.example" {
		t.Fatalf("Access-Control-Allow-Origin %q for https://good.example, want it allowed", got)
	}
}

func TestDatabaseDirectoryMustExist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no", "such")
	db := filepath.Join(dir, "x.db")
	want := "--db " + db + ": directory " + dir + " does not exist; create it or choose another path"
	for _, args := range [][]string{
		{"serve", "--db", db, "--addr", "127.0.0.1:0"},
		{"token", "--db", db, "--sub", "alice"},
		{"migrate", "status", "--db", db},
		{"migrate", "up", "--db", db},
		{"backup", "--db", db, filepath.Join(t.TempDir(), "copy.db")},
	} {
		code, stdout, stderr := runCmd(t, nil, args...)
		refused(t, strings.Join(args, " "), code, stdout, stderr, want)
	}
}

func TestBackupOfAMissingDatabaseCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	db, dst := filepath.Join(dir, "feedd.db"), filepath.Join(dir, "copy.db")
	code, stdout, stderr := runCmd(t, nil, "backup", "--db", db, dst)
	refused(t, "backup of a missing database", code, stdout, stderr, db+" does not exist yet")
	for _, p := range []string{db, dst} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("backup of a missing database left %s behind: %v", p, err)
		}
	}
}

// newestMigration is the highest version among the embedded migrations.
func newestMigration(t *testing.T) int64 {
	t.Helper()
	names, err := fs.Glob(migrations.SQLite(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var newest int64
	for _, n := range names {
		v, err := strconv.ParseInt(n[:strings.IndexByte(n, '_')], 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", n, err)
		}
		newest = max(newest, v)
	}
	return newest
}

func TestNewerSchemaIsRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "feedd.db")
	if code, _, stderr := runCmd(t, nil, "migrate", "up", "--db", db); code != 0 {
		t.Fatalf("migrate up: exit %d %s", code, stderr)
	}
	// What a newer feedd's migration 99 leaves behind.
	other, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, 1)"); err != nil {
		t.Fatal(err)
	}
	other.Close()
	want := fmt.Sprintf("database %s is at schema version 99, newer than this feedd knows (%d): run the feedd release that wrote it, or restore a backup", db, newestMigration(t))

	for _, args := range [][]string{
		{"migrate", "status", "--db", db},
		{"migrate", "up", "--db", db},
		{"serve", "--db", db, "--addr", "127.0.0.1:0", "--jwt-secret", testSecret},
	} {
		code, stdout, stderr := runCmd(t, nil, args...)
		if code == 0 || stderr != "feedd: "+want+"\n" {
			t.Errorf("%s: exit %d, stderr %q; want non-zero and %q", strings.Join(args, " "), code, stderr, want)
		}
		if strings.Contains(stdout, "listening") || strings.Contains(stdout, "applied 0") {
			t.Errorf("%s: stdout %q", strings.Join(args, " "), stdout)
		}
	}
}

func TestSecretFileIsGitIgnored(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("git", "-C", root, "rev-parse", "--git-dir").Run(); err != nil {
		t.Skipf("%s is not a git checkout", root)
	}
	for _, p := range []string{"feedd.db.secret", "data/prod.db.secret"} {
		err := exec.Command("git", "-C", root, "check-ignore", "-q", "--no-index", p).Run()
		if err != nil {
			t.Errorf("git check-ignore %s: %v; the signing secret would be committed by git add -A", p, err)
		}
	}
}

func TestSecretReadableByOthersWarns(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "jwt-secret")
	if err := os.WriteFile(file, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, nil, "token", "--jwt-secret-file", file, "--sub", "alice")
	if code != 0 || stderr != "" {
		t.Fatalf("token with a private secret file: exit %d, stderr %q", code, stderr)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, nil, "token", "--jwt-secret-file", file, "--sub", "alice")
	if code != 0 || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("token with a shared secret file: exit %d, stdout %q, stderr %q; want a token", code, stdout, stderr)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "feedd: warning: ") || !strings.Contains(stderr, "chmod 600 "+file) {
		t.Fatalf("token with a shared secret file: stderr %q, want one warning saying chmod 600 %s", stderr, file)
	}

	// The server warns through its log about the generated secret too,
	// and still starts.
	db := filepath.Join(dir, "feedd.db")
	if err := os.WriteFile(db+".secret", []byte(testSecret+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--db", db, "--jwt-secret", "")
	if log := s.stderr.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "chmod 600 "+db+".secret") {
		t.Fatalf("no warning about the readable secret in the log:\n%s", log)
	}
}

func TestTokenNeedsTheServersSecret(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "feedd.db")
	code, stdout, stderr := runCmd(t, nil, "token", "--db", db, "--sub", "alice")
	refused(t, "token with no secret", code, stdout, stderr,
		"no signing secret at "+db+".secret: start feedd serve first (it generates one), or pass --db, --jwt-secret or --jwt-secret-file")
	if _, err := os.Stat(db + ".secret"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("feedd token made a secret: %v", err)
	}

	// Run where the database is, it names the file as a relative path.
	t.Chdir(dir)
	code, stdout, stderr = runCmd(t, nil, "token", "--admin")
	refused(t, "token with no secret", code, stdout, stderr, "no signing secret at ./feedd.db.secret:")
}

// helpFlags lists the flags a --help output documents.
func helpFlags(help string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(help, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, stdout, stderr := runCmd(t, nil, args...)
		if code != 0 || stderr != "" {
			t.Errorf("feedd %s: exit %d, stderr %q", args[0], code, stderr)
		}
		for _, cmd := range []string{"feedd [serve]", "feedd token", "feedd migrate status|up", "feedd backup [--db FILE] PATH", "feedd version"} {
			if !strings.Contains(stdout, cmd) {
				t.Errorf("feedd %s does not list %s:\n%s", args[0], cmd, stdout)
			}
		}
	}

	for _, tc := range []struct {
		args  []string
		usage string
		flags []string
	}{
		{[]string{"token", "--help"}, "Usage: feedd token (--sub USER | --admin)",
			[]string{"admin", "db", "jwt-audience", "jwt-issuer", "jwt-secret", "jwt-secret-file", "sub", "ttl"}},
		{[]string{"migrate", "--help"}, "Usage: feedd migrate status|up [--db FILE|URL]\n", []string{"db"}},
		{[]string{"migrate", "status", "--help"}, "Usage: feedd migrate status|up [--db FILE|URL]\n", []string{"db"}},
		{[]string{"migrate", "up", "-h"}, "Usage: feedd migrate status|up [--db FILE|URL]\n", []string{"db"}},
		{[]string{"backup", "--help"}, "Usage: feedd backup [--db FILE] PATH\n", []string{"db"}},
		{[]string{"version", "--help"}, "Usage: feedd version\n", nil},
	} {
		code, stdout, stderr := runCmd(t, nil, tc.args...)
		what := "feedd " + strings.Join(tc.args, " ")
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, tc.usage) {
			t.Errorf("%s: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and %q first", what, code, stderr, stdout, tc.usage)
		}
		if got := helpFlags(stdout); !slices.Equal(got, tc.flags) {
			t.Errorf("%s lists the flags %q, want %q", what, got, tc.flags)
		}
	}
	if _, stdout, _ := runCmd(t, nil, "backup", "--help"); !strings.Contains(stdout, "PATH, which must not exist yet") {
		t.Errorf("feedd backup --help does not say what PATH is:\n%s", stdout)
	}
}
