package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/feedd/feedd/internal/auth"
)

// clockLeeway is how far token clocks may drift from ours.
const clockLeeway = 10 * time.Second

// keys builds the token verifier from the settings and, when feedd holds an
// HMAC secret, a signer for minting. With no key configured it uses the
// secret kept beside the database, generating it on first use.
func (c *config) keys(stdout io.Writer) (*auth.Verifier, *auth.Signer, error) {
	set := 0
	for _, v := range []string{c.jwtSecret, c.jwtSecretFile, c.jwtPublicKey} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return nil, nil, usagef("set only one of --jwt-secret, --jwt-secret-file and --jwt-public-key")
	}
	vcfg := auth.Config{Issuer: c.jwtIssuer, Audience: c.jwtAudience, Leeway: clockLeeway, MaxTokenBytes: c.maxTokenBytes}

	if c.jwtPublicKey != "" {
		pem := []byte(c.jwtPublicKey)
		if !strings.HasPrefix(strings.TrimSpace(c.jwtPublicKey), "-----BEGIN") {
			var err error
			if pem, err = readFile("--jwt-public-key", c.jwtPublicKey); err != nil {
				return nil, nil, err
			}
		}
		vcfg.PublicKeyPEM = pem
		v, err := auth.NewVerifier(vcfg)
		if err != nil {
			return nil, nil, usagef("--jwt-public-key: %v", err)
		}
		return v, nil, nil
	}

	var secret []byte
	setting := "--jwt-secret"
	switch {
	case c.jwtSecret != "":
		secret = []byte(c.jwtSecret)
	case c.jwtSecretFile != "":
		setting = "--jwt-secret-file"
		b, err := readFile(setting, c.jwtSecretFile)
		if err != nil {
			return nil, nil, err
		}
		secret = []byte(strings.TrimSpace(string(b)))
	default:
		path := c.db + ".secret"
		setting = path
		var err error
		if secret, err = loadOrCreateSecret(path, stdout); err != nil {
			return nil, nil, err
		}
	}
	vcfg.Secret = secret
	v, err := auth.NewVerifier(vcfg)
	if err != nil {
		return nil, nil, usagef("%s: %v", setting, err)
	}
	signer, err := auth.NewSigner(secret)
	if err != nil {
		return nil, nil, usagef("%s: %v", setting, err)
	}
	return v, signer, nil
}

// loadOrCreateSecret reads the generated secret at path, or makes a new
// random one there, readable by this user only.
func loadOrCreateSecret(path string, stdout io.Writer) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		secret := []byte(strings.TrimSpace(string(b)))
		if len(secret) == 0 {
			return nil, fmt.Errorf("%s is empty: delete it to generate a new secret, or set --jwt-secret", path)
		}
		fmt.Fprintf(stdout, "Using the JWT signing secret in %s.\n", path)
		return secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	secret := []byte(hex.EncodeToString(raw))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another feedd made it first; use theirs.
		return loadOrCreateSecret(path, stdout)
	}
	if err != nil {
		return nil, fmt.Errorf("create secret: %w", err)
	}
	if _, err := f.Write(append(secret, '\n')); err != nil {
		f.Close()
		return nil, fmt.Errorf("write secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write secret: %w", err)
	}
	fmt.Fprintf(stdout, "Generated a JWT signing secret in %s (mode 0600); it is reused on restart.\n", path)
	return secret, nil
}
