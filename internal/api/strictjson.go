package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// checkKeys walks a JSON document against the Go type it will be decoded
// into and refuses what encoding/json would let through silently: an object
// key that matches a field only when case is ignored, and a key given twice
// (where the last one would win). Values the type does not describe (such
// as a json.RawMessage) are not looked into. Syntax and type errors are
// left for the decoder to report.
func checkKeys(body []byte, t reflect.Type) error {
	err := walk(json.NewDecoder(bytes.NewReader(body)), t, "")
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae
	}
	return nil
}

var rawMessage = reflect.TypeFor[json.RawMessage]()

// walk reads one value from dec, checking the keys of objects that t is a
// struct for, and of the elements of arrays that t is a slice of. Values of
// other types are skipped by the decoder itself, with its own depth limit,
// so the walk goes no deeper than the Go type.
func walk(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	isStruct := t != nil && t.Kind() == reflect.Struct
	isSlice := t != nil && t.Kind() == reflect.Slice && t != rawMessage
	if !isStruct && !isSlice {
		var skip json.RawMessage
		return dec.Decode(&skip)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, isDelim := tok.(json.Delim)
	switch {
	case !isDelim:
		return nil // a scalar where a container belongs: the decoder says so
	case delim == '[' && isSlice:
		for i := 0; dec.More(); i++ {
			if err := walk(dec, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case delim == '{' && isStruct:
		if err := walkObject(dec, jsonFields(t), path); err != nil {
			return err
		}
	default:
		return errWrongKind // the decoder reports the type error
	}
	_, err = dec.Token() // the closing ] or }
	return err
}

// errWrongKind stops a walk at an array where an object belongs, or the
// other way round.
var errWrongKind = errors.New("wrong kind of value")

// walkObject checks the keys of an object whose opening brace dec has read.
func walkObject(dec *json.Decoder, fields map[string]reflect.Type, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := keyTok.(string)
		ft, known := fields[key]
		if !known {
			for name := range fields {
				if strings.EqualFold(name, key) {
					return errorf(http.StatusBadRequest, "invalid JSON: %s (field names are case-sensitive: use %q)", unknownField(key, path), name)
				}
			}
			return errorf(http.StatusBadRequest, "invalid JSON: %s", unknownField(key, path))
		}
		if seen[key] {
			return errorf(http.StatusBadRequest, "invalid JSON: field %q is given twice%s", key, at(path))
		}
		seen[key] = true
		sub := key
		if path != "" {
			sub = path + "." + key
		}
		if err := walk(dec, ft, sub); err != nil {
			return err
		}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields to their types; nil
// when t is not a struct, so its objects are not checked.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	out := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// at names where in the document a problem is, if not at the top.
func at(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// maxPlainName is the longest name a client sent that a message repeats.
const maxPlainName = 32

// plainName reports whether a name a client sent (a JSON key, a query
// parameter) may be repeated in an answer or a log: 1 to 32 of
// A-Za-z0-9_.- . Such a name helps its sender and cannot carry a token or
// much text; any other is described without being quoted.
func plainName(s string) bool {
	if s == "" || len(s) > maxPlainName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// unknownField words an unknown field, at path in the document, for an
// error message: named if its name is plain, else not.
func unknownField(key, path string) string {
	if plainName(key) {
		return fmt.Sprintf("unknown field %q%s", key, at(path))
	}
	return "an unknown field" + at(path) + " (a name that is not 1 to 32 of A-Za-z0-9_.- is not repeated)"
}
