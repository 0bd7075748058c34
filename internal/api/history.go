package api

import (
	"net/http"

	"github.com/feedd/feedd/internal/feed"
)

// history serves GET /v1/notifications?after=&before=&limit= for the user of
// the token: its own and the broadcast events, oldest first in the answer.
// With after= it pages forward from that id; without it, it returns the
// newest events before before= (or the newest of all), which is what a page
// renders before it opens the feed with last_event_id set to the newest id.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	claims, _ := claimsOf(r.Context())
	q := r.URL.Query()
	rg, err := parseRange(q)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	limit := rg.Limit
	rg.Limit++ // one more tells whether another page follows
	if q.Has("after") {
		evs, err := s.cfg.Log.Feed(r.Context(), claims.Subject, rg)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		writeJSON(w, http.StatusOK, ascendingPage(evs, limit))
		return
	}
	evs, err := s.cfg.Log.FeedLatest(r.Context(), claims.Subject, rg)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	more := len(evs) > limit
	if more {
		evs = evs[1:] // the oldest was only read to learn that more exist
	}
	page := pageJSON{HasMore: more}
	if more {
		page.NextBefore = evs[0].ID
	}
	page.Events = toEventsJSON(feed.Listable(evs)).Events
	writeJSON(w, http.StatusOK, page)
}
