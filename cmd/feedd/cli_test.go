package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/feedd/feedd/internal/auth"
)

// runCmd runs feedd once with args and env and returns its exit status and
// what it printed.
func runCmd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	err := run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	code = exitCode(err, &errOut)
	return code, out.String(), errOut.String()
}

func TestBadSettingsExit2WithOneLine(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "x.db")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"unknown flag", nil, []string{"serve", "--nope"}},
		{"bad duration", nil, []string{"--db", db, "--heartbeat", "soon"}},
		{"zero poll interval", nil, []string{"--db", db, "--poll-interval", "0s"}},
		{"negative retention", nil, []string{"--db", db, "--retention", "-1h"}},
		{"zero conns", nil, []string{"--db", db, "--max-conns-per-user", "0"}},
		{"tls cert without key", nil, []string{"--db", db, "--tls-cert", "c.pem"}},
		{"bad log format", nil, []string{"--db", db, "--log-format", "xml"}},
		{"short secret", nil, []string{"--db", db, "--jwt-secret", "short"}},
		{"two keys", nil, []string{"--db", db, "--jwt-secret", testSecret, "--jwt-public-key", "k.pem"}},
		{"missing key file", nil, []string{"--db", db, "--jwt-public-key", filepath.Join(dir, "none.pem")}},
		{"bad env value", map[string]string{"FEEDD_RETRY": "often"}, []string{"--db", db}},
		{"unusable address", nil, []string{"--db", db, "--jwt-secret", testSecret, "--addr", "256.0.0.1:1"}},
		{"unknown command", nil, []string{"frobnicate"}},
		{"token without sub", nil, []string{"token", "--db", db}},
		{"migrate without action", nil, []string{"migrate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tc.env, tc.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
			}
			if lines := strings.Count(stderr, "\n"); lines != 1 || !strings.HasPrefix(stderr, "feedd: ") {
				t.Fatalf("stderr %q, want one line starting with feedd:", stderr)
			}
		})
	}
}

func TestGeneratedSecretIsPrivateAndReused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "feedd.db")
	s := startServer(t, "--db", db, "--jwt-secret", "")
	info, err := os.Stat(db + ".secret")
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v, want 0600", info.Mode().Perm())
	}
	secret, err := os.ReadFile(db + ".secret")
	if err != nil {
		t.Fatal(err)
	}

	// feedd token mints with the server's secret.
	code, first, stderr := runCmd(t, nil, "token", "--db", db, "--sub", "alice")
	if code != 0 || stderr != "" {
		t.Fatalf("token: exit %d: %s", code, stderr)
	}
	v, err := auth.NewVerifier(auth.Config{Secret: bytes.TrimSpace(secret)})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(strings.TrimSpace(first))
	if err != nil || claims.Subject != "alice" {
		t.Fatalf("minted token: %+v, %v", claims, err)
	}
	s.openFeed(t, "token="+strings.TrimSpace(first), nil)

	// A restart on the same database uses the same secret and says so.
	s.shutdown(t)
	s = startServer(t, "--db", db, "--jwt-secret", "")
	if !strings.Contains(s.stdout.String(), "Using the JWT signing secret in "+db+".secret") {
		t.Fatalf("start-up did not say which secret it uses:\n%s", s.stdout)
	}
	s.openFeed(t, "token="+strings.TrimSpace(first), nil)
}

func TestBannerCommandsWork(t *testing.T) {
	db := filepath.Join(t.TempDir(), "feedd.db")
	s := startServer(t, "--db", db, "--jwt-secret", "")
	out := s.stdout.String()
	if !strings.Contains(out, "Generated a JWT signing secret in "+db+".secret") {
		t.Fatalf("no line about the generated secret:\n%s", out)
	}
	demo := regexp.MustCompile(`(http://[^ ]+)/#token=([^\s]+)`).FindStringSubmatch(out)
	sub := regexp.MustCompile(`curl -N '[^?]+\?token=([^']+)'`).FindStringSubmatch(out)
	post := regexp.MustCompile(`Bearer ([^']+)' .* -d '([^']+)'`).FindStringSubmatch(out)
	if demo == nil || sub == nil || post == nil {
		t.Fatalf("start-up output lacks the demo URL, the subscribe or the post command:\n%s", out)
	}
	if demo[1] != s.base {
		t.Fatalf("demo URL on %s, server on %s", demo[1], s.base)
	}
	f := s.openFeed(t, "token="+sub[1], nil)
	status, body := s.do(t, "POST", "/admin/notifications", post[1], post[2])
	if status != 201 {
		t.Fatalf("the printed post command got %d %s", status, body)
	}
	if ev := f.next(t); ev.Type != "greeting" || ev.Data != `{"text":"hello"}` {
		t.Fatalf("the printed subscriber received %+v", ev)
	}
}

func TestEnvironmentAndFlagPrecedence(t *testing.T) {
	db := filepath.Join(t.TempDir(), "feedd.db")
	env := map[string]string{"FEEDD_DB": db, "FEEDD_JWT_SECRET": testSecret}
	code, tok, stderr := runCmd(t, env, "token", "--sub", "bob", "--ttl", "1m")
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, stderr)
	}
	v, _ := auth.NewVerifier(auth.Config{Secret: []byte(testSecret)})
	claims, err := v.Verify(strings.TrimSpace(tok))
	if err != nil || claims.Subject != "bob" || time.Until(claims.ExpiresAt) > time.Minute {
		t.Fatalf("token minted from FEEDD_JWT_SECRET: %+v, %v", claims, err)
	}
	// The flag wins over the variable.
	code, _, stderr = runCmd(t, env, "token", "--sub", "bob", "--jwt-secret", "short")
	if code != 2 || !strings.Contains(stderr, "--jwt-secret") {
		t.Fatalf("flag did not override the variable: exit %d, %q", code, stderr)
	}

	code, admin, _ := runCmd(t, env, "token", "--admin")
	claims, err = v.Verify(strings.TrimSpace(admin))
	if code != 0 || err != nil || !claims.HasScope(auth.AdminScope) {
		t.Fatalf("admin token: exit %d, %+v, %v", code, claims, err)
	}
}

func TestMigrateAndVersion(t *testing.T) {
	db := filepath.Join(t.TempDir(), "feedd.db")
	code, out, stderr := runCmd(t, nil, "migrate", "status", "--db", db)
	if code != 2 || !strings.Contains(stderr, db+" does not exist yet; feedd serve or feedd migrate up creates it") {
		t.Fatalf("migrate status on a missing file: exit %d %q %q", code, out, stderr)
	}
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("migrate status left a file behind: %v", err)
	}
	code, out, _ = runCmd(t, nil, "migrate", "up", "--db", db)
	if code != 0 || !regexp.MustCompile(`applied [1-9][0-9]* migration`).MatchString(out) {
		t.Fatalf("migrate up: exit %d %q", code, out)
	}
	code, out, _ = runCmd(t, nil, "migrate", "status", "--db", db)
	if code != 0 || strings.Contains(out, "pending") || !strings.Contains(out, "applied") {
		t.Fatalf("migrate status after up: exit %d %q", code, out)
	}
	code, out, _ = runCmd(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "feedd ") {
		t.Fatalf("version: exit %d %q", code, out)
	}
}

func TestPublicKeyVerification(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--jwt-secret", "", "--jwt-public-key", keyFile, "--jwt-issuer", "https://id.example")
	if !strings.Contains(s.stdout.String(), "--jwt-public-key") {
		t.Fatalf("start-up does not say tokens come from the key holder:\n%s", s.stdout)
	}
	mint := func(iss string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"sub": "alice", "iss": iss, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	s.openFeed(t, "token="+mint("https://id.example"), nil)
	resp, cancel := s.openRaw(t, "token="+mint("https://other.example"), nil)
	cancel()
	if resp.StatusCode != 401 {
		t.Fatalf("token from another issuer: %d, want 401", resp.StatusCode)
	}
	// feedd token cannot mint what such a server accepts, and says so.
	code, _, stderr := runCmd(t, nil, "token", "--db", s.dbPath, "--sub", "x", "--jwt-public-key", keyFile)
	if code != 2 || !strings.Contains(stderr, "-jwt-public-key") {
		t.Fatalf("feedd token --jwt-public-key: exit %d %q", code, stderr)
	}
	code, _, stderr = runCmd(t, map[string]string{"FEEDD_JWT_PUBLIC_KEY": keyFile}, "token", "--db", s.dbPath, "--sub", "x")
	if code != 2 || !strings.Contains(stderr, "private key") {
		t.Fatalf("feedd token with FEEDD_JWT_PUBLIC_KEY set: exit %d %q", code, stderr)
	}
}
