package auth

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints HS256 tokens with a secret.
type Signer struct {
	secret []byte
}

// NewSigner returns a Signer for secret, which must be at least 32 bytes.
func NewSigner(secret []byte) (*Signer, error) {
	if err := checkSecret(secret); err != nil {
		return nil, err
	}
	return &Signer{secret: slices.Clone(secret)}, nil
}

// Mint returns a signed HS256 token for sub, valid from now for ttl. sub may
// be "" only when admin is true; otherwise it must pass [ValidateSubject].
// ttl must be positive. The token carries iat and exp = now+ttl (whole
// seconds), scope "feed:admin" when admin is true, and iss and aud when
// issuer and audience are non-empty.
func (s *Signer) Mint(sub string, ttl time.Duration, admin bool, issuer, audience string, now time.Time) (string, error) {
	if sub != "" || !admin {
		if err := ValidateSubject(sub); err != nil {
			return "", fmt.Errorf("mint token: %w", err)
		}
	}
	if ttl <= 0 {
		return "", fmt.Errorf("mint token: ttl must be positive, got %s", ttl)
	}
	if now.IsZero() {
		return "", errors.New("mint token: now is the zero time")
	}
	c := mintClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			Issuer:    issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	if audience != "" {
		c.Audience = jwt.ClaimStrings{audience}
	}
	if admin {
		c.Scope = AdminScope
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.secret)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return token, nil
}
