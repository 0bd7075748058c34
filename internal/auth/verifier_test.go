package auth

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifyCase is one row of the Verify table.
type verifyCase struct {
	name       string
	verifier   string // key of the verifiers map
	token      string
	wantErr    error    // nil: Verify must succeed
	wantSub    string   // checked on success
	wantScopes []string // checked on success
	wantSubErr error    // ValidateSubject result on success
}

// verifyCases builds the table; it is shared with the test that checks
// error messages never contain the token.
func verifyCases(t *testing.T, k *keys) (map[string]*Verifier, []verifyCase) {
	t.Helper()
	vs := map[string]*Verifier{
		"hs":     verifier(t, Config{Secret: testSecret()}),
		"leeway": verifier(t, Config{Secret: testSecret(), Leeway: 30 * time.Second}),
		"issaud": verifier(t, Config{Secret: testSecret(), Issuer: "https://id.example", Audience: "feedd"}),
		"small":  verifier(t, Config{Secret: testSecret(), MaxTokenBytes: 64}),
		"rsa":    verifier(t, Config{PublicKeyPEM: k.rsaPEM}),
		"p256":   verifier(t, Config{PublicKeyPEM: k.p256PEM}),
		"p384":   verifier(t, Config{PublicKeyPEM: k.p384PEM}),
		"p521":   verifier(t, Config{PublicKeyPEM: k.p521PEM}),
		"ed":     verifier(t, Config{PublicKeyPEM: k.edPEM}),
	}
	otherP256, _ := ecKey(t, k.p256.Curve)
	valid := claims(nil)
	tampered := hs256(t, valid)
	parts := strings.Split(tampered, ".")
	parts[1] = strings.Split(hs256(t, claims(with(map[string]any{"sub": "mallory"}))), ".")[1]
	tampered = strings.Join(parts, ".")
	none := map[string]any{"alg": "none", "typ": "JWT"}
	crit := jwt.NewWithClaims(jwt.SigningMethodHS256, valid)
	crit.Header["crit"] = []string{"exp"}
	critToken, err := crit.SignedString(testSecret())
	if err != nil {
		t.Fatal(err)
	}
	sec := time.Second

	return vs, []verifyCase{
		// Algorithms.
		{name: "HS256", verifier: "hs", token: hs256(t, valid), wantSub: "alice"},
		{name: "HS384", verifier: "hs", token: sign(t, jwt.SigningMethodHS384, testSecret(), valid), wantSub: "alice"},
		{name: "HS512", verifier: "hs", token: sign(t, jwt.SigningMethodHS512, testSecret(), valid), wantSub: "alice"},
		{name: "RS256", verifier: "rsa", token: sign(t, jwt.SigningMethodRS256, k.rsa, valid), wantSub: "alice"},
		{name: "RS512", verifier: "rsa", token: sign(t, jwt.SigningMethodRS512, k.rsa, valid), wantSub: "alice"},
		{name: "PS256", verifier: "rsa", token: sign(t, jwt.SigningMethodPS256, k.rsa, valid), wantSub: "alice"},
		{name: "ES256 P-256", verifier: "p256", token: sign(t, jwt.SigningMethodES256, k.p256, valid), wantSub: "alice"},
		{name: "ES384 P-384", verifier: "p384", token: sign(t, jwt.SigningMethodES384, k.p384, valid), wantSub: "alice"},
		{name: "ES512 P-521", verifier: "p521", token: sign(t, jwt.SigningMethodES512, k.p521, valid), wantSub: "alice"},
		{name: "EdDSA", verifier: "ed", token: sign(t, jwt.SigningMethodEdDSA, k.ed, valid), wantSub: "alice"},
		{name: "alg none", verifier: "hs", token: rawToken(t, none, valid, ""), wantErr: ErrAlgorithm},
		{name: "alg NONE", verifier: "rsa", token: rawToken(t, map[string]any{"alg": "NONE"}, valid, ""), wantErr: ErrAlgorithm},
		{name: "alg unknown", verifier: "hs", token: rawToken(t, map[string]any{"alg": "HS1024"}, valid, "c2ln"), wantErr: ErrAlgorithm},
		{name: "alg missing", verifier: "hs", token: rawToken(t, map[string]any{"typ": "JWT"}, valid, "c2ln"), wantErr: ErrTokenMalformed},
		{name: "HS256 against RSA key", verifier: "rsa", token: hs256(t, valid), wantErr: ErrAlgorithm},
		{name: "RS256 against secret", verifier: "hs", token: sign(t, jwt.SigningMethodRS256, k.rsa, valid), wantErr: ErrAlgorithm},
		{name: "ES256 against P-384 key", verifier: "p384", token: sign(t, jwt.SigningMethodES256, k.p256, valid), wantErr: ErrAlgorithm},
		{name: "ES384 against P-256 key", verifier: "p256", token: sign(t, jwt.SigningMethodES384, k.p384, valid), wantErr: ErrAlgorithm},
		{name: "EdDSA against RSA key", verifier: "rsa", token: sign(t, jwt.SigningMethodEdDSA, k.ed, valid), wantErr: ErrAlgorithm},
		{name: "key confusion: HS256 keyed with the RSA PEM", verifier: "rsa", token: sign(t, jwt.SigningMethodHS256, k.rsaPEM, valid), wantErr: ErrAlgorithm},
		{name: "key confusion: HS256 keyed with the Ed25519 PEM", verifier: "ed", token: sign(t, jwt.SigningMethodHS256, k.edPEM, valid), wantErr: ErrAlgorithm},

		// Signatures.
		{name: "wrong secret", verifier: "hs", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-or-so!"), valid), wantErr: ErrTokenSignature},
		{name: "wrong ECDSA key", verifier: "p256", token: sign(t, jwt.SigningMethodES256, otherP256, valid), wantErr: ErrTokenSignature},
		{name: "tampered payload", verifier: "hs", token: tampered, wantErr: ErrTokenSignature},
		{name: "crit header", verifier: "hs", token: critToken, wantErr: ErrTokenCritical},

		// Time claims.
		{name: "expired", verifier: "hs", token: hs256(t, claims(with(map[string]any{"exp": clock().Add(-sec).Unix()}))), wantErr: ErrTokenExpired},
		{name: "exp equals now", verifier: "hs", token: hs256(t, claims(with(map[string]any{"exp": clock().Unix()}))), wantErr: ErrTokenExpired},
		{name: "exp gets no leeway", verifier: "leeway", token: hs256(t, claims(with(map[string]any{"exp": clock().Add(-3 * sec).Unix()}))), wantErr: ErrTokenExpired},
		{name: "exp equals now with a leeway", verifier: "leeway", token: hs256(t, claims(with(map[string]any{"exp": clock().Unix()}))), wantErr: ErrTokenExpired},
		{name: "exp a second ahead with a leeway", verifier: "leeway", token: hs256(t, claims(with(map[string]any{"exp": clock().Add(sec).Unix()}))), wantSub: "alice"},
		{name: "nbf in the future", verifier: "hs", token: hs256(t, claims(with(map[string]any{"nbf": clock().Add(sec).Unix()}))), wantErr: ErrTokenNotYetValid},
		{name: "nbf inside leeway", verifier: "leeway", token: hs256(t, claims(with(map[string]any{"nbf": clock().Add(20 * sec).Unix()}))), wantSub: "alice"},
		{name: "nbf in the past", verifier: "hs", token: hs256(t, claims(with(map[string]any{"nbf": clock().Add(-sec).Unix()}))), wantSub: "alice"},
		{name: "iat in the future", verifier: "hs", token: hs256(t, claims(with(map[string]any{"iat": clock().Add(time.Minute).Unix()}))), wantErr: ErrTokenIssuedFuture},
		{name: "iat inside leeway", verifier: "leeway", token: hs256(t, claims(with(map[string]any{"iat": clock().Add(20 * sec).Unix()}))), wantSub: "alice"},
		{name: "no iat", verifier: "hs", token: hs256(t, claims(without("iat"))), wantSub: "alice"},
		{name: "no exp", verifier: "hs", token: hs256(t, claims(without("exp"))), wantErr: ErrTokenNoExpiry},
		{name: "exp null", verifier: "hs", token: hs256(t, claims(with(map[string]any{"exp": nil}))), wantErr: ErrTokenMalformed},
		{name: "no exp and expired nbf order", verifier: "hs", token: hs256(t, claims(func(c jwt.MapClaims) { delete(c, "exp"); c["nbf"] = clock().Add(time.Hour).Unix() })), wantErr: ErrTokenNoExpiry},
		{name: "exp is a string", verifier: "hs", token: hs256(t, claims(with(map[string]any{"exp": "tomorrow"}))), wantErr: ErrTokenMalformed},

		// Subject.
		{name: "empty sub", verifier: "hs", token: hs256(t, claims(without("sub"))), wantSub: "", wantSubErr: ErrSubjectEmpty},
		{name: "sub with control char", verifier: "hs", token: hs256(t, claims(with(map[string]any{"sub": "al\x07ice"}))), wantSub: "al\x07ice", wantSubErr: ErrSubjectControlChar},
		{name: "sub of 255 bytes", verifier: "hs", token: hs256(t, claims(with(map[string]any{"sub": strings.Repeat("é", 127) + "a"}))), wantSub: strings.Repeat("é", 127) + "a"},
		{name: "sub of 256 bytes", verifier: "hs", token: hs256(t, claims(with(map[string]any{"sub": strings.Repeat("a", 256)}))), wantSub: strings.Repeat("a", 256), wantSubErr: ErrSubjectTooLong},
		{name: "sub is a number", verifier: "hs", token: hs256(t, claims(with(map[string]any{"sub": 42}))), wantErr: ErrTokenMalformed},

		// Issuer and audience.
		{name: "iss and aud match", verifier: "issaud", token: hs256(t, claims(with(map[string]any{"iss": "https://id.example", "aud": "feedd"}))), wantSub: "alice"},
		{name: "aud list contains", verifier: "issaud", token: hs256(t, claims(with(map[string]any{"iss": "https://id.example", "aud": []string{"other", "feedd"}}))), wantSub: "alice"},
		{name: "iss wrong", verifier: "issaud", token: hs256(t, claims(with(map[string]any{"iss": "https://evil.example", "aud": "feedd"}))), wantErr: ErrTokenIssuer},
		{name: "iss missing", verifier: "issaud", token: hs256(t, claims(with(map[string]any{"aud": "feedd"}))), wantErr: ErrTokenIssuer},
		{name: "aud wrong", verifier: "issaud", token: hs256(t, claims(with(map[string]any{"iss": "https://id.example", "aud": []string{"other"}}))), wantErr: ErrTokenAudience},
		{name: "aud missing", verifier: "issaud", token: hs256(t, claims(with(map[string]any{"iss": "https://id.example"}))), wantErr: ErrTokenAudience},
		{name: "iss and aud ignored when not configured", verifier: "hs", token: hs256(t, claims(with(map[string]any{"iss": "x", "aud": "y"}))), wantSub: "alice"},

		// Shape and size.
		{name: "over the length cap", verifier: "small", token: hs256(t, valid), wantErr: ErrTokenTooLong},
		{name: "over the default cap", verifier: "hs", token: hs256(t, claims(with(map[string]any{"pad": strings.Repeat("x", DefaultMaxTokenBytes)}))), wantErr: ErrTokenTooLong},
		{name: "empty", verifier: "hs", token: "", wantErr: ErrTokenMalformed},
		{name: "garbage", verifier: "hs", token: "not a token at all", wantErr: ErrTokenMalformed},
		{name: "three garbage segments", verifier: "hs", token: "a.b.c", wantErr: ErrTokenMalformed},
		{name: "four segments", verifier: "hs", token: hs256(t, valid) + ".x", wantErr: ErrTokenMalformed},
		{name: "header not an object", verifier: "hs", token: "WzFd.e30.c2ln", wantErr: ErrTokenMalformed},

		// Scopes.
		{name: "scope string", verifier: "hs", token: hs256(t, claims(with(map[string]any{"scope": "read feed:admin  write"}))), wantSub: "alice", wantScopes: []string{"read", "feed:admin", "write"}},
		{name: "scope array", verifier: "hs", token: hs256(t, claims(with(map[string]any{"scope": []string{"feed:admin", "read"}}))), wantSub: "alice", wantScopes: []string{"feed:admin", "read"}},
		{name: "scope empty string", verifier: "hs", token: hs256(t, claims(with(map[string]any{"scope": ""}))), wantSub: "alice"},
		{name: "scope null", verifier: "hs", token: hs256(t, claims(with(map[string]any{"scope": nil}))), wantSub: "alice"},
		{name: "scope number", verifier: "hs", token: hs256(t, claims(with(map[string]any{"scope": 7}))), wantErr: ErrTokenMalformed},
	}
}

func TestVerify(t *testing.T) {
	vs, cases := verifyCases(t, newKeys(t))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := vs[tc.verifier].Verify(tc.token)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != tc.wantSub {
				t.Errorf("Subject = %q, want %q", got.Subject, tc.wantSub)
			}
			if !slices.Equal(got.Scopes, tc.wantScopes) {
				t.Errorf("Scopes = %q, want %q", got.Scopes, tc.wantScopes)
			}
			if got.ExpiresAt.IsZero() {
				t.Error("ExpiresAt is zero")
			}
			if err := ValidateSubject(got.Subject); !errors.Is(err, tc.wantSubErr) {
				t.Errorf("ValidateSubject = %v, want %v", err, tc.wantSubErr)
			}
		})
	}
}

func TestVerifyErrorMessages(t *testing.T) {
	k := newKeys(t)
	vs, _ := verifyCases(t, k)
	tests := []struct {
		verifier, token, want string
	}{
		{"hs", hs256(t, claims(with(map[string]any{"exp": clock().Add(-time.Second).Unix()}))), "token expired"},
		{"hs", hs256(t, claims(with(map[string]any{"nbf": clock().Add(time.Hour).Unix()}))), "token not valid yet"},
		{"hs", hs256(t, claims(without("exp"))), "token has no exp claim"},
		{"hs", "x.y", "token is malformed"},
		{"small", hs256(t, claims(nil)), "token too long (max 64 bytes)"},
		{"rsa", hs256(t, claims(nil)), "token algorithm HS256 is not accepted (accepted: RS256, RS384, RS512, PS256, PS384, PS512)"},
		{"p384", sign(t, jwt.SigningMethodES256, k.p256, claims(nil)), "token algorithm ES256 is not accepted (accepted: ES384)"},
		{"hs", rawToken(t, map[string]any{"alg": "<script>"}, claims(nil), ""), "token algorithm is not accepted (accepted: HS256, HS384, HS512)"},
		{"hs", sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-or-so!"), claims(nil)), "token signature is invalid"},
		{"issaud", hs256(t, claims(with(map[string]any{"aud": "feedd"}))), "token issuer is wrong"},
		{"issaud", hs256(t, claims(with(map[string]any{"iss": "https://id.example", "aud": "x"}))), "token audience is wrong"},
	}
	for _, tc := range tests {
		_, err := vs[tc.verifier].Verify(tc.token)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Verify error = %v, want %q", err, tc.want)
		}
	}
}

func TestVerifyRealClock(t *testing.T) {
	v, err := NewVerifier(Config{Secret: testSecret()}) // Now: nil means time.Now
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(testSecret())
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.Mint("alice", time.Minute, false, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(token); err != nil {
		t.Errorf("Verify: %v", err)
	}
	old, err := s.Mint("alice", time.Minute, false, "", "", clock().AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(old); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("Verify(year-old token) = %v, want ErrTokenExpired", err)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	v := verifier(t, Config{Secret: testSecret()})
	token := hs256(t, claims(nil))
	done := make(chan error)
	for range 8 {
		go func() {
			_, err := v.Verify(token)
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestVerifyTimeClaimTypes checks that exp, nbf and iat are NumericDates
// (RFC 7519): JSON numbers. A number in a string, or any other JSON value,
// is a malformed token whose message names the claim and nothing else.
func TestVerifyTimeClaimTypes(t *testing.T) {
	v := verifier(t, Config{Secret: testSecret(), Leeway: 10 * time.Second})
	exp := clock().Add(time.Hour).Unix()
	past := clock().Add(-time.Hour).Unix()
	for _, claim := range []string{"exp", "nbf", "iat"} {
		value := past
		if claim == "exp" {
			value = exp
		}
		bad := []any{
			strconv.FormatInt(value, 10), // "1772370000": a number in a string
			"tomorrow", true, false, map[string]any{"t": value}, []any{value}, "",
		}
		if claim == "exp" {
			bad = append(bad, nil) // exp is required: null is no date
		}
		for _, b := range bad {
			token := hs256(t, claims(with(map[string]any{claim: b})))
			_, err := v.Verify(token)
			want := "token claim " + claim + " must be a number (seconds since the epoch)"
			if !errors.Is(err, ErrTokenMalformed) || err.Error() != want {
				t.Errorf("%s: %#v: Verify error %v, want %q (ErrTokenMalformed)", claim, b, err, want)
			}
		}
		// Numbers in every JSON form are accepted.
		for _, good := range []any{value, float64(value) + 0.5, json.Number(strconv.FormatInt(value, 10) + ".0"), json.Number(strconv.FormatFloat(float64(value), 'E', -1, 64))} {
			if _, err := v.Verify(hs256(t, claims(with(map[string]any{claim: good})))); err != nil {
				t.Errorf("%s: %v: Verify: %v", claim, good, err)
			}
		}
	}
	// nbf and iat are optional: null is as absent.
	for _, claim := range []string{"nbf", "iat"} {
		if _, err := v.Verify(hs256(t, claims(with(map[string]any{claim: nil})))); err != nil {
			t.Errorf("%s null: Verify: %v", claim, err)
		}
	}
}

// TestVerifyHugeTimes checks NumericDates beyond the years 1 to 9999: they
// are clamped to those years, so exp 1e300 never expires and -1e300 has
// long expired, nbf 1e300 is not valid yet and iat 1e300 is issued in the
// future.
func TestVerifyHugeTimes(t *testing.T) {
	v := verifier(t, Config{Secret: testSecret(), Leeway: 10 * time.Second})
	end := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	for _, exp := range []any{1e300, json.Number("1e400"), json.Number("9223372036854775808"), 253402300800} {
		c, err := v.Verify(hs256(t, claims(with(map[string]any{"exp": exp}))))
		if err != nil {
			t.Errorf("exp %v: Verify: %v", exp, err)
			continue
		}
		if !c.ExpiresAt.Equal(end) {
			t.Errorf("exp %v: ExpiresAt %v, want %v", exp, c.ExpiresAt, end)
		}
	}
	for _, tc := range []struct {
		claim string
		value any
		want  error
	}{
		{"exp", -1e300, ErrTokenExpired},
		{"exp", json.Number("-1e400"), ErrTokenExpired},
		{"exp", json.Number("-9223372036854775809"), ErrTokenExpired},
		{"nbf", 1e300, ErrTokenNotYetValid},
		{"nbf", json.Number("1e400"), ErrTokenNotYetValid},
		{"iat", 1e300, ErrTokenIssuedFuture},
		{"iat", json.Number("1e400"), ErrTokenIssuedFuture},
		{"nbf", -1e300, nil},
		{"iat", -1e300, nil},
		{"exp", json.Number("1e-400"), ErrTokenExpired}, // underflows to 0: 1970
	} {
		_, err := v.Verify(hs256(t, claims(with(map[string]any{tc.claim: tc.value}))))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s %v: Verify error %v, want %v", tc.claim, tc.value, err, tc.want)
		}
	}
}
