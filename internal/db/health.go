package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Fault names storage trouble under the database: something an operator
// fixes (a permission, a full disk, a missing file), after which feedd goes
// on by itself.
type Fault string

// The faults a StorageError names.
const (
	FaultReadOnly   Fault = "read-only"
	FaultDiskFull   Fault = "disk full"
	FaultMissing    Fault = "missing"
	FaultUnreadable Fault = "unreadable"
	// FaultUnreachable is a PostgreSQL server that is down, restarting
	// or out of reach.
	FaultUnreachable Fault = "unreachable"
)

// StorageError is a failure caused by the storage under the database rather
// than by what was asked of it. Match it with errors.As.
type StorageError struct {
	Fault Fault
	Err   error
}

func (e *StorageError) Error() string { return "database " + string(e.Fault) + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *StorageError) Unwrap() error { return e.Err }

// classify returns err as a *StorageError when SQLite blames the storage,
// and err itself otherwise.
func classify(err error) error {
	var se *sqlite.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	var fault Fault
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
		fault = FaultReadOnly
	case sqlite3.SQLITE_FULL:
		fault = FaultDiskFull
	case sqlite3.SQLITE_CANTOPEN:
		fault = FaultMissing
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_IOERR:
		fault = FaultUnreadable
	default:
		return err
	}
	return &StorageError{Fault: fault, Err: err}
}

// fileID identifies a file: a restored copy put in place of the database
// has another one.
type fileID struct{ dev, ino uint64 }

// statFile returns the identity of the file at path, or a StorageError
// when there is none.
func statFile(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, &StorageError{Fault: FaultMissing, Err: err}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, nil
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// health is whether writes can succeed, as the last write or check found.
type health struct {
	mu  sync.Mutex
	err error // a *StorageError while writes cannot succeed
	// file is the file the connections have open.
	file fileID
	// startPending is set while Start has not yet succeeded: writes wait
	// for it, so that no id a lost copy may have issued is given out.
	startPending bool
	// recycling is set while connections are being reopened: each is
	// closed when it is next returned, so none outlives the old file.
	recycling bool
}

// Health returns nil when writes can succeed, or the *StorageError that
// stops them.
func (db *DB) Health() error {
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	return db.health.err
}

// fail records err, if it is a StorageError, as what stops writes, and
// returns err.
func (db *DB) fail(err error) error {
	if _, ok := errors.AsType[*StorageError](err); ok {
		db.health.mu.Lock()
		db.health.err = err
		db.health.mu.Unlock()
	}
	return err
}

// checkFile fails when the file the connections have open is no longer
// the one at the database's path: removed, or replaced by a restore. Rows
// written then would go to a file that is gone.
func (db *DB) checkFile() error {
	id, err := statFile(db.path)
	if err != nil {
		return err
	}
	db.health.mu.Lock()
	known := db.health.file
	db.health.mu.Unlock()
	if id != known {
		return &StorageError{Fault: FaultMissing, Err: errors.New("the file was removed or replaced")}
	}
	return nil
}

// lostIDsPerSecond bounds how many ids any copy of a database can give out
// per second, on average, while it is in use (feedd itself commits well
// under a tenth of that). Start moves the ids that far ahead for every
// millisecond since the database was last known to be in use, so that the
// stretch covers whatever a copy of it, run meanwhile and since lost, may
// have given out.
const lostIDsPerSecond = 1_000_000

// Start makes the database ready for a server: it moves the id sequence
// past every id that a lost copy of this database may have given out since
// this copy was last in use, so that no id a client may hold is issued
// again after a restore, and records the skipped stretch in id_gaps (see
// Bounds). A database no server has used yet is left alone. Until Start
// succeeds, writes fail with its error; Maintain retries it.
func (db *DB) Start(ctx context.Context, now time.Time) error {
	err := db.start(ctx, now)
	db.health.mu.Lock()
	defer db.health.mu.Unlock()
	db.health.startPending = err != nil
	if err != nil {
		if _, ok := errors.AsType[*StorageError](err); !ok {
			err = &StorageError{Fault: FaultUnreadable, Err: err}
		}
		db.health.err = err
	}
	return err
}

func (db *DB) start(ctx context.Context, now time.Time) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("start: %w", classify(err))
	}
	defer tx.Rollback()
	var seq, active int64
	err = tx.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
		(SELECT value FROM meta WHERE key = 'active_at')`).Scan(&seq, &active)
	if err != nil {
		return fmt.Errorf("start: %w", classify(err))
	}
	if seq > 0 || active > 0 {
		next := seq + max(now.UnixMilli()-active, 1)*(lostIDsPerSecond/1000)
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq)
			SELECT 'events', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events')`); err != nil {
			return fmt.Errorf("start: %w", classify(err))
		}
		if _, err := tx.ExecContext(ctx, "UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'", next); err != nil {
			return fmt.Errorf("start: %w", classify(err))
		}
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO id_gaps (after_id, next_id, made_at) VALUES (?, ?, ?)",
			seq, next+1, now.UnixMilli()); err != nil {
			return fmt.Errorf("start: %w", classify(err))
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = 'active_at'", now.UnixMilli()); err != nil {
		return fmt.Errorf("start: %w", classify(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("start: %w", classify(err))
	}
	return nil
}

// Maintain is run by a server about once a second. It records that the
// database is in use (see Start), checks that its file is still in place,
// checkpoints the WAL when Options.ManualCheckpoints asks it to,
// and finds out whether writes can succeed: while they cannot, Health
// reports why and writes fail at once. When the fault is gone (the file is
// writable again, the disk has room, a removed file was restored) it
// reopens the connections and clears it, so feedd recovers by itself. A
// restored file counts as a restore: Start runs on it.
func (db *DB) Maintain(ctx context.Context, now time.Time) error {
	id, err := statFile(db.path)
	if err != nil {
		return db.fail(err)
	}
	db.health.mu.Lock()
	replaced := id != db.health.file
	fault := db.health.err
	pending := db.health.startPending || replaced
	recycling := db.health.recycling
	db.health.mu.Unlock()

	var kind Fault
	if se, ok := errors.AsType[*StorageError](fault); ok {
		kind = se.Fault
	}
	if kind == FaultDiskFull && !db.roomToWrite() {
		// A small write may fit where a publish does not: stay failed
		// until the disk has room again.
		return fault
	}
	if fault != nil || replaced {
		if kind == FaultReadOnly {
			db.matchSidecarModes()
		}
		db.recycle(true)
	}
	if pending {
		err = db.Start(ctx, now)
	} else {
		err = db.heartbeat(ctx, now)
	}
	if err != nil {
		return db.fail(err)
	}
	if recycling && fault == nil && !replaced {
		db.recycle(false)
	}
	db.health.mu.Lock()
	db.health.err, db.health.file = nil, id
	db.health.mu.Unlock()
	if db.manualCheckpoints {
		return db.checkpoint(ctx)
	}
	return nil
}

// matchSidecarModes gives the -wal and -shm files the database file's
// permissions once the database file is writable again. SQLite creates
// them with the database file's mode, so a server started on a read-only
// file leaves a read-only -shm behind, which would keep the database
// read-only after the operator fixed the file itself. Only files this
// process's user owns, and may so change, are touched.
func (db *DB) matchSidecarModes() {
	fi, err := os.Stat(db.path)
	if err != nil || syscall.Access(db.path, 2 /* W_OK */) != nil {
		return
	}
	for _, side := range []string{db.path + "-wal", db.path + "-shm"} {
		sfi, err := os.Stat(side)
		if err != nil {
			continue
		}
		st, ok := sfi.Sys().(*syscall.Stat_t)
		if !ok || int(st.Uid) != os.Geteuid() || syscall.Access(side, 2) == nil {
			continue
		}
		os.Chmod(side, fi.Mode().Perm())
	}
}

// minFreeBytes is how much room the database's file system must have
// again before feedd tries writing after it was full.
const minFreeBytes = 1 << 20

// roomToWrite reports whether the file system that holds the database has
// minFreeBytes free for this process, or cannot tell.
func (db *DB) roomToWrite() bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(db.path, &st); err != nil {
		return true
	}
	return st.Bavail*uint64(st.Bsize) >= minFreeBytes
}

// heartbeat records that a server uses the database now.
func (db *DB) heartbeat(ctx context.Context, now time.Time) error {
	if _, err := db.w.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = 'active_at'", now.UnixMilli()); err != nil {
		return fmt.Errorf("heartbeat: %w", classify(err))
	}
	return nil
}

// recycle, on, makes both pools close every connection as it is returned
// and open new ones, which see the file as it is now (writable again, or
// restored); off puts the pools back to keeping their connections. Maintain
// turns it off a tick after the fault is gone, when the connections opened
// before have been returned and closed.
func (db *DB) recycle(on bool) {
	db.health.mu.Lock()
	db.health.recycling = on
	db.health.mu.Unlock()
	if on {
		for _, p := range []*sql.DB{db.w, db.r} {
			p.SetConnMaxLifetime(time.Nanosecond)
			p.SetMaxIdleConns(0)
		}
		return
	}
	db.w.SetConnMaxLifetime(0)
	db.w.SetMaxIdleConns(1)
	db.r.SetConnMaxLifetime(0)
	db.r.SetMaxIdleConns(db.readConns)
}
