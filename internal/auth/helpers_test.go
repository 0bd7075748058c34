package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// clock is the fixed clock of every test.
func clock() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

// testSecret is a 32-byte HMAC secret.
func testSecret() []byte { return []byte("0123456789abcdef0123456789abcdef") }

// keys holds freshly generated key pairs and their public keys in PEM.
type keys struct {
	rsa     *rsa.PrivateKey
	rsaPEM  []byte
	p256    *ecdsa.PrivateKey
	p256PEM []byte
	p384    *ecdsa.PrivateKey
	p384PEM []byte
	p521    *ecdsa.PrivateKey
	p521PEM []byte
	ed      ed25519.PrivateKey
	edPEM   []byte
}

// newKeys generates one key of every supported type.
func newKeys(t *testing.T) *keys {
	t.Helper()
	var k keys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	k.rsaPEM = pkixPEM(t, &k.rsa.PublicKey)
	k.p256, k.p256PEM = ecKey(t, elliptic.P256())
	k.p384, k.p384PEM = ecKey(t, elliptic.P384())
	k.p521, k.p521PEM = ecKey(t, elliptic.P521())
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.ed, k.edPEM = priv, pkixPEM(t, pub)
	return &k
}

// ecKey generates an ECDSA key on curve c.
func ecKey(t *testing.T, c elliptic.Curve) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, pkixPEM(t, &k.PublicKey)
}

// pkixPEM marshals pub as a "PUBLIC KEY" PEM block.
func pkixPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// claims returns valid claims for user alice, changed by edit.
func claims(edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice",
		"iat": clock().Add(-time.Minute).Unix(),
		"exp": clock().Add(time.Hour).Unix(),
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

// sign signs c with method and key.
func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// hs256 signs c with the test secret.
func hs256(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, testSecret(), c)
}

// rawToken builds header.payload.sig by hand from JSON-encoded parts.
func rawToken(t *testing.T, header map[string]any, c jwt.MapClaims, sig string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(c) + "." + sig
}

// verifier returns a Verifier for cfg with the test clock, failing the
// test on a config error.
func verifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	cfg.Now = clock
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}
