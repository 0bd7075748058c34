// Package db keeps feedd's notification log in SQLite: opening the file with
// the right pragmas, one writer connection and a pool of readers, the
// embedded goose migrations, and every SQL statement the server runs.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/feedd/feedd/migrations"
)

// ErrNotFound is returned when an event id does not exist.
var ErrNotFound = errors.New("not found")

// ErrNewerSchema is wrapped by the error Migrate, CheckVersion and the
// server's start-up return when the database carries a migration newer
// than any this binary embeds: it was written by a newer feedd, whose
// schema this one cannot be trusted to read or write.
var ErrNewerSchema = errors.New("run the feedd release that wrote it, or restore a backup")

// Options tune how the database is opened. The zero value is usable.
type Options struct {
	// ReadConns caps the reader pool; 0 means 4.
	ReadConns int
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection or process before failing; 0 means 10s.
	BusyTimeout time.Duration
	// Synchronous is SQLite's synchronous pragma for the writer: "normal"
	// (the default: a committed write survives a process crash) or "full"
	// (it also survives a power loss, at the cost of an fsync per commit).
	Synchronous string
	// ManualCheckpoints turns off the writer's automatic checkpoints, which
	// run inside the commit that fills the WAL past 1000 pages and so add
	// their time (an fsync among it) to that commit's publishes. Maintain
	// then checkpoints, and so does Close.
	ManualCheckpoints bool
	// MaxDataBytes is the largest data a row may have and still be sent:
	// larger rows (only SQL inserts can make them) are left out of feeds
	// and listings. 0 means no limit.
	MaxDataBytes int64
}

// DB is an open feedd database: one writer connection and a reader pool
// over the same file in WAL mode.
type DB struct {
	w    *sql.DB
	r    *sql.DB
	path string
	reads
	// health is what storage trouble, if any, stops writes.
	health health
	// readConns is the reader pool's size, restored after a reconnect.
	readConns int
	// manualCheckpoints: Maintain checkpoints (see Options).
	manualCheckpoints bool

	mu      sync.Mutex
	stmts   map[string]*sql.Stmt // prepared once, keyed by pool and SQL
	inserts insertStmts          // the writer's, see insertStmts
}

// Open opens (creating if needed) the database at path. It does not run
// migrations; call Migrate for that.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	switch opts.Synchronous {
	case "":
		opts.Synchronous = "normal"
	case "normal", "full":
	default:
		return nil, fmt.Errorf("synchronous must be normal or full, not %q", opts.Synchronous)
	}

	if err := create(ctx, path, opts); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(path, opts, false, "rw"))
	if err != nil {
		return nil, fmt.Errorf("open writer: %w", err)
	}
	// One writer: SQLite serialises writes anyway, and a single connection
	// turns lock contention inside this process into a queue.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, classify(err))
	}
	file, err := statFile(path)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", dsn(path, opts, true, "rw"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open readers: %w", err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	r.SetConnMaxIdleTime(0)
	db := &DB{w: w, r: r, path: path,
		readConns: opts.ReadConns, manualCheckpoints: opts.ManualCheckpoints, stmts: make(map[string]*sql.Stmt)}
	db.health.file = file
	db.reads = reads{sql: newQueries(opts.MaxDataBytes), query: db.query}
	return db, nil
}

// create makes the database file if it does not exist yet. The pools open
// it with mode=rw, never creating it, so that a file removed under a
// running server is reported missing rather than silently made anew.
func create(ctx context.Context, path string, opts Options) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	c, err := sql.Open("sqlite", dsn(path, opts, false, "rwc"))
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer c.Close()
	if err := c.PingContext(ctx); err != nil {
		return fmt.Errorf("create %s: %w", path, classify(err))
	}
	return nil
}

// uriPath escapes the characters that would end the path of an SQLite URI
// filename or be decoded by it.
var uriPath = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

// dsn builds a modernc.org/sqlite DSN. Pragmas live in the DSN so that every
// connection the pool opens gets them, not just the first. mode is SQLite's
// URI open mode: rw, or rwc to create the file.
func dsn(path string, opts Options, readOnly bool, mode string) string {
	q := url.Values{"mode": {mode}}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous("+opts.Synchronous+")")
	// Statement and savepoint journals stay in memory: a group commit's
	// undo data is a few pages, not worth a temporary file per statement.
	q.Add("_pragma", "temp_store(MEMORY)")
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	} else {
		// BEGIN IMMEDIATE takes the write lock up front, so a transaction
		// never fails half-way when it upgrades from read to write.
		q.Set("_txlock", "immediate")
		// A group commit of thousands of rows fits in the writer's page
		// cache (32 MiB at most, used as needed) rather than spilling to
		// the WAL half-way.
		q.Add("_pragma", "cache_size(-32768)")
		if opts.ManualCheckpoints {
			q.Add("_pragma", "wal_autocheckpoint(0)")
		}
	}
	return "file:" + uriPath.Replace(path) + "?" + q.Encode()
}

// prepared returns the statement for q on pool, preparing it on first use:
// the statements the server runs all the time are parsed once per
// connection, not once per call. Statements are prepared lazily because
// the tables they name exist only once the database is migrated.
func (db *DB) prepared(ctx context.Context, pool *sql.DB, q string) (*sql.Stmt, error) {
	key := q
	if pool == db.w {
		key = "w:" + q
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if st, ok := db.stmts[key]; ok {
		return st, nil
	}
	st, err := pool.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	db.stmts[key] = st
	return st, nil
}

// Close checkpoints the WAL into the main file and closes every connection.
func (db *DB) Close() error {
	db.mu.Lock()
	for _, st := range db.stmts {
		st.Close()
	}
	db.inserts.close()
	db.mu.Unlock()
	_, cerr := db.w.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
	rerr := db.r.Close()
	werr := db.w.Close()
	return errors.Join(cerr, rerr, werr)
}

// checkpoint copies what the WAL holds into the database file, as far as
// the readers of older snapshots allow, without waiting for anyone. It runs
// on a reader connection, so commits go on meanwhile.
func (db *DB) checkpoint(ctx context.Context) error {
	var busy, frames, done int
	err := db.r.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// Ping reports whether both the writer and the readers can reach the file.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return err
	}
	return db.r.PingContext(ctx)
}

func (db *DB) provider() (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, db.w, migrations.SQLite())
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// CheckVersion returns an error wrapping ErrNewerSchema if the database
// records a migration newer than the newest this binary embeds.
func (db *DB) CheckVersion(ctx context.Context) error {
	p, err := db.provider()
	if err != nil {
		return err
	}
	return checkVersion(ctx, p, db.path)
}

// checkVersion fails with ErrNewerSchema when the database p migrates,
// named name, records a migration newer than the newest p embeds.
func checkVersion(ctx context.Context, p *goose.Provider, name string) error {
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	var known int64
	for _, s := range p.ListSources() {
		known = max(known, s.Version)
	}
	if current > known {
		return fmt.Errorf("database %s is at schema version %d, newer than this feedd knows (%d): %w", name, current, known, ErrNewerSchema)
	}
	return nil
}

// Migrate applies every pending migration and returns how many ran. It
// applies none, and returns an error wrapping ErrNewerSchema, if the
// database was migrated by a newer feedd.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	p, err := db.provider()
	if err != nil {
		return 0, err
	}
	if err := checkVersion(ctx, p, db.path); err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate: %w", err)
	}
	return len(res), nil
}

// Migration is the state of one embedded migration.
type Migration struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// Migrations lists every embedded migration and whether it has been applied.
func (db *DB) Migrations(ctx context.Context) ([]Migration, error) {
	p, err := db.provider()
	if err != nil {
		return nil, err
	}
	return migrationStates(ctx, p)
}

// migrationStates lists the migrations p embeds and whether each was
// applied.
func migrationStates(ctx context.Context, p *goose.Provider) ([]Migration, error) {
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]Migration, 0, len(st))
	for _, s := range st {
		out = append(out, Migration{
			Version:   s.Source.Version,
			Name:      s.Source.Path,
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// Pending reports whether any embedded migration has not been applied.
func (db *DB) Pending(ctx context.Context) (bool, error) {
	p, err := db.provider()
	if err != nil {
		return false, err
	}
	return p.HasPending(ctx)
}

// Backup writes a consistent copy of the database to the new file dst with
// VACUUM INTO. It reads one snapshot, so writers, in this process or
// another, go on meanwhile.
func (db *DB) Backup(ctx context.Context, dst string) error {
	if _, err := db.w.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	return nil
}
