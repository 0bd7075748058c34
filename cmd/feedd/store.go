package main

import (
	"context"

	"github.com/feedd/feedd/internal/api"
	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/feed"
)

// store is a log feedd serves: an SQLite file (db.DB) or a PostgreSQL
// database that many feedd processes share (db.PG).
type store interface {
	feed.Store
	api.Log
	Migrate(ctx context.Context) (int, error)
	Migrations(ctx context.Context) ([]db.Migration, error)
	CheckVersion(ctx context.Context) error
	Close() error
}

// openStore opens the log --db names. serving tunes an SQLite database
// for a server: feedd checkpoints it itself (see db.Options).
func openStore(ctx context.Context, c config, serving bool) (store, error) {
	if db.IsPostgresURL(c.db) {
		pg, err := db.OpenPostgres(ctx, c.db, db.PGOptions{
			MaxConns:       int32(c.dbMaxConns),
			ConnectTimeout: c.dbConnectTimeout,
			MaxDataBytes:   int64(c.maxDataBytes),
		})
		if err != nil {
			return nil, usagef("--db %s: %v", c.dbName(), err)
		}
		return pg, nil
	}
	opts := db.Options{Synchronous: c.sync, MaxDataBytes: int64(c.maxDataBytes)}
	if serving {
		opts.ManualCheckpoints = true
	}
	d, err := db.Open(ctx, c.db, opts)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// dbName names --db in logs and messages: a file path as it is, a
// PostgreSQL URL as user@host:port/database, without its password.
func (c *config) dbName() string {
	if !db.IsPostgresURL(c.db) {
		return c.db
	}
	return db.PostgresName(c.db)
}

// checkDB checks --db before anything opens it: a file's directory must
// exist (see checkDBDir); a PostgreSQL URL is checked by connecting.
func (c *config) checkDB() error {
	if db.IsPostgresURL(c.db) {
		return nil
	}
	return checkDBDir(c.db)
}
