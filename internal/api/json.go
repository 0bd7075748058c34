package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

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
