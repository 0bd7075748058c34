package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/feed"
)

// apiError is an error whose message is meant for the client.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// errorf returns an apiError with the given status and message.
func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// writeError answers err with its status and a JSON {"error": ...} body.
// It is the one place where errors become statuses: validation (apiError,
// with its own status), tokens (401 and 403, with a Bearer challenge), a
// user or the server at its limit of feeds (429, 503), an idempotency key
// used for another request (422), an unknown event (404), storage trouble
// and a shutdown (503, with Retry-After). Anything else is logged and
// answered with a bare 500, its text kept from the client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var ae *apiError
	var authErr *authError
	var se *db.StorageError
	attrs := func(more ...any) []any {
		return append([]any{"method", methodLabel(r.Method), "route", entryOf(r.Context()).route}, more...)
	}
	switch {
	case errors.As(err, &ae):
		writeJSON(w, ae.status, map[string]string{"error": ae.msg})
	case errors.As(err, &authErr):
		w.Header().Set("WWW-Authenticate", authErr.challenge())
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, authErr.status, map[string]string{"error": authErr.msg})
	case errors.Is(err, feed.ErrTooManyFeeds):
		writeJSON(w, http.StatusTooManyRequests, map[string]string{
			"error": "this user already has the maximum number of open feeds; close one and retry"})
	case errors.Is(err, feed.ErrServerFull):
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{
			"error": "the server has its maximum number of open feeds; retry later"})
	case errors.Is(err, feed.ErrStopped):
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the server is shutting down; retry"})
	case errors.Is(err, db.ErrKeyReused):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{
			"error": "this Idempotency-Key was already used with a different request; use a new key for a new notification"})
	case errors.Is(err, db.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such notification"})
	case errors.As(err, &se):
		log.Warn("request failed on storage trouble", attrs("fault", se.Fault, "err", err)...)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": storageMessage(se.Fault)})
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client left; nobody reads the answer.
		log.Debug("request ended by the client", attrs("err", err)...)
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		log.Error("request failed", attrs("err", err)...)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error; the server log has the details"})
	}
}

// storageMessage says what is wrong with the database's storage and what
// the operator does about it.
func storageMessage(f db.Fault) string {
	switch f {
	case db.FaultReadOnly:
		return "the database is read-only: let feedd write to the database file and its directory; it recovers by itself, retry later"
	case db.FaultDiskFull:
		return "the disk holding the database is full: free some space; feedd recovers by itself, retry later"
	case db.FaultUnreachable:
		return "the database cannot be reached: check that PostgreSQL is up and reachable from feedd; feedd recovers by itself, retry later"
	case db.FaultMissing:
		return "the database file is missing or was replaced under the server: put it back (restore it); feedd recovers by itself, retry later"
	}
	return "the database cannot be read (corrupt pages or an I/O error): restore it from a backup"
}
