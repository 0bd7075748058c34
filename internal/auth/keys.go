package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MinSecretBytes is the shortest HMAC secret accepted by [NewVerifier] and
// [NewSigner].
const MinSecretBytes = 32

// minRSABits is the smallest RSA modulus accepted for verification.
const minRSABits = 2048

// checkSecret validates an HMAC secret.
func checkSecret(secret []byte) error {
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("jwt secret must be at least %d bytes", MinSecretBytes)
	}
	return nil
}

// parsePublicKey decodes the first PEM block of data and returns the public
// key it holds and the algorithms that key may verify.
func parsePublicKey(data []byte) (any, []string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, nil, errors.New("jwt public key: no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			key = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, nil, fmt.Errorf("jwt public key: PEM block is a %s; give the public key instead", block.Type)
		}
		return nil, nil, fmt.Errorf("jwt public key: unsupported PEM block type %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("jwt public key: parse %s: %w", block.Type, err)
	}
	return keyAlgs(key)
}

// keyAlgs returns the algorithms a public key may verify, pinned to its type
// and, for ECDSA, to its curve, so a token can never choose how it is checked.
func keyAlgs(key any) (any, []string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, nil, fmt.Errorf("jwt public key: RSA key has %d bits, at least %d are required", bits, minRSABits)
		}
		return k, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return k, []string{"ES256"}, nil
		case elliptic.P384():
			return k, []string{"ES384"}, nil
		case elliptic.P521():
			return k, []string{"ES512"}, nil
		}
		return nil, nil, fmt.Errorf("jwt public key: unsupported ECDSA curve %s (want P-256, P-384 or P-521)", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return k, []string{"EdDSA"}, nil
	}
	return nil, nil, fmt.Errorf("jwt public key: unsupported key type %T (want RSA, ECDSA or Ed25519)", key)
}
