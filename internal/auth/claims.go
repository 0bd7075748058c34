package auth

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
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
// Verify checks the claims itself (see Verifier.checkClaims), so the time
// claims are read here, by numericDate, rather than by the jwt package.
type tokenClaims struct {
	Issuer   string           `json:"iss"`
	Subject  string           `json:"sub"`
	Audience jwt.ClaimStrings `json:"aud"`
	Scope    scopeList        `json:"scope"`
	// exp, nbf and iat; nil when absent.
	expires, notBefore, issuedAt *time.Time
}

// The jwt parser takes its claims as a jwt.Claims. Verify tells it not to
// validate them, so these getters only report what was decoded.

// GetExpirationTime implements jwt.Claims.
func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return numeric(c.expires), nil }

// GetNotBefore implements jwt.Claims.
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return numeric(c.notBefore), nil }

// GetIssuedAt implements jwt.Claims.
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) { return numeric(c.issuedAt), nil }

// GetIssuer implements jwt.Claims.
func (c *tokenClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *tokenClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) { return c.Audience, nil }

func numeric(t *time.Time) *jwt.NumericDate {
	if t == nil {
		return nil
	}
	return &jwt.NumericDate{Time: *t}
}

// UnmarshalJSON implements json.Unmarshaler: the other claims as their
// types say, exp, nbf and iat through numericDate.
func (c *tokenClaims) UnmarshalJSON(data []byte) error {
	type fields tokenClaims // the same fields without this method
	var raw struct {
		fields
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*c = tokenClaims(raw.fields)
	var err error
	if c.expires, err = numericDate("exp", raw.Exp); err != nil {
		return err
	}
	if c.notBefore, err = numericDate("nbf", raw.Nbf); err != nil {
		return err
	}
	c.issuedAt, err = numericDate("iat", raw.Iat)
	return err
}

// The NumericDates a time.Time is made of: years 1 to 9999, the range
// RFC 3339 and Go's time formatting cover.
const (
	minNumericDate = -62135596800 // 0001-01-01T00:00:00Z
	maxNumericDate = 253402300799 // 9999-12-31T23:59:59Z
)

// numericDate reads the NumericDate claim name (RFC 7519 section 2): a JSON
// number of seconds since the epoch, fractions allowed. It returns nil when
// the claim is absent, or null for nbf and iat, which are optional. Any
// other value, a number in a string included, is refused with a
// claimTypeError. A number beyond the years 1 to 9999 is clamped to them:
// an exp of 1e300 never expires (in practice), one of -1e300 expired long
// ago.
func numericDate(name string, raw json.RawMessage) (*time.Time, error) {
	s := string(raw)
	switch {
	case s == "" || s == "null" && name != "exp":
		return nil, nil
	case s[0] != '-' && (s[0] < '0' || s[0] > '9'):
		return nil, &claimTypeError{claim: name}
	}
	// A JSON number always parses; one out of float64's range is ±Inf.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, &claimTypeError{claim: name}
	}
	var t time.Time
	switch {
	case f >= maxNumericDate:
		t = time.Unix(maxNumericDate, 0)
	case f <= minNumericDate:
		t = time.Unix(minNumericDate, 0)
	default:
		sec, frac := math.Modf(f)
		t = time.Unix(int64(sec), int64(frac*1e9))
	}
	t = t.UTC()
	return &t, nil
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
