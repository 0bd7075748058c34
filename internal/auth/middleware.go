package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// claimsKey is the context key under which the middleware stores Claims.
type claimsKey struct{}

// ClaimsFrom returns the claims stored by RequireUser or RequireAdmin.
func ClaimsFrom(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(Claims)
	return c, ok
}

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

// RequireUser verifies the token (Authorization: Bearer header or ?token=),
// requires a valid sub (see [ValidateSubject]) and stores the Claims in the
// request context for [ClaimsFrom]. Failures get a 401 JSON answer.
func (v *Verifier) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := TokenFromRequest(r, true)
		if err != nil {
			if errors.Is(err, ErrNoToken) {
				unauthorized(w, "", "missing token: pass it as ?token= or an Authorization: Bearer header")
				return
			}
			unauthorized(w, "invalid_request", err.Error())
			return
		}
		claims, err := v.Verify(token)
		if err != nil {
			unauthorized(w, "invalid_token", verifyMessage(err))
			return
		}
		if err := ValidateSubject(claims.Subject); err != nil {
			unauthorized(w, "invalid_token", "token sub is not a valid user id: "+err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

// RequireAdmin verifies the token of the Authorization: Bearer header only
// (a ?token= is never used: admin tokens must not end up in URLs and access
// logs), requires the feed:admin scope (403 without it) and stores the
// Claims in the request context for [ClaimsFrom]. Other failures get a 401
// JSON answer.
func (v *Verifier) RequireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := TokenFromRequest(r, false)
		if err != nil {
			switch {
			case errors.Is(err, ErrNoToken) && r.URL.Query().Has("token"):
				unauthorized(w, "invalid_request", ErrAdminQueryOnly.Error())
			case errors.Is(err, ErrNoToken):
				unauthorized(w, "", "missing token: pass an admin token in an Authorization: Bearer header")
			default:
				unauthorized(w, "invalid_request", err.Error())
			}
			return
		}
		claims, err := v.Verify(token)
		if err != nil {
			unauthorized(w, "invalid_token", verifyMessage(err))
			return
		}
		if !claims.HasScope(AdminScope) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="feedd", error="insufficient_scope", scope="`+AdminScope+`"`)
			writeError(w, http.StatusForbidden, "token lacks the "+AdminScope+" scope")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

// verifyMessage turns a Verify error into a client message, with a hint on
// what to do where one helps.
func verifyMessage(err error) string {
	switch {
	case errors.Is(err, ErrTokenExpired):
		return err.Error() + ": get a new token and reconnect"
	case errors.Is(err, ErrTokenNotYetValid), errors.Is(err, ErrTokenIssuedFuture):
		return err.Error() + ": check the clocks of the issuer and this server"
	}
	return err.Error()
}

// unauthorized writes a 401 answer. code is the RFC 6750 error code, empty
// when the request carried no token at all.
func unauthorized(w http.ResponseWriter, code, msg string) {
	challenge := `Bearer realm="feedd"`
	if code != "" {
		challenge += `, error="` + code + `", error_description="` + quotable(msg) + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, http.StatusUnauthorized, msg)
}

// writeError writes {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

// quotable replaces the characters RFC 6750 does not allow in
// error_description (outside %x20-21 / %x23-5B / %x5D-7E) with "'".
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '\''
		}
		return r
	}, s)
}
