package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

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

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
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
	attrs := []any{"method", methodLabel(r.Method), "route", entryOf(r.Context()).route}
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
		log.Warn("request failed on storage trouble", append(attrs, "fault", se.Fault, "err", err)...)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": storageMessage(se.Fault)})
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client left; nobody reads the answer.
		log.Debug("request ended by the client", append(attrs, "err", err)...)
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		log.Error("request failed", append(attrs, "err", err)...)
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
	case db.FaultMissing:
		return "the database file is missing or was replaced under the server: put it back (restore it); feedd recovers by itself, retry later"
	}
	return "the database cannot be read (corrupt pages or an I/O error): restore it from a backup"
}

// decodeJSON reads a JSON request body into v: at most maxBody bytes, valid
// UTF-8, no unknown fields, field names matched exactly and given once,
// nothing after the value.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, maxBody int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errorf(http.StatusRequestEntityTooLarge, "request body is over %d bytes", maxBody)
		}
		return errorf(http.StatusBadRequest, "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, "request body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return errorf(http.StatusBadRequest, "request body is not valid UTF-8")
	}
	if err := checkKeys(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid JSON: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "invalid JSON: unexpected data after the object")
	}
	return nil
}

// jsonProblem words a decoding error for the client. It repeats nothing
// of the body but plain field names (see plainName): not the characters of
// a syntax error, not the literal of a number that does not fit.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		got, _, _ := strings.Cut(typeErr.Value, " ") // "number 1e999" -> "number"
		if plainName(typeErr.Field) {
			return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), got)
		}
		return fmt.Sprintf("expected %s, got %s", jsonKind(typeErr.Type.Kind().String()), got)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("%s at byte %d", syntaxProblem(syntaxErr.Error()), syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends in the middle of a value"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, uerr := strconv.Unquote(name); uerr == nil {
			return unknownField(name, "")
		}
	}
	return "the body does not have the expected shape"
}

// syntaxProblem rewords encoding/json's syntax error, which quotes the
// offending character ("invalid character 'x' after object key"), without
// the character.
func syntaxProblem(msg string) string {
	rest, ok := strings.CutPrefix(msg, "invalid character ")
	if !ok {
		switch msg {
		case "unexpected end of JSON input", "exceeded max depth":
			return msg // quotes nothing
		}
		return "syntax error"
	}
	// rest is the quoted character ('x', ' ', '\x00' or '\''), a space
	// and what the decoder was reading.
	end := len(`'\''`)
	if !strings.HasPrefix(rest, `'\''`) {
		end = strings.IndexByte(rest[min(1, len(rest)):], '\'') + 2
	}
	if end < 2 || end >= len(rest) {
		return "unexpected character"
	}
	return "unexpected character " + strings.TrimSpace(rest[end:])
}

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "int", "int64", "float64":
		return "a number"
	case "ptr":
		return "a value of another type"
	}
	return kind
}
