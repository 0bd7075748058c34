package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/feedd/feedd/internal/auth"
)

// authError is a request without a usable token (401) or whose token may
// not do what it asks (403). writeError answers it with a Bearer challenge.
type authError struct {
	status int
	// code is the RFC 6750 error code, "" when the request carried no
	// token at all.
	code string
	msg  string
}

func (e *authError) Error() string { return e.msg }

// unauthorized is a 401 with the RFC 6750 error code and message.
func unauthorized(code, msg string) error {
	return &authError{status: http.StatusUnauthorized, code: code, msg: msg}
}

// challenge is the WWW-Authenticate header that answers e.
func (e *authError) challenge() string {
	switch {
	case e.status == http.StatusForbidden:
		return `Bearer realm="feedd", error="insufficient_scope", scope="` + auth.AdminScope + `"`
	case e.code == "":
		return `Bearer realm="feedd"`
	}
	return `Bearer realm="feedd", error="` + e.code + `", error_description="` + quotable(e.msg) + `"`
}

type claimsKey struct{}

// claimsOf returns the claims requireUser or requireAdmin stored.
func claimsOf(ctx context.Context) (auth.Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(auth.Claims)
	return c, ok
}

// requireUser lets through requests with a valid user token, in the
// Authorization: Bearer header or ?token=, and stores its claims for
// claimsOf.
func (s *Server) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, err := s.userClaims(r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

func (s *Server) userClaims(r *http.Request) (auth.Claims, error) {
	token, err := auth.TokenFromRequest(r, true)
	switch {
	case errors.Is(err, auth.ErrNoToken):
		return auth.Claims{}, unauthorized("", "missing token: pass it as ?token= or an Authorization: Bearer header")
	case err != nil:
		return auth.Claims{}, unauthorized("invalid_request", err.Error())
	}
	claims, err := s.cfg.Verifier.Verify(token)
	if err != nil {
		return auth.Claims{}, unauthorized("invalid_token", verifyMessage(err))
	}
	if err := auth.ValidateSubject(claims.Subject); err != nil {
		return auth.Claims{}, unauthorized("invalid_token", "token sub is not a valid user id: "+err.Error())
	}
	return claims, nil
}

// requireAdmin lets through requests with an admin token (scope
// feed:admin) in the Authorization: Bearer header only: admin tokens must
// not end up in URLs and access logs, so a ?token= is never used.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, err := s.adminClaims(r)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

func (s *Server) adminClaims(r *http.Request) (auth.Claims, error) {
	token, err := auth.TokenFromRequest(r, false)
	switch {
	case errors.Is(err, auth.ErrNoToken) && r.URL.Query().Has("token"):
		return auth.Claims{}, unauthorized("invalid_request", auth.ErrAdminQueryOnly.Error())
	case errors.Is(err, auth.ErrNoToken):
		return auth.Claims{}, unauthorized("", "missing token: pass an admin token in an Authorization: Bearer header")
	case err != nil:
		return auth.Claims{}, unauthorized("invalid_request", err.Error())
	}
	claims, err := s.cfg.Verifier.Verify(token)
	if err != nil {
		return auth.Claims{}, unauthorized("invalid_token", verifyMessage(err))
	}
	if !claims.HasScope(auth.AdminScope) {
		return auth.Claims{}, &authError{status: http.StatusForbidden, msg: "token lacks the " + auth.AdminScope + " scope"}
	}
	return claims, nil
}

// verifyMessage turns a Verify error into a client message, with a hint on
// what to do where one helps.
func verifyMessage(err error) string {
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return err.Error() + ": get a new token and reconnect"
	case errors.Is(err, auth.ErrTokenNotYetValid), errors.Is(err, auth.ErrTokenIssuedFuture):
		return err.Error() + ": check the clocks of the issuer and this server"
	}
	return err.Error()
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
