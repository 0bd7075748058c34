package feedtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the variable that gives tests a PostgreSQL server: the
// URL of a database whose role may create databases. .ci/run starts a
// throwaway cluster (scripts/postgres.sh) and sets it.
const PostgresEnv = "FEEDD_TEST_POSTGRES"

// PostgresURL returns the URL of a new, empty database on the server that
// FEEDD_TEST_POSTGRES names, dropped at the end of the test. Without the
// variable the test is skipped, except with CI=true, where it fails: CI
// must run every PostgreSQL test.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; .ci/run starts PostgreSQL and sets it", PostgresEnv)
		}
		t.Skipf("%s is not set: no PostgreSQL to test against (scripts/postgres.sh start DIR prints a URL)", PostgresEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	raw := make([]byte, 6)
	rand.Read(raw)
	name := "feedd_test_" + hex.EncodeToString(raw)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", PostgresEnv, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create a test database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop the test database: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop the test database: %v", err)
		}
	})
	u.Path = "/" + name
	return u.String()
}
