package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by [Verifier.Verify]. Their messages are short, never
// contain the token, and are safe to send to a client. Test for them with
// [errors.Is].
var (
	ErrTokenMalformed     = errors.New("token is malformed")
	ErrTokenTooLong       = errors.New("token too long")
	ErrAlgorithm          = errors.New("token algorithm is not accepted")
	ErrTokenCritical      = errors.New("token has a crit header this server does not support")
	ErrTokenSignature     = errors.New("token signature is invalid")
	ErrTokenNoExpiry      = errors.New("token has no exp claim")
	ErrTokenExpired       = errors.New("token expired")
	ErrTokenNotYetValid   = errors.New("token not valid yet")
	ErrTokenIssuedFuture  = errors.New("token issued in the future (iat)")
	ErrTokenIssuer        = errors.New("token issuer is wrong")
	ErrTokenAudience      = errors.New("token audience is wrong")
	ErrTokenInvalid       = errors.New("token is invalid")
	ErrSubjectEmpty       = errors.New("subject is empty")
	ErrSubjectTooLong     = errors.New("subject is longer than 255 bytes")
	ErrSubjectNotUTF8     = errors.New("subject is not valid UTF-8")
	ErrSubjectControlChar = errors.New("subject contains a control character")
)

// Errors returned by [TokenFromRequest].
var (
	ErrNoToken       = errors.New("missing token")
	ErrAuthHeader    = errors.New("authorization header must be Bearer followed by a token")
	ErrTooManyTokens = errors.New("more than one token in the request")
)

// ErrAdminQueryOnly is what [Verifier.RequireAdmin] answers when the only
// token of an admin request is in the query string.
var ErrAdminQueryOnly = errors.New("admin tokens go in the Authorization: Bearer header, not in the ?token= query parameter")

// algError reports a token algorithm that the verifier does not accept. It
// matches [ErrAlgorithm] with [errors.Is].
type algError struct {
	alg      string   // sanitised; "" when the header value was not printable
	accepted []string // the algorithms the verifier accepts
}

func (e *algError) Error() string {
	var b strings.Builder
	b.WriteString("token algorithm ")
	if e.alg != "" {
		b.WriteString(e.alg)
		b.WriteString(" ")
	}
	b.WriteString("is not accepted (accepted: ")
	b.WriteString(strings.Join(e.accepted, ", "))
	b.WriteString(")")
	return b.String()
}

func (e *algError) Is(target error) bool { return target == ErrAlgorithm }

// newAlgError builds an algError, keeping alg only when it looks like an
// algorithm name, so that no arbitrary header text reaches a client or a log.
func newAlgError(alg string, accepted []string) error {
	if len(alg) > 16 || strings.IndexFunc(alg, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '+')
	}) >= 0 {
		alg = ""
	}
	return &algError{alg: alg, accepted: accepted}
}

// claimTypeError reports a time claim (exp, nbf or iat) that is not a JSON
// number. It matches [ErrTokenMalformed] with [errors.Is].
type claimTypeError struct {
	claim string // "exp", "nbf" or "iat": fixed by the code, not the token
}

func (e *claimTypeError) Error() string {
	return "token claim " + e.claim + " must be a number (seconds since the epoch)"
}

func (e *claimTypeError) Is(target error) bool { return target == ErrTokenMalformed }

// tooLong reports a token over the configured length cap.
func tooLong(limit int) error {
	return fmt.Errorf("%w (max %d bytes)", ErrTokenTooLong, limit)
}
