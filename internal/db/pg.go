package db

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/feedd/feedd/migrations"
)

// IsPostgresURL reports whether target names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than an SQLite file.
func IsPostgresURL(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// PostgresName names the database of a PostgreSQL URL for logs and
// messages: user@host:port/database, without the password; "" when the
// URL does not parse.
func PostgresName(rawURL string) string {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return "postgres://[unparsable URL]"
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// PGOptions tune how a PostgreSQL database is used. Zero fields take the
// defaults noted.
type PGOptions struct {
	// MaxConns caps the connections of the pool; default 10.
	MaxConns int32
	// ConnectTimeout bounds opening one connection; default 5s.
	ConnectTimeout time.Duration
	// MaxDataBytes is as in Options: larger rows are left out of feeds
	// and listings. 0 means no limit.
	MaxDataBytes int64
}

// eventsLock is the transaction-scoped advisory lock every inserting
// transaction holds to its end (see the migration): ids follow commits.
const eventsLock = 7716

// PG is a feedd log in PostgreSQL, which any number of feedd processes may
// share. It has the methods of DB that the engine and the API use.
type PG struct {
	pool     *pgxpool.Pool
	cfg      *pgxpool.Config
	password string // kept out of every error
	reads

	mu           sync.Mutex
	err          error // a *StorageError while writes cannot succeed
	startPending bool
}

// OpenPostgres connects to the database at url. It does not run
// migrations; call Migrate for that. The password in url never appears in
// its errors.
func OpenPostgres(ctx context.Context, rawURL string, opts PGOptions) (*PG, error) {
	password := ""
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		password, _ = u.User.Password()
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres URL: %w", redact(err, password, rawURL))
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 10
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	cfg.MaxConns = opts.MaxConns
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err, password, rawURL))
	}
	pg := &PG{pool: pool, cfg: cfg, password: password}
	pg.reads = reads{sql: newPGQueries(opts.MaxDataBytes), query: pg.query}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot connect (check that PostgreSQL is up, and the URL's user, password and database): %w", redact(err, password, rawURL))
	}
	return pg, nil
}

// where names the database without its password: user@host:port/name.
func (pg *PG) where() string {
	c := pg.cfg.ConnConfig
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// redact returns err with the password and the URL that holds it removed
// from its text.
func redact(err error, password, rawURL string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if rawURL != "" {
		msg = strings.ReplaceAll(msg, rawURL, "[URL]")
	}
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "REDACTED")
	}
	return &redacted{msg: msg, err: err}
}

// redacted is an error whose text had a password removed; it still
// matches what it wraps.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// fail classifies err: trouble reaching the database becomes a
// *StorageError, recorded as what stops writes. It returns err so
// classified, its text free of the password.
func (pg *PG) fail(err error) error {
	if err == nil {
		return nil
	}
	err = redact(err, pg.password, "")
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		switch {
		case pgErr.Code == "53100": // disk_full
			err = &StorageError{Fault: FaultDiskFull, Err: err}
		case pgErr.Code == "25006": // read_only_sql_transaction
			err = &StorageError{Fault: FaultReadOnly, Err: err}
		case strings.HasPrefix(pgErr.Code, "57P"), strings.HasPrefix(pgErr.Code, "08"), pgErr.Code == "53300":
			err = &StorageError{Fault: FaultUnreachable, Err: err}
		default:
			return err
		}
	case errors.Is(err, context.Canceled):
		return err
	default:
		// Connecting, reading or writing failed below SQL: the server is
		// down, restarting or out of reach.
		var se *StorageError
		if !errors.As(err, &se) {
			err = &StorageError{Fault: FaultUnreachable, Err: err}
		}
	}
	pg.mu.Lock()
	pg.err = err
	pg.mu.Unlock()
	return err
}

// Health returns nil when writes can succeed, or the *StorageError that
// stops them, as the last write or Maintain found.
func (pg *PG) Health() error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return pg.err
}

// Ping reports whether the database answers.
func (pg *PG) Ping(ctx context.Context) error { return pg.fail(pg.pool.Ping(ctx)) }

// Close closes the pool.
func (pg *PG) Close() error {
	pg.pool.Close()
	return nil
}

func (pg *PG) provider() (*goose.Provider, func(), error) {
	sqlDB := stdlib.OpenDBFromPool(pg.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.Postgres())
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, func() { sqlDB.Close() }, nil
}

// Migrate applies every pending migration and returns how many ran. One
// process at a time migrates: goose locks the database meanwhile.
func (pg *PG) Migrate(ctx context.Context) (int, error) {
	p, done, err := pg.provider()
	if err != nil {
		return 0, err
	}
	defer done()
	if err := checkVersion(ctx, p, pg.where()); err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate: %w", pg.fail(err))
	}
	return len(res), nil
}

// Migrations lists every embedded migration and whether it was applied.
func (pg *PG) Migrations(ctx context.Context) ([]Migration, error) {
	p, done, err := pg.provider()
	if err != nil {
		return nil, err
	}
	defer done()
	return migrationStates(ctx, p)
}

// Pending reports whether any embedded migration has not been applied.
func (pg *PG) Pending(ctx context.Context) (bool, error) {
	p, done, err := pg.provider()
	if err != nil {
		return false, err
	}
	defer done()
	return p.HasPending(ctx)
}

// CheckVersion fails with ErrNewerSchema when the database was migrated by
// a newer feedd.
func (pg *PG) CheckVersion(ctx context.Context) error {
	p, done, err := pg.provider()
	if err != nil {
		return err
	}
	defer done()
	return checkVersion(ctx, p, pg.where())
}

// Listen calls wake once at once and again whenever a transaction that
// inserted events commits, in any process, until ctx ends. It keeps one
// connection of its own LISTENing, and reconnects when it is lost (waking
// once more, for what it may have missed).
func (pg *PG) Listen(ctx context.Context, wake func()) {
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
		}
		pg.listen(ctx, wake)
		retry.Reset(time.Second)
	}
}

func (pg *PG) listen(ctx context.Context, wake func()) {
	conn, err := pgx.ConnectConfig(ctx, pg.cfg.ConnConfig)
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN feedd_events"); err != nil {
		return
	}
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return
		}
		wake()
	}
}
