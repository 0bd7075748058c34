package auth

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultMaxTokenBytes is the token length cap used when
// Config.MaxTokenBytes is 0.
const DefaultMaxTokenBytes = 8192

// MaxLeeway is the largest clock leeway [NewVerifier] accepts.
const MaxLeeway = 30 * time.Second

// Config selects the verification key and claim checks.
type Config struct {
	// Secret is an HMAC secret (HS256/384/512) of at least 32 bytes.
	// Exactly one of Secret or PublicKeyPEM must be set.
	Secret []byte
	// PublicKeyPEM is a PEM public key: RSA (RS256/384/512, PS256/384/512),
	// ECDSA (ES256 for P-256, ES384 for P-384, ES512 for P-521) or Ed25519
	// (EdDSA), in a "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE" block.
	// Only the first PEM block is read.
	PublicKeyPEM []byte
	// Issuer, if set, must equal the token's iss.
	Issuer string
	// Audience, if set, must be one of the token's aud values.
	Audience string
	// Leeway is the clock leeway for nbf and iat (a token minted by a host
	// whose clock runs ahead); 0 to MaxLeeway. exp has none: a token is
	// refused from its exp on by this server's clock, the moment a feed
	// opened with it ends, so no token opens a feed that ends at once.
	Leeway time.Duration
	// MaxTokenBytes rejects longer tokens before parsing; 0 means
	// DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks tokens against one key and a set of claim rules. It is
// safe for concurrent use.
type Verifier struct {
	key      any      // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	algs     []string // accepted algorithms, pinned to the key type
	maxBytes int
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	opts     []jwt.ParserOption
}

// NewVerifier checks cfg and returns a Verifier for it.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{maxBytes: cfg.MaxTokenBytes, issuer: cfg.Issuer, audience: cfg.Audience, leeway: cfg.Leeway, now: cfg.Now}
	switch {
	case len(cfg.Secret) > 0 && len(cfg.PublicKeyPEM) > 0:
		return nil, errors.New("jwt: set either a secret or a public key, not both")
	case len(cfg.Secret) > 0:
		if err := checkSecret(cfg.Secret); err != nil {
			return nil, err
		}
		v.key = slices.Clone(cfg.Secret)
		v.algs = []string{"HS256", "HS384", "HS512"}
	case len(cfg.PublicKeyPEM) > 0:
		key, algs, err := parsePublicKey(cfg.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		v.key, v.algs = key, algs
	default:
		return nil, errors.New("jwt: no verification key: set a secret or a public key")
	}
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		return nil, fmt.Errorf("jwt leeway must be between 0 and %s, got %s", MaxLeeway, cfg.Leeway)
	}
	switch {
	case v.maxBytes < 0:
		return nil, fmt.Errorf("jwt max token bytes must not be negative, got %d", v.maxBytes)
	case v.maxBytes == 0:
		v.maxBytes = DefaultMaxTokenBytes
	}
	if v.now == nil {
		v.now = time.Now
	}
	// The parser checks the algorithm and the signature; checkClaims the
	// claims, so that their types and exp's lack of leeway are feedd's.
	v.opts = []jwt.ParserOption{
		jwt.WithValidMethods(v.algs),
		jwt.WithStrictDecoding(),
		jwt.WithoutClaimsValidation(),
	}
	return v, nil
}

// Verify checks token's length, algorithm, signature and claims and returns
// its claims. It does not check the subject; see [ValidateSubject]. The
// error is one of this package's Err* values (match with errors.Is), is safe
// to send to a client and never contains the token.
func (v *Verifier) Verify(token string) (Claims, error) {
	if len(token) > v.maxBytes {
		return Claims{}, tooLong(v.maxBytes)
	}
	if token == "" {
		return Claims{}, ErrTokenMalformed
	}
	var tc tokenClaims
	// A Parser per call: jwt.Parser does not document concurrency safety,
	// and building one is a few small allocations.
	parsed, err := jwt.NewParser(v.opts...).ParseWithClaims(token, &tc, v.keyFunc)
	if err != nil {
		return Claims{}, v.classify(parsed, err)
	}
	if err := v.checkClaims(&tc); err != nil {
		return Claims{}, err
	}
	return Claims{Subject: tc.Subject, Scopes: []string(tc.Scope), ExpiresAt: *tc.expires}, nil
}

// checkClaims checks the claims of a token whose signature is good, and
// reports the most useful failure first. exp must be after now, with no
// leeway; nbf and iat may be up to the leeway ahead of now.
func (v *Verifier) checkClaims(tc *tokenClaims) error {
	now := v.now()
	latest := now.Add(v.leeway)
	switch {
	case tc.expires == nil:
		return ErrTokenNoExpiry
	case !now.Before(*tc.expires):
		return ErrTokenExpired
	case tc.notBefore != nil && latest.Before(*tc.notBefore):
		return ErrTokenNotYetValid
	case tc.issuedAt != nil && latest.Before(*tc.issuedAt):
		return ErrTokenIssuedFuture
	case v.issuer != "" && tc.Issuer != v.issuer:
		return ErrTokenIssuer // wrong or missing iss
	case v.audience != "" && !slices.Contains(tc.Audience, v.audience):
		return ErrTokenAudience // wrong or missing aud
	}
	return nil
}

// keyFunc hands the parser the verification key, after checking again that
// the algorithm belongs to the key type and that no critical header
// extension is asked for (RFC 7515 section 4.1.11).
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	if !slices.Contains(v.algs, t.Method.Alg()) {
		return nil, newAlgError(t.Method.Alg(), v.algs)
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, ErrTokenCritical
	}
	return v.key, nil
}

// classify maps an error from the jwt parser to one of this package's
// errors. Messages of the jwt package are never passed on: they may quote
// parts of the token.
func (v *Verifier) classify(t *jwt.Token, err error) error {
	if errors.Is(err, ErrTokenCritical) {
		return ErrTokenCritical
	}
	if cte, ok := errors.AsType[*claimTypeError](err); ok {
		return cte
	}
	if errors.Is(err, jwt.ErrTokenMalformed) || t == nil {
		return ErrTokenMalformed
	}
	alg, ok := t.Header["alg"].(string)
	if !ok {
		return ErrTokenMalformed
	}
	if !slices.Contains(v.algs, alg) {
		return newAlgError(alg, v.algs)
	}
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return ErrTokenSignature
	}
	return ErrTokenInvalid
}
