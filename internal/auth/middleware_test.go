package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name       string
		header     []string
		query      string
		allowQuery bool
		want       string
		wantErr    error
	}{
		{name: "bearer header", header: []string{"Bearer abc.def.ghi"}, allowQuery: true, want: "abc.def.ghi"},
		{name: "bearer header, admin", header: []string{"Bearer abc.def.ghi"}, want: "abc.def.ghi"},
		{name: "scheme case-insensitive", header: []string{"bEaReR abc"}, allowQuery: true, want: "abc"},
		{name: "extra spaces", header: []string{"  Bearer   abc  "}, want: "abc"},
		{name: "query", query: "token=q.q.q", allowQuery: true, want: "q.q.q"},
		{name: "header wins over query", header: []string{"Bearer h"}, query: "token=q", allowQuery: true, want: "h"},
		{name: "query ignored for admin", query: "token=q", wantErr: ErrNoToken},
		{name: "nothing", allowQuery: true, wantErr: ErrNoToken},
		{name: "empty query value", query: "token=", allowQuery: true, wantErr: ErrNoToken},
		{name: "two query tokens", query: "token=a&token=b", allowQuery: true, wantErr: ErrTooManyTokens},
		{name: "two headers", header: []string{"Bearer a", "Bearer b"}, allowQuery: true, wantErr: ErrTooManyTokens},
		{name: "bearer without token", header: []string{"Bearer"}, allowQuery: true, wantErr: ErrAuthHeader},
		{name: "bearer with spaces in token", header: []string{"Bearer a b"}, allowQuery: true, wantErr: ErrAuthHeader},
		{name: "basic without query", header: []string{"Basic dXNlcjpwdw=="}, allowQuery: true, wantErr: ErrAuthHeader},
		{name: "basic for admin", header: []string{"Basic dXNlcjpwdw=="}, wantErr: ErrAuthHeader},
		{name: "basic falls back to query", header: []string{"Basic dXNlcjpwdw=="}, query: "token=q", allowQuery: true, want: "q"},
		{name: "bare token", header: []string{"abc.def.ghi"}, allowQuery: true, wantErr: ErrAuthHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/events?"+tc.query, nil)
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			got, err := TokenFromRequest(r, tc.allowQuery)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("token = %q, want %q", got, tc.want)
			}
		})
	}
}

// response is a recorded answer of a middleware.
type response struct {
	status    int
	challenge string
	body      map[string]string
	raw       string
}

// serve runs req through mw and a handler that echoes the stored claims.
func serve(t *testing.T, mw func(http.Handler) http.Handler, req *http.Request) response {
	t.Helper()
	rec := httptest.NewRecorder()
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFrom(r.Context())
		if !ok {
			t.Error("ClaimsFrom: no claims in context")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": c.Subject, "scopes": strings.Join(c.Scopes, " ")})
	})).ServeHTTP(rec, req)
	res := response{status: rec.Code, challenge: rec.Header().Get("WWW-Authenticate"), raw: rec.Body.String()}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
		t.Fatalf("body %q is not a JSON object of strings: %v", res.raw, err)
	}
	return res
}

// request builds a GET with an optional bearer header and ?token=.
func request(header, query string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	if query != "" {
		r.URL.RawQuery = url.Values{"token": {query}}.Encode()
	}
	if header != "" {
		r.Header.Set("Authorization", "Bearer "+header)
	}
	return r
}

func TestRequireUser(t *testing.T) {
	v := verifier(t, Config{Secret: testSecret()})
	user := hs256(t, claims(nil))
	expired := hs256(t, claims(with(map[string]any{"exp": clock().Add(-time.Hour).Unix()})))
	noSub := hs256(t, claims(without("sub")))
	ctrlSub := hs256(t, claims(with(map[string]any{"sub": "a\nb"})))
	admin := hs256(t, claims(with(map[string]any{"sub": "ops", "scope": AdminScope})))
	tests := []struct {
		name          string
		req           *http.Request
		wantStatus    int
		wantChallenge string // prefix
		wantErr       string // substring of the JSON error
		wantSub       string
	}{
		{"header", request(user, ""), 200, "", "", "alice"},
		{"query", request("", user), 200, "", "", "alice"},
		{"admin token with sub", request("", admin), 200, "", "", "ops"},
		{"missing", request("", ""), 401, `Bearer realm="feedd"`, "missing token: pass it as ?token= or an Authorization: Bearer header", ""},
		{"expired", request("", expired), 401, `Bearer realm="feedd", error="invalid_token"`, "token expired", ""},
		{"garbage", request("garbage", ""), 401, `Bearer realm="feedd", error="invalid_token"`, "token is malformed", ""},
		{"no sub", request(noSub, ""), 401, `Bearer realm="feedd", error="invalid_token"`, "subject is empty", ""},
		{"control char in sub", request(ctrlSub, ""), 401, `Bearer realm="feedd", error="invalid_token"`, "not a valid user id", ""},
		{"control char in sub (query)", request("", ctrlSub), 401, `Bearer realm="feedd", error="invalid_token"`, "control character", ""},
		{"two query tokens", httptest.NewRequest(http.MethodGet, "/x?token=a&token=b", nil), 401, `Bearer realm="feedd", error="invalid_request"`, "more than one token", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(t, v.RequireUser, tc.req)
			checkResponse(t, res, tc.wantStatus, tc.wantChallenge, tc.wantErr)
			if tc.wantStatus == 200 && res.body["sub"] != tc.wantSub {
				t.Errorf("sub in context = %q, want %q", res.body["sub"], tc.wantSub)
			}
		})
	}
}

func TestRequireAdmin(t *testing.T) {
	v := verifier(t, Config{Secret: testSecret()})
	user := hs256(t, claims(nil))
	admin := hs256(t, claims(func(c jwt.MapClaims) { delete(c, "sub"); c["scope"] = "feed:admin" }))
	forged := sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-or-so!"), claims(with(map[string]any{"scope": AdminScope})))
	tests := []struct {
		name          string
		req           *http.Request
		wantStatus    int
		wantChallenge string
		wantErr       string
	}{
		{"admin in header", request(admin, ""), 200, "", ""},
		{"admin in header, query ignored", request(admin, "garbage"), 200, "", ""},
		{"admin in query", request("", admin), 401, `Bearer realm="feedd", error="invalid_request"`, "admin tokens go in the Authorization: Bearer header"},
		{"missing", request("", ""), 401, `Bearer realm="feedd"`, "missing token: pass an admin token in an Authorization: Bearer header"},
		{"user token", request(user, ""), 403, `Bearer realm="feedd", error="insufficient_scope", scope="feed:admin"`, "token lacks the feed:admin scope"},
		{"bad signature", request(forged, ""), 401, `Bearer realm="feedd", error="invalid_token"`, "token signature is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(t, v.RequireAdmin, tc.req)
			checkResponse(t, res, tc.wantStatus, tc.wantChallenge, tc.wantErr)
			if tc.wantStatus == 200 && res.body["scopes"] != AdminScope {
				t.Errorf("scopes in context = %q, want %q", res.body["scopes"], AdminScope)
			}
		})
	}
}

// checkResponse checks status, challenge and error message of res.
func checkResponse(t *testing.T, res response, status int, challenge, errMsg string) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status = %d, want %d (body %s)", res.status, status, res.raw)
	}
	if status == 200 {
		if res.challenge != "" {
			t.Errorf("WWW-Authenticate = %q on a 200", res.challenge)
		}
		return
	}
	if !strings.HasPrefix(res.challenge, challenge) {
		t.Errorf("WWW-Authenticate = %q, want prefix %q", res.challenge, challenge)
	}
	if challenge == `Bearer realm="feedd"` && res.challenge != challenge {
		t.Errorf("WWW-Authenticate = %q, want exactly %q", res.challenge, challenge)
	}
	if !strings.Contains(res.body["error"], errMsg) {
		t.Errorf("error = %q, want it to contain %q", res.body["error"], errMsg)
	}
}

func TestClaimsFromEmptyContext(t *testing.T) {
	if _, ok := ClaimsFrom(httptest.NewRequest(http.MethodGet, "/", nil).Context()); ok {
		t.Error("ClaimsFrom found claims in a bare context")
	}
}

func TestQuotable(t *testing.T) {
	if got, want := quotable("a\"b\\c\ndé"), "a'b'c'd'"; got != want {
		t.Errorf("quotable = %q, want %q", got, want)
	}
}
