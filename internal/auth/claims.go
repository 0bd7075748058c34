package auth

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// AdminScope is the scope an admin token must carry.
const AdminScope = "feed:admin"

// MaxSubjectBytes is the longest user id (the sub claim) accepted.
const MaxSubjectBytes = 255

// Claims is what feedd uses from a verified token.
type Claims struct {
	Subject   string
	Scopes    []string
	ExpiresAt time.Time
}

// HasScope reports whether the token carries scope s.
func (c Claims) HasScope(s string) bool {
	return slices.Contains(c.Scopes, s)
}

// ValidateSubject reports whether sub is a usable user id: 1 to 255 bytes
// of valid UTF-8 without control characters (Unicode category Cc). The
// error never contains sub itself.
func ValidateSubject(sub string) error {
	switch {
	case sub == "":
		return ErrSubjectEmpty
	case len(sub) > MaxSubjectBytes:
		return ErrSubjectTooLong
	case !utf8.ValidString(sub):
		return ErrSubjectNotUTF8
	case strings.IndexFunc(sub, func(r rune) bool { return unicode.Is(unicode.Cc, r) }) >= 0:
		return ErrSubjectControlChar
	}
	return nil
}

// tokenClaims is the JSON shape of a token's payload as Verify decodes it.
type tokenClaims struct {
	jwt.RegisteredClaims
	Scope scopeList `json:"scope"`
}

// scopeList decodes the scope claim: a space-separated string (RFC 8693
// style) or, as some issuers send it, a JSON array of strings.
type scopeList []string

// UnmarshalJSON implements json.Unmarshaler.
func (s *scopeList) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*s = nil
		return nil
	}
	var str string
	if err := json.Unmarshal(data, &str); err == nil {
		*s = strings.Fields(str)
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return ErrTokenMalformed
	}
	*s = slices.DeleteFunc(list, func(v string) bool { return v == "" })
	return nil
}

// mintClaims is the JSON shape of a token's payload as Mint writes it.
type mintClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
}
