package db

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// newPGQueries is newQueries for PostgreSQL: its placeholders, and
// data_json a boolean.
func newPGQueries(maxDataBytes int64) queries {
	if maxDataBytes <= 0 {
		maxDataBytes = math.MaxInt32
	}
	limit := strconv.FormatInt(min(maxDataBytes, math.MaxInt32), 10)
	columns := "id, user_id, type, CASE WHEN data_bytes <= " + limit + " THEN data END, " +
		"CASE WHEN data_bytes <= " + limit + " THEN data_nul END, data_json, created_at"
	fits := " AND data_bytes <= " + limit
	feed := `
(SELECT ` + columns + ` FROM events WHERE user_id = $1 AND id > $2 AND id < $3` + fits + ` ORDER BY id %[1]s LIMIT $4)
UNION ALL
(SELECT ` + columns + ` FROM events WHERE user_id IS NULL AND id > $2 AND id < $3` + fits + ` ORDER BY id %[1]s LIMIT $4)
ORDER BY id %[1]s LIMIT $4`
	return queries{
		feed:       fmt.Sprintf(feed, "ASC"),
		feedLatest: fmt.Sprintf(feed, "DESC"),
		after:      "SELECT " + columns + " FROM events WHERE id > $1 ORDER BY id LIMIT $2",
		listAll:    "SELECT " + columns + " FROM events WHERE id > $1 AND id < $2" + fits + " ORDER BY id LIMIT $3",
		listUser:   "SELECT " + columns + " FROM events WHERE user_id = $1 AND id > $2 AND id < $3" + fits + " ORDER BY id LIMIT $4",
		get:        "SELECT " + columns + " FROM events WHERE id = $1",
	}
}

// query runs a SELECT of the queries' columns.
func (pg *PG) query(ctx context.Context, q string, sizeHint int, args ...any) ([]Event, error) {
	rows, err := pg.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", pg.fail(err))
	}
	defer rows.Close()
	out := make([]Event, 0, min(sizeHint, 1024))
	for rows.Next() {
		var (
			e          Event
			user, data *string
			withNUL    []byte
			ms         int64
		)
		if err := rows.Scan(&e.ID, &user, &e.Type, &data, &withNUL, &e.DataJSON, &ms); err != nil {
			return nil, fmt.Errorf("scan event: %w", pg.fail(err))
		}
		if user != nil {
			e.UserID = *user
		}
		switch {
		case withNUL != nil:
			e.Data = string(withNUL)
		case data != nil:
			e.Data = *data
		default:
			e.TooLarge = true
		}
		e.CreatedAt = time.UnixMilli(ms).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", pg.fail(err))
	}
	return out, nil
}

// Delete removes one event, or returns ErrNotFound.
func (pg *PG) Delete(ctx context.Context, id int64) error {
	tag, err := pg.pool.Exec(ctx, "DELETE FROM events WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("delete event: %w", pg.fail(err))
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// LastID returns the highest id in the log, 0 when it is empty.
func (pg *PG) LastID(ctx context.Context) (int64, error) {
	var id int64
	if err := pg.pool.QueryRow(ctx, "SELECT COALESCE(MAX(id), 0) FROM events").Scan(&id); err != nil {
		return 0, fmt.Errorf("last id: %w", pg.fail(err))
	}
	return id, nil
}

// issuedSQL is the highest id the sequence gave out, 0 if none.
const issuedSQL = "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_id_seq)"

// Bounds returns the log's bounds as a feed resuming after cursor sees
// them, read in one query.
func (pg *PG) Bounds(ctx context.Context, cursor int64) (Bounds, error) {
	var b Bounds
	err := pg.pool.QueryRow(ctx, `SELECT `+issuedSQL+`,
		(SELECT value FROM meta WHERE key = 'pruned_through'),
		COALESCE((SELECT MIN(id) FROM events WHERE id > $1), 0),
		EXISTS (SELECT 1 FROM id_gaps WHERE after_id < $1 AND next_id > $1)`, cursor).
		Scan(&b.Issued, &b.PrunedThrough, &b.Next, &b.Lost)
	if err != nil {
		return Bounds{}, fmt.Errorf("log bounds: %w", pg.fail(err))
	}
	return b, nil
}

// Prune deletes up to limit of the oldest events created before cutoff,
// recording the highest id it deleted, and returns how many it deleted.
// Processes that prune at once take turns: each batch holds a lock on the
// pruned_through row.
func (pg *PG) Prune(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	if err := pg.Health(); err != nil {
		return 0, err
	}
	var n int64
	err := pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT value FROM meta WHERE key = 'pruned_through' FOR UPDATE"); err != nil {
			return err
		}
		var maxID *int64
		err := tx.QueryRow(ctx, `WITH gone AS (
			DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < $1 ORDER BY id LIMIT $2)
			RETURNING id)
			SELECT count(*), max(id) FROM gone`, cutoff.UnixMilli(), limit).Scan(&n, &maxID)
		if err != nil || maxID == nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE meta SET value = GREATEST(value, $1) WHERE key = 'pruned_through'", *maxID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", pg.fail(err))
	}
	return n, nil
}

// Start is DB.Start for PostgreSQL: it moves the id sequence past what a
// lost copy of the database (an older dump restored since) may have given
// out, holding the lock inserters take, so that no insert is half-way.
func (pg *PG) Start(ctx context.Context, now time.Time) error {
	err := pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", eventsLock); err != nil {
			return err
		}
		var seq, active int64
		if err := tx.QueryRow(ctx, "SELECT "+issuedSQL+", (SELECT value FROM meta WHERE key = 'active_at')").Scan(&seq, &active); err != nil {
			return err
		}
		if seq > 0 || active > 0 {
			next := seq + max(now.UnixMilli()-active, 1)*(lostIDsPerSecond/1000)
			if _, err := tx.Exec(ctx, "SELECT setval('events_id_seq', $1)", next); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO id_gaps (after_id, next_id, made_at) VALUES ($1, $2, $3)
				ON CONFLICT (after_id) DO UPDATE SET next_id = EXCLUDED.next_id, made_at = EXCLUDED.made_at`,
				seq, next+1, now.UnixMilli()); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, "UPDATE meta SET value = GREATEST(value, $1) WHERE key = 'active_at'", now.UnixMilli())
		return err
	})
	pg.mu.Lock()
	defer pg.mu.Unlock()
	pg.startPending = err != nil
	if err != nil {
		err = fmt.Errorf("start: %w", redact(err, pg.password, ""))
		if _, ok := errors.AsType[*StorageError](err); !ok {
			err = &StorageError{Fault: FaultUnreachable, Err: err}
		}
		pg.err = err
	}
	return err
}

// Maintain is run about once a second: it records that a process uses the
// database (see Start) and finds out whether it can be written, clearing
// the fault once it can (Start runs first if it has not succeeded yet).
func (pg *PG) Maintain(ctx context.Context, now time.Time) error {
	pg.mu.Lock()
	pending := pg.startPending
	pg.mu.Unlock()
	if pending {
		if err := pg.Start(ctx, now); err != nil {
			return err
		}
	} else if _, err := pg.pool.Exec(ctx, "UPDATE meta SET value = GREATEST(value, $1) WHERE key = 'active_at'", now.UnixMilli()); err != nil {
		return pg.fail(fmt.Errorf("heartbeat: %w", err))
	}
	pg.mu.Lock()
	pg.err = nil
	pg.mu.Unlock()
	return nil
}

// pgInsertRows caps the rows of one INSERT statement (6 parameters each,
// far below PostgreSQL's 65535).
const pgInsertRows = 1000

// AppendMany is DB.AppendMany for PostgreSQL. The transaction takes the
// inserters' lock first, so that keyed publishes check their keys with no
// other process's publish half-way, and ids follow commits.
func (pg *PG) AppendMany(ctx context.Context, ps []*Publish, now time.Time) error {
	if err := pg.Health(); err != nil {
		return err
	}
	if slices.ContainsFunc(ps, func(p *Publish) bool { return p.Once == nil }) {
		err := pg.appendTx(ctx, ps, now, true)
		if !errors.Is(err, errRowRefused) {
			return err
		}
	}
	return pg.appendTx(ctx, ps, now, false)
}

func (pg *PG) appendTx(ctx context.Context, ps []*Publish, now time.Time, together bool) error {
	err := pgx.BeginFunc(ctx, pg.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", eventsLock); err != nil {
			return err
		}
		if together {
			var evs []NewEvent
			for _, p := range ps {
				if p.Once == nil {
					evs = append(evs, p.Events...)
				}
			}
			created, err := pgInsert(ctx, tx, evs, now)
			if err != nil {
				return fmt.Errorf("%w: %v", errRowRefused, err)
			}
			for _, p := range ps {
				if p.Once == nil {
					p.Created, created = created[:len(p.Events):len(p.Events)], created[len(p.Events):]
					p.Err = nil
				}
			}
		}
		for _, p := range ps {
			if together && p.Once == nil {
				continue
			}
			if p.Err = pgApplyPublish(ctx, tx, p, now); p.Err != nil {
				p.Created = nil
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRowRefused) {
		return fmt.Errorf("append: %w", pg.fail(err))
	}
	return err
}

// pgApplyPublish applies one publish inside a savepoint of tx: one that
// fails leaves nothing behind and the others go on.
func pgApplyPublish(ctx context.Context, tx pgx.Tx, p *Publish, now time.Time) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	err = func() error {
		if p.Once != nil {
			if retry, err := pgCheckOnce(ctx, sp, p, now); retry || err != nil {
				return err
			}
		}
		created, err := pgInsert(ctx, sp, p.Events, now)
		if err != nil {
			return err
		}
		p.Created = created
		if p.Once != nil {
			return pgKeepOnce(ctx, sp, p, now)
		}
		return nil
	}()
	if err != nil {
		if rerr := sp.Rollback(ctx); rerr != nil {
			return fmt.Errorf("%w (and rolling back: %v)", err, rerr)
		}
		return err
	}
	return sp.Commit(ctx)
}

// pgInsert inserts evs, stamped with now, in statements of at most
// pgInsertRows rows, and returns them with their ids. The trigger gives
// the rows of one statement ids in their order.
func pgInsert(ctx context.Context, tx pgx.Tx, evs []NewEvent, now time.Time) ([]Event, error) {
	ms := now.UnixMilli()
	created := time.UnixMilli(ms).UTC()
	out := make([]Event, len(evs))
	for start := 0; start < len(evs); start += pgInsertRows {
		chunk := evs[start:min(start+pgInsertRows, len(evs))]
		var q strings.Builder
		q.WriteString("INSERT INTO events (user_id, type, data, data_nul, data_json, created_at) VALUES ")
		args := make([]any, 0, 6*len(chunk))
		for i, e := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			n := len(args)
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6)
			var user any
			if e.UserID != "" {
				user = e.UserID
			}
			data, withNUL := any(e.Data), any(nil)
			if strings.IndexByte(e.Data, 0) >= 0 {
				data, withNUL = "", []byte(e.Data)
			}
			args = append(args, user, e.Type, data, withNUL, e.DataJSON, ms)
		}
		q.WriteString(" RETURNING id")
		rows, err := tx.Query(ctx, q.String(), args...)
		if err != nil {
			return nil, fmt.Errorf("insert events: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("insert events: %w", err)
		}
		slices.Sort(ids)
		for i, e := range chunk {
			out[start+i] = Event{ID: ids[i], UserID: e.UserID, Type: e.Type, Data: e.Data, DataJSON: e.DataJSON, CreatedAt: created}
		}
	}
	return out, nil
}

// pgCheckOnce is checkOnce for PostgreSQL.
func pgCheckOnce(ctx context.Context, tx pgx.Tx, p *Publish, now time.Time) (retry bool, err error) {
	var hash, answer []byte
	err = tx.QueryRow(ctx, "SELECT request_hash, response FROM idempotency_keys WHERE key = $1 AND created_at >= $2",
		p.Once.Key, now.Add(-p.Once.TTL).UnixMilli()).Scan(&hash, &answer)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up idempotency key: %w", err)
	case string(hash) != string(p.Once.Hash):
		return false, ErrKeyReused
	}
	created, err := replay(p.Events, answer)
	if err != nil {
		return false, fmt.Errorf("read idempotency key: %w", err)
	}
	p.Created, p.Replayed = created, true
	return true, nil
}

// pgKeepOnce is keepOnce for PostgreSQL.
func pgKeepOnce(ctx context.Context, tx pgx.Tx, p *Publish, now time.Time) error {
	answer, err := keptAnswer(p, now)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (key, request_hash, response, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response = EXCLUDED.response, created_at = EXCLUDED.created_at`,
		p.Once.Key, p.Once.Hash, answer, now.UnixMilli()); err != nil {
		return fmt.Errorf("keep idempotency key: %w", err)
	}
	if _, err := tx.Exec(ctx,
		"DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
		now.Add(-p.Once.TTL).UnixMilli(), keysPrunedPerAppend); err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	return nil
}
