package api

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/feedd/feedd/internal/auth"
)

// authClaims returns valid claims for user alice, changed by edit.
func authClaims(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice",
		"iat": time.Now().Add(-time.Minute).Unix(),
		"exp": time.Now().Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// with returns an edit that sets the given claims.
func with(kv map[string]any) func(jwt.MapClaims) {
	return func(c jwt.MapClaims) { maps.Copy(c, kv) }
}

// without returns an edit that deletes the named claims.
func without(names ...string) func(jwt.MapClaims) {
	return func(c jwt.MapClaims) {
		for _, n := range names {
			delete(c, n)
		}
	}
}

// signWith signs c with HS256 and secret.
func signWith(t *testing.T, secret string, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hs256 signs c with the test secret.
func hs256(t *testing.T, c jwt.MapClaims) string { return signWith(t, testSecret, c) }

// authServer is a Server with the test verifier and nothing else, enough
// for its middleware.
func authServer(t *testing.T) *Server {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Secret: []byte(testSecret)})
	must(t, err)
	return NewServer(Config{Verifier: v})
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
		c, ok := claimsOf(r.Context())
		if !ok {
			t.Error("claimsOf: no claims in context")
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
	s := authServer(t)
	user := hs256(t, authClaims(nil))
	expired := hs256(t, authClaims(with(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})))
	noSub := hs256(t, authClaims(without("sub")))
	ctrlSub := hs256(t, authClaims(with(map[string]any{"sub": "a\nb"})))
	admin := hs256(t, authClaims(with(map[string]any{"sub": "ops", "scope": auth.AdminScope})))
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
			res := serve(t, s.requireUser, tc.req)
			checkResponse(t, res, tc.wantStatus, tc.wantChallenge, tc.wantErr)
			if tc.wantStatus == 200 && res.body["sub"] != tc.wantSub {
				t.Errorf("sub in context = %q, want %q", res.body["sub"], tc.wantSub)
			}
		})
	}
}

func TestRequireAdmin(t *testing.T) {
	s := authServer(t)
	user := hs256(t, authClaims(nil))
	admin := hs256(t, authClaims(func(c jwt.MapClaims) { delete(c, "sub"); c["scope"] = "feed:admin" }))
	forged := signWith(t, "another-secret-of-32-bytes-or-so!", authClaims(with(map[string]any{"scope": auth.AdminScope})))
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
			res := serve(t, s.requireAdmin, tc.req)
			checkResponse(t, res, tc.wantStatus, tc.wantChallenge, tc.wantErr)
			if tc.wantStatus == 200 && res.body["scopes"] != auth.AdminScope {
				t.Errorf("scopes in context = %q, want %q", res.body["scopes"], auth.AdminScope)
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

func TestClaimsOfEmptyContext(t *testing.T) {
	if _, ok := claimsOf(httptest.NewRequest(http.MethodGet, "/", nil).Context()); ok {
		t.Error("claimsOf found claims in a bare context")
	}
}

func TestQuotable(t *testing.T) {
	if got, want := quotable("a\"b\\c\ndé"), "a'b'c'd'"; got != want {
		t.Errorf("quotable = %q, want %q", got, want)
	}
}
