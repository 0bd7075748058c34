package api

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// routes lists every endpoint. It is the only place that knows gorilla/mux.
//
// A path that is not clean (//events, /a/../events) is not redirected to
// its clean form: that redirect would repeat the path and query, tokens
// and all, in its Location header, outside the access log. It is not
// found instead. Answers for unknown paths and methods never repeat them.
func (s *Server) routes() http.Handler {
	r := mux.NewRouter().SkipClean(true)
	user := s.requireUser
	admin := s.requireAdmin
	handle := func(pattern string, h http.Handler, methods ...string) {
		r.Handle(pattern, s.accessLog(pattern, h)).Methods(methods...)
	}
	withID := func(h func(http.ResponseWriter, *http.Request, int64)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id, err := parseID(mux.Vars(r)["id"])
			if err != nil {
				writeError(w, r, s.log, errorf(http.StatusNotFound, "no such notification: ids are positive integers"))
				return
			}
			h(w, r, id)
		}
	}

	index, assets := page()
	handle("/", index, http.MethodGet, http.MethodHead)
	r.PathPrefix("/assets/").Handler(s.accessLog("/assets/", assets)).Methods(http.MethodGet, http.MethodHead)

	handle("/healthz", http.HandlerFunc(s.healthz), http.MethodGet, http.MethodHead)
	handle("/readyz", http.HandlerFunc(s.readyz), http.MethodGet, http.MethodHead)
	handle("/metrics", s.metrics.Handler(), http.MethodGet)

	handle("/events", s.cors(user(http.HandlerFunc(s.events))), http.MethodGet)
	handle("/events", s.cors(http.HandlerFunc(preflight)), http.MethodOptions)
	handle("/v1/notifications", s.cors(user(http.HandlerFunc(s.history))), http.MethodGet)
	handle("/v1/notifications", s.cors(http.HandlerFunc(preflight)), http.MethodOptions)

	handle("/admin/notifications", admin(http.HandlerFunc(s.postNotification)), http.MethodPost)
	handle("/admin/notifications", admin(http.HandlerFunc(s.listNotifications)), http.MethodGet)
	handle("/admin/notifications/batch", admin(http.HandlerFunc(s.postBatch)), http.MethodPost)
	handle("/admin/notifications/{id:[0-9]+}", admin(withID(s.getNotification)), http.MethodGet)
	handle("/admin/notifications/{id:[0-9]+}", admin(withID(s.deleteNotification)), http.MethodDelete)

	r.NotFoundHandler = s.accessLog("not found", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, s.log, errorf(http.StatusNotFound, "no such endpoint; see the README for the API"))
	}))
	r.MethodNotAllowedHandler = s.accessLog("method not allowed", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		allow := strings.Join(allowedMethods(r, req), ", ")
		w.Header().Set("Allow", allow)
		writeError(w, req, s.log, errorf(http.StatusMethodNotAllowed, "this endpoint does not take that method; it takes %s", allow))
	}))
	return r
}

// allowedMethods lists the methods router serves the path of req with, for
// the Allow header of a 405: each standard method is tried on the routes.
func allowedMethods(router *mux.Router, req *http.Request) []string {
	var allow []string
	for _, m := range standardMethods() {
		probe := req.WithContext(req.Context())
		probe.Method = m
		var match mux.RouteMatch
		if router.Match(probe, &match) && match.MatchErr == nil {
			allow = append(allow, m)
		}
	}
	return allow
}
