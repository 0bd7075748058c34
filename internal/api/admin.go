package api

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/feed"
)

// Paging of listings.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// idempotencyTTL is how long an Idempotency-Key's first answer is kept.
const idempotencyTTL = 24 * time.Hour

// maxIdempotencyKey caps the length of an Idempotency-Key.
const maxIdempotencyKey = 255

// publish stores evs through the engine, in one transaction, and answers
// 201 with the created events once they are committed. With an
// Idempotency-Key header, a retry of the same request gets the first
// answer again and creates nothing.
func (s *Server) publish(w http.ResponseWriter, r *http.Request, evs []db.NewEvent) {
	p := &db.Publish{Events: evs}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > maxIdempotencyKey || !isPrintableASCII(key) {
			writeError(w, r, s.log, errorf(http.StatusBadRequest,
				"Idempotency-Key must be 1 to %d printable ASCII characters, such as a UUID", maxIdempotencyKey))
			return
		}
		p.Once = &db.Once{
			Key:  key,
			Hash: requestHash(r.URL.Path, evs),
			TTL:  idempotencyTTL,
		}
	}
	err := s.cfg.Engine.Publish(r.Context(), p)
	if err == nil {
		err = p.Err
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if p.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusCreated, toEventsJSON(p.Created))
}

// requestHash digests what a publish asks for: the endpoint and the
// validated events, so a retry matches however its JSON is spaced.
func requestHash(path string, evs []db.NewEvent) []byte {
	h := sha256.New()
	io.WriteString(h, path)
	for _, e := range evs {
		fmt.Fprintf(h, "\x00%d:%s\x00%d:%s\x00%t\x00%d:%s", len(e.UserID), e.UserID, len(e.Type), e.Type, e.DataJSON, len(e.Data), e.Data)
	}
	return h.Sum(nil)
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// postNotification serves POST /admin/notifications.
func (s *Server) postNotification(w http.ResponseWriter, r *http.Request) {
	var n notification
	if err := decodeJSON(w, r, &n, s.limits.MaxBodyBytes); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	evs, err := n.events(s.limits)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.publish(w, r, evs)
}

// postBatch serves POST /admin/notifications/batch: every notification or
// none, in one transaction.
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Notifications *[]notification `json:"notifications"`
	}
	if err := decodeJSON(w, r, &body, s.limits.MaxBodyBytes); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if body.Notifications == nil || len(*body.Notifications) == 0 || len(*body.Notifications) > maxBatchItems {
		writeError(w, r, s.log, errorf(http.StatusBadRequest, `"notifications" must list 1 to %d notifications`, maxBatchItems))
		return
	}
	var all []db.NewEvent
	for i, n := range *body.Notifications {
		evs, err := n.events(s.limits)
		if err != nil {
			writeError(w, r, s.log, itemError(i, err))
			return
		}
		all = append(all, evs...)
	}
	s.publish(w, r, all)
}

// listNotifications serves GET /admin/notifications?user=&after=&limit=:
// the log oldest first, or only the events addressed to one user.
func (s *Server) listNotifications(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user, err := single(q, "user")
	if err == nil && user != "" {
		if verr := auth.ValidateSubject(user); verr != nil {
			err = errorf(http.StatusBadRequest, `"user": %v`, verr)
		}
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	rg, err := parseRange(q)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	limit := rg.Limit
	rg.Limit++ // one more tells whether another page follows
	evs, err := s.cfg.Log.List(r.Context(), user, rg)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, ascendingPage(evs, limit))
}

// ascendingPage builds an oldest-first page from up to limit+1 events.
func ascendingPage(evs []db.Event, limit int) pageJSON {
	more := len(evs) > limit
	if more {
		evs = evs[:limit]
	}
	page := pageJSON{HasMore: more}
	if more {
		page.NextAfter = evs[len(evs)-1].ID
	}
	page.Events = toEventsJSON(feed.Listable(evs)).Events
	return page
}

// getNotification serves GET /admin/notifications/{id}.
func (s *Server) getNotification(w http.ResponseWriter, r *http.Request, id int64) {
	e, err := s.cfg.Log.Get(r.Context(), id)
	if err == nil && !feed.Sendable(e) {
		err = db.ErrNotFound // as the listings and feeds, which leave it out
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(e))
}

// deleteNotification serves DELETE /admin/notifications/{id}.
func (s *Server) deleteNotification(w http.ResponseWriter, r *http.Request, id int64) {
	if err := s.cfg.Log.Delete(r.Context(), id); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseRange reads after=, before= and limit= from a query.
func parseRange(q url.Values) (db.Range, error) {
	rg := db.Range{Limit: defaultListLimit}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"after", &rg.After}, {"before", &rg.Before}} {
		v, err := single(q, p.name)
		if err != nil {
			return rg, err
		}
		if v == "" {
			continue
		}
		if *p.dst, err = parseID(v); err != nil {
			return rg, errorf(http.StatusBadRequest, "%q must be an event id (a non-negative integer)", p.name)
		}
		if p.dst == &rg.Before && rg.Before == 0 {
			return rg, errorf(http.StatusBadRequest, `"before" must be at least 1: no event has an id below 1`)
		}
	}
	v, err := single(q, "limit")
	if err != nil {
		return rg, err
	}
	if v != "" {
		n, err := parseID(v)
		if err != nil || n < 1 || n > maxListLimit {
			return rg, errorf(http.StatusBadRequest, `"limit" must be a whole number from 1 to %d`, maxListLimit)
		}
		rg.Limit = int(n)
	}
	return rg, nil
}

// single returns the one value of a query parameter, "" when absent; a
// parameter given twice is an error rather than a guess.
func single(q url.Values, name string) (string, error) {
	vs := q[name]
	if len(vs) > 1 {
		return "", errorf(http.StatusBadRequest, "%q is given %d times; give it once", name, len(vs))
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

// parseID parses an event id or cursor: a decimal, non-negative int64.
func parseID(s string) (int64, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}
