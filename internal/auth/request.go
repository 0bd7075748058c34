package auth

import (
	"net/http"
	"strings"
)

// TokenFromRequest returns the token of r: the Authorization: Bearer header
// (scheme case-insensitive), else, when allowQuery is true, the token query
// parameter. A header with another scheme (Basic, say, added by a proxy or
// a browser) is passed over when allowQuery is true and a query token is
// present. Errors: [ErrNoToken] when there is none, [ErrAuthHeader] for a
// header that is not "Bearer <token>", [ErrTooManyTokens] for repeated
// Authorization headers or ?token= values.
func TokenFromRequest(r *http.Request, allowQuery bool) (string, error) {
	headerErr := ErrNoToken
	switch h := r.Header.Values("Authorization"); len(h) {
	case 0:
	case 1:
		token, isBearer, err := parseBearer(h[0])
		if err == nil {
			return token, nil
		}
		if isBearer || !allowQuery {
			return "", err
		}
		headerErr = err
	default:
		return "", ErrTooManyTokens
	}
	if !allowQuery {
		return "", headerErr
	}
	switch q := r.URL.Query()["token"]; {
	case len(q) > 1:
		return "", ErrTooManyTokens
	case len(q) == 1 && q[0] != "":
		return q[0], nil
	}
	return "", headerErr
}

// parseBearer parses an Authorization header value. isBearer reports
// whether the scheme is Bearer.
func parseBearer(h string) (token string, isBearer bool, err error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, ErrAuthHeader
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", true, ErrAuthHeader
	}
	return token, true, nil
}
