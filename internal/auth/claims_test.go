package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateSubject(t *testing.T) {
	tests := []struct {
		name string
		sub  string
		want error
	}{
		{"ascii", "alice", nil},
		{"one byte", "a", nil},
		{"255 bytes", strings.Repeat("a", 255), nil},
		{"unicode", "zoë@例え.jp", nil},
		{"spaces", "alice smith", nil},
		{"empty", "", ErrSubjectEmpty},
		{"256 bytes", strings.Repeat("a", 256), ErrSubjectTooLong},
		{"invalid UTF-8", "al\xffice", ErrSubjectNotUTF8},
		{"NUL", "a\x00", ErrSubjectControlChar},
		{"newline", "a\nb", ErrSubjectControlChar},
		{"DEL", "a\x7f", ErrSubjectControlChar},
		{"C1 control", "a\u0085", ErrSubjectControlChar},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateSubject(tc.sub); !errors.Is(err, tc.want) {
				t.Errorf("ValidateSubject(%q) = %v, want %v", tc.sub, err, tc.want)
			}
		})
	}
}

func TestHasScope(t *testing.T) {
	c := Claims{Scopes: []string{"read", AdminScope}}
	if !c.HasScope(AdminScope) || !c.HasScope("read") {
		t.Error("HasScope misses a scope it has")
	}
	if c.HasScope("feed") || c.HasScope("") || (Claims{}).HasScope(AdminScope) {
		t.Error("HasScope reports a scope it lacks")
	}
}

// TestErrorsNeverContainToken runs every failing token of the Verify table
// through Verify and checks that neither the token nor any of its segments
// appears in the error (the API's tests check its answers and logs).
func TestErrorsNeverContainToken(t *testing.T) {
	vs, cases := verifyCases(t, newKeys(t))
	for _, tc := range cases {
		v := vs[tc.verifier]
		_, verr := v.Verify(tc.token)
		if tc.wantErr != nil && verr == nil {
			t.Fatalf("%s: Verify succeeded", tc.name)
		}
		texts := []string{}
		if verr != nil {
			texts = append(texts, verr.Error())
		}
		for _, text := range texts {
			if leaks(text, tc.token) {
				t.Errorf("%s: %q contains (part of) the token", tc.name, text)
			}
		}
	}
}

// leaks reports whether text contains token or one of its segments of
// eight bytes or more.
func leaks(text, token string) bool {
	if token != "" && strings.Contains(text, token) {
		return true
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(text, seg) {
			return true
		}
	}
	return false
}
