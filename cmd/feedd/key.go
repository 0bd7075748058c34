package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
)

// clockLeeway is how far token clocks may drift from ours.
const clockLeeway = 10 * time.Second

// keys builds the token verifier from the settings and, when feedd holds an
// HMAC secret, a signer for minting. With no key configured it uses the
// secret kept beside the database; generate says whether to make one there
// if there is none (only feedd serve does: a secret made elsewhere would
// sign tokens no server accepts). warn is told of a secret file that group
// or others can read.
func (c *config) keys(stdout io.Writer, warn func(string), generate bool) (*auth.Verifier, *auth.Signer, error) {
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
		var err error
		if secret, err = readSecret(c.jwtSecretFile, warn); err != nil {
			return nil, nil, usagef("%s: %v", setting, err)
		}
	case db.IsPostgresURL(c.db):
		return nil, nil, usagef("with a PostgreSQL --db, set --jwt-secret, --jwt-secret-file or --jwt-public-key: every feedd process on the database must verify tokens with the same key")
	default:
		path := c.db + ".secret"
		setting = path
		var err error
		if generate {
			secret, err = loadOrCreateSecret(path, stdout, warn)
		} else {
			secret, err = loadSecret(path, warn)
		}
		if err != nil {
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

// readSecret reads the secret in the file at path, without the white space
// around it, and warns when group or others may read the file.
func readSecret(path string, warn func(string)) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o044 != 0 {
		warn(fmt.Sprintf("the signing secret in %s can be read by group or others (mode %04o); chmod 600 %s", path, perm, path))
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b), nil
}

// loadSecret reads the secret generated at path by feedd serve.
func loadSecret(path string, warn func(string)) ([]byte, error) {
	secret, err := readSecret(path, warn)
	if errors.Is(err, fs.ErrNotExist) {
		shown := path
		if !strings.ContainsRune(path, filepath.Separator) {
			shown = "." + string(filepath.Separator) + path
		}
		return nil, usagef("no signing secret at %s: start feedd serve first (it generates one), or pass --db, --jwt-secret or --jwt-secret-file", shown)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("%s is empty: delete it and start feedd serve to generate a new secret, or set --jwt-secret", path)
	}
	return secret, nil
}

// loadOrCreateSecret reads the generated secret at path, or makes a new
// random one there, readable by this user only.
func loadOrCreateSecret(path string, stdout io.Writer, warn func(string)) ([]byte, error) {
	secret, err := readSecret(path, warn)
	if err == nil {
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
	secret = []byte(hex.EncodeToString(raw))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another feedd made it first; use theirs.
		return loadOrCreateSecret(path, stdout, warn)
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
