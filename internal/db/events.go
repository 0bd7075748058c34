package db

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Event is one row of the notification log.
type Event struct {
	ID int64
	// UserID is the addressee; "" for a broadcast.
	UserID string
	Type   string
	// Data is the payload sent to subscribers: a posted string as is,
	// anything else as compact JSON (then DataJSON is true).
	Data      string
	DataJSON  bool
	CreatedAt time.Time
	// TooLarge marks a row whose data is over the store's MaxDataBytes
	// (only rows inserted with SQL can be): its Data is left unread, and
	// feeds and listings leave the row out.
	TooLarge bool
}

// Broadcast reports whether the event goes to every user.
func (e Event) Broadcast() bool { return e.UserID == "" }

// NewEvent is an event to append; the log assigns its id.
type NewEvent struct {
	UserID   string // "" for a broadcast
	Type     string
	Data     string
	DataJSON bool
}

// Range selects events with After < id < Before, at most Limit of them.
// Before 0 means no upper bound.
type Range struct {
	After  int64
	Before int64
	Limit  int
}

func (r Range) bounds() (after, before int64, limit int) {
	before = r.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	limit = r.Limit
	if limit <= 0 {
		limit = 100
	}
	return r.After, before, limit
}

// insertRows are the sizes of the multi-row INSERT statements appends use,
// largest first: n events go in as n's digits in these sizes say, so that
// a few prepared statements serve every n. 256 rows of 5 values each stay
// far below SQLite's limit on parameters.
var insertRows = [...]int{256, 64, 16, 4, 1}

// insertKind chooses an INSERT: plainInsert fails on a row that breaks a
// constraint; ignoreInsert leaves such a row out (the caller counts the
// ids returned), which lets SQLite keep less undo data for the statement:
// BenchmarkAppend with 256 publishes a transaction measured ~220k rows/s
// against ~185k with plain INSERTs.
type insertKind int

const (
	plainInsert insertKind = iota
	ignoreInsert
)

// insertSQL returns the INSERT of n rows.
func insertSQL(n int, kind insertKind) string {
	var b strings.Builder
	b.WriteString("INSERT ")
	if kind == ignoreInsert {
		b.WriteString("OR IGNORE ")
	}
	b.WriteString("INTO events (user_id, type, data, data_json, created_at) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?)")
	}
	b.WriteString(" RETURNING id")
	return b.String()
}

// insertStmts are prepared INSERT statements, by kind and by size in
// insertRows.
type insertStmts [2][len(insertRows)]*sql.Stmt

// insertStmts returns the writer's INSERT statements, preparing them on
// first use.
func (db *DB) insertStmts(ctx context.Context) (insertStmts, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.inserts[0][0] != nil {
		return db.inserts, nil
	}
	var out insertStmts
	for kind := range out {
		for i, n := range insertRows {
			st, err := db.w.PrepareContext(ctx, insertSQL(n, insertKind(kind)))
			if err != nil {
				out.close()
				return insertStmts{}, fmt.Errorf("prepare insert: %w", err)
			}
			out[kind][i] = st
		}
	}
	db.inserts = out
	return out, nil
}

func (s *insertStmts) close() {
	for _, sts := range s {
		for _, st := range sts {
			if st != nil {
				st.Close()
			}
		}
	}
}

// inserter inserts events inside one append transaction.
type inserter struct {
	tx    *sql.Tx
	stmts insertStmts
	txs   insertStmts // the same, bound to tx once used
	now   time.Time
	args  []any
	ids   []int64
}

func (ins *inserter) close() { ins.txs.close() }

// insert inserts evs, stamped with ins.now, and returns them with their
// ids, in as few statements as insertRows allows. A refused row fails it,
// with an error matching errRowRefused for ignoreInsert; evs may then be
// partly inserted.
func (ins *inserter) insert(ctx context.Context, evs []NewEvent, kind insertKind) ([]Event, error) {
	ms := ins.now.UnixMilli()
	created := time.UnixMilli(ms).UTC()
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = Event{UserID: e.UserID, Type: e.Type, Data: e.Data, DataJSON: e.DataJSON, CreatedAt: created}
	}
	for done := 0; done < len(evs); {
		i := slices.IndexFunc(insertRows[:], func(n int) bool { return n <= len(evs)-done })
		n := insertRows[i]
		if err := ins.insertRows(ctx, kind, i, evs[done:done+n], ms, out[done:done+n]); err != nil {
			return nil, err
		}
		done += n
	}
	return out, nil
}

// insertRows inserts evs, exactly insertRows[i] of them, with the statement
// of kind for that many rows, and sets the ids in out. The rows of one
// INSERT are stored in their order, each taking the next id, so their ids
// in increasing order are theirs in order, whatever order RETURNING gives
// them in.
func (ins *inserter) insertRows(ctx context.Context, kind insertKind, i int, evs []NewEvent, ms int64, out []Event) error {
	st := ins.txs[kind][i]
	if st == nil {
		st = ins.tx.StmtContext(ctx, ins.stmts[kind][i])
		ins.txs[kind][i] = st
	}
	ins.args = ins.args[:0]
	for _, e := range evs {
		var user any
		if e.UserID != "" {
			user = e.UserID
		}
		ins.args = append(ins.args, user, e.Type, e.Data, e.DataJSON, ms)
	}
	rows, err := st.QueryContext(ctx, ins.args...)
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	defer rows.Close()
	ins.ids = ins.ids[:0]
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		ins.ids = append(ins.ids, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	if len(ins.ids) != len(evs) {
		return fmt.Errorf("insert events: %w (%d of %d rows stored)", errRowRefused, len(ins.ids), len(evs))
	}
	slices.Sort(ins.ids)
	for j, id := range ins.ids {
		out[j].ID = id
	}
	return nil
}

// Delete removes one event, or returns ErrNotFound. Its id is never reused.
func (db *DB) Delete(ctx context.Context, id int64) error {
	if err := db.Health(); err != nil {
		return err
	}
	res, err := db.w.ExecContext(ctx, "DELETE FROM events WHERE id = ?", id)
	if err != nil {
		return db.fail(fmt.Errorf("delete event: %w", classify(err)))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete event: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// LastID returns the highest id in the log, 0 when it is empty.
func (db *DB) LastID(ctx context.Context) (int64, error) {
	st, err := db.prepared(ctx, db.r, "SELECT COALESCE(MAX(id), 0) FROM events")
	if err != nil {
		return 0, err
	}
	var id int64
	if err := st.QueryRowContext(ctx).Scan(&id); err != nil {
		return 0, fmt.Errorf("last id: %w", classify(err))
	}
	return id, nil
}

// query runs a SELECT of eventColumns on the reader pool.
func (db *DB) query(ctx context.Context, q string, sizeHint int, args ...any) ([]Event, error) {
	st, err := db.prepared(ctx, db.r, q)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", classify(err))
	}
	defer rows.Close()
	out := make([]Event, 0, min(sizeHint, 1024))
	for rows.Next() {
		var (
			e          Event
			user, data sql.NullString
			ms         int64
		)
		if err := rows.Scan(&e.ID, &user, &e.Type, &data, &e.DataJSON, &ms); err != nil {
			return nil, fmt.Errorf("scan event: %w", classify(err))
		}
		e.UserID, e.Data, e.TooLarge = user.String, data.String, !data.Valid
		e.CreatedAt = time.UnixMilli(ms).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", classify(err))
	}
	return out, nil
}

// Prune deletes up to limit of the oldest events created before cutoff and
// returns how many it deleted. It records the highest id it deleted (see
// PrunedThrough) in the same transaction. Small batches keep each write
// transaction, and so the time other writers wait, short.
func (db *DB) Prune(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	if err := db.Health(); err != nil {
		return 0, err
	}
	n, err := db.prune(ctx, cutoff, limit)
	return n, db.fail(classify(err))
}

func (db *DB) prune(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin prune: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx,
		"DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < ? ORDER BY id LIMIT ?) RETURNING id",
		cutoff.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	var n, maxID int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("prune events: %w", err)
		}
		n, maxID = n+1, max(maxID, id)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	rows.Close()
	if n == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx,
		"UPDATE meta SET value = max(value, ?) WHERE key = 'pruned_through'", maxID); err != nil {
		return 0, fmt.Errorf("record pruned id: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit prune: %w", err)
	}
	return n, nil
}

// Bounds is what a feed resuming after a cursor must know of the log.
type Bounds struct {
	// Issued is the highest id the log ever gave out, deleted or not, 0
	// when it never gave one. A cursor above it is not from this log.
	Issued int64
	// PrunedThrough is the highest id retention deleted, 0 if none. A
	// feed resuming from a lower cursor may have missed events.
	PrunedThrough int64
	// Next is the lowest id in the log above the cursor, 0 when there is
	// none.
	Next int64
	// Lost is set when the cursor lies in a stretch of ids this log
	// skipped at a start because a lost copy of it may have given them out
	// (see Start): the client holds an id from that copy, and what came
	// after it there is gone.
	Lost bool
}

// Bounds returns the log's bounds as a feed resuming after cursor sees
// them, read in one query.
func (db *DB) Bounds(ctx context.Context, cursor int64) (Bounds, error) {
	st, err := db.prepared(ctx, db.r, `SELECT
		COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
		(SELECT value FROM meta WHERE key = 'pruned_through'),
		COALESCE((SELECT MIN(id) FROM events WHERE id > ?1), 0),
		EXISTS (SELECT 1 FROM id_gaps WHERE after_id < ?1 AND next_id > ?1)`)
	if err != nil {
		return Bounds{}, err
	}
	var b Bounds
	if err := st.QueryRowContext(ctx, cursor).Scan(&b.Issued, &b.PrunedThrough, &b.Next, &b.Lost); err != nil {
		return Bounds{}, fmt.Errorf("log bounds: %w", classify(err))
	}
	return b, nil
}
