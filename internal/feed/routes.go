package feed

import (
	"net/http"

	"github.com/gorilla/mux"
)

// routes lists every endpoint. It is the only place that knows gorilla/mux.
func (s *Server) routes() http.Handler {
	r := mux.NewRouter()
	user := s.cfg.Verifier.RequireUser
	admin := s.cfg.Verifier.RequireAdmin
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

	r.NotFoundHandler = s.accessLog("not found", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, errorf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path))
	}))
	r.MethodNotAllowedHandler = s.accessLog("method not allowed", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, errorf(http.StatusMethodNotAllowed, "method %s is not allowed here", r.Method))
	}))
	return r
}
