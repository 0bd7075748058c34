package db

import (
	"context"
	"time"
)

// appendEvents appends evs as one publish and returns them with their ids.
func appendEvents(ctx context.Context, d *DB, evs []NewEvent, now time.Time) ([]Event, error) {
	p := &Publish{Events: evs}
	if err := d.AppendMany(ctx, []*Publish{p}, now); err != nil {
		return nil, err
	}
	return p.Created, p.Err
}
