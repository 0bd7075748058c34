package auth

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewVerifierErrors(t *testing.T) {
	p256, p256PEM := ecKey(t, elliptic.P256())
	_, p224PEM := ecKey(t, elliptic.P224())
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error
	}{
		{"neither key", Config{}, "no verification key"},
		{"both keys", Config{Secret: testSecret(), PublicKeyPEM: p256PEM}, "not both"},
		{"short secret", Config{Secret: testSecret()[:31]}, "jwt secret must be at least 32 bytes"},
		{"negative leeway", Config{Secret: testSecret(), Leeway: -time.Second}, "leeway"},
		{"leeway over 30s", Config{Secret: testSecret(), Leeway: 31 * time.Second}, "leeway"},
		{"negative max bytes", Config{Secret: testSecret(), MaxTokenBytes: -1}, "max token bytes"},
		{"not PEM", Config{PublicKeyPEM: []byte("hello")}, "no PEM block"},
		{"bad DER", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}})}, "parse PUBLIC KEY"},
		{"bad PKCS1 DER", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte{1}})}, "parse RSA PUBLIC KEY"},
		{"bad certificate", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})}, "parse CERTIFICATE"},
		{"private key", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})}, "give the public key"},
		{"other block", Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "FOO", Bytes: []byte{1}})}, "unsupported PEM block type"},
		{"P-224", Config{PublicKeyPEM: p224PEM}, "unsupported ECDSA curve P-224"},
		{"X25519", Config{PublicKeyPEM: pkixPEM(t, x25519.PublicKey())}, "unsupported key type"},
		{"RSA 1024", Config{PublicKeyPEM: pkixPEM(t, &small.PublicKey)}, "at least 2048"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.cfg)
			if err == nil {
				t.Fatalf("NewVerifier = %v, want error containing %q", v, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewVerifier error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestNewVerifierKeyForms(t *testing.T) {
	k := newKeys(t)
	cert := selfSigned(t, k.p384)
	tests := []struct {
		name     string
		pem      []byte
		token    string
		wantAlgs []string
	}{
		{"RSA PKIX", k.rsaPEM, sign(t, jwt.SigningMethodPS512, k.rsa, claims(nil)), []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
		{"RSA PKCS1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}), sign(t, jwt.SigningMethodRS384, k.rsa, claims(nil)), nil},
		{"certificate", cert, sign(t, jwt.SigningMethodES384, k.p384, claims(nil)), []string{"ES384"}},
		{"text before the block", append([]byte("# feedd key\n"), k.edPEM...), sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil)), []string{"EdDSA"}},
		{"P-521", k.p521PEM, sign(t, jwt.SigningMethodES512, k.p521, claims(nil)), []string{"ES512"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := verifier(t, Config{PublicKeyPEM: tc.pem})
			if _, err := v.Verify(tc.token); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if tc.wantAlgs != nil && !slices.Equal(v.algs, tc.wantAlgs) {
				t.Errorf("Algorithms = %q, want %q", v.algs, tc.wantAlgs)
			}
		})
	}
}

func TestNewVerifierCopiesSecret(t *testing.T) {
	secret := testSecret()
	v := verifier(t, Config{Secret: secret})
	token := hs256(t, claims(nil))
	secret[0] ^= 0xff
	if _, err := v.Verify(token); err != nil {
		t.Errorf("Verify after the caller changed its secret slice: %v", err)
	}
}

// selfSigned returns a self-signed certificate for key in PEM.
func selfSigned(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer.example"},
		NotBefore:    clock().Add(-time.Hour),
		NotAfter:     clock().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
