package feed

import (
	"context"
	"log/slog"
	"time"
)

// Retention pruning works in batches of pruneBatch rows, pausing
// prunePause between batches so publishers get the write lock in between,
// and looks for expired rows every pruneEvery.
const (
	pruneBatch = 500
	prunePause = 10 * time.Millisecond
	pruneEvery = time.Minute
)

// prune deletes events older than retention until ctx is done: at once,
// then every minute.
func prune(ctx context.Context, store Store, retention time.Duration, now func() time.Time, log *slog.Logger) {
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		cutoff := now().Add(-retention)
		var total int64
		for {
			n, err := store.Prune(ctx, cutoff, pruneBatch)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("retention: pruning failed; retrying in a minute", "err", err)
				}
				break
			}
			total += n
			if n < pruneBatch {
				break
			}
			pause.Reset(prunePause)
			select {
			case <-ctx.Done():
				return
			case <-pause.C:
			}
		}
		if total > 0 {
			log.Info("retention: pruned old events", "count", total, "before", cutoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
