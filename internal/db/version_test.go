package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/feedd/feedd/migrations"
)

// newestEmbedded is the highest version among the embedded migrations.
func newestEmbedded(t *testing.T) int64 {
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
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "feedd.db")
	d, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// A database a newer feedd migrated to version 99, made by hand so
	// that nothing of this feedd's schema is in it yet.
	for _, q := range []string{
		"CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')))",
		"INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1), (99, 1)",
	} {
		if _, err := d.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprintf("database %s is at schema version 99, newer than this feedd knows (%d)", path, newestEmbedded(t))

	err = d.CheckVersion(ctx)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), want) {
		t.Fatalf("CheckVersion: %v; want %q wrapping ErrNewerSchema", err, want)
	}
	n, err := d.Migrate(ctx)
	if n != 0 || !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Migrate: %d, %v; want 0 and %q wrapping ErrNewerSchema", n, err, want)
	}
	var tables int
	if err := d.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE name = 'events'").Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("Migrate applied migrations to a newer database: %d events tables, %v", tables, err)
	}
}

func TestCurrentSchemaIsAccepted(t *testing.T) {
	d := openTest(t)
	if err := d.CheckVersion(context.Background()); err != nil {
		t.Fatalf("CheckVersion on a freshly migrated database: %v", err)
	}
}
