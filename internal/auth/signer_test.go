package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSignerRoundTrip(t *testing.T) {
	s, err := NewSigner(testSecret())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		sub              string
		admin            bool
		issuer, audience string
		cfg              Config
		wantScopes       []string
	}{
		{name: "user", sub: "alice"},
		{name: "admin without sub", admin: true, wantScopes: []string{AdminScope}},
		{name: "admin with sub", sub: "ops", admin: true, wantScopes: []string{AdminScope}},
		{name: "issuer and audience", sub: "bob", issuer: "feedd", audience: "feedd-clients", cfg: Config{Issuer: "feedd", Audience: "feedd-clients"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token, err := s.Mint(tc.sub, time.Hour, tc.admin, tc.issuer, tc.audience, clock())
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			tc.cfg.Secret = testSecret()
			got, err := verifier(t, tc.cfg).Verify(token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != tc.sub || !slices.Equal(got.Scopes, tc.wantScopes) || got.HasScope(AdminScope) != tc.admin {
				t.Errorf("claims = %+v, want sub %q scopes %q", got, tc.sub, tc.wantScopes)
			}
			if want := clock().Add(time.Hour); !got.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, want)
			}
		})
	}
}

func TestSignerExpiry(t *testing.T) {
	s, err := NewSigner(testSecret())
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.Mint("alice", time.Minute, false, "", "", clock().Add(-2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier(t, Config{Secret: testSecret()}).Verify(token); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("Verify = %v, want ErrTokenExpired", err)
	}
	if _, err := verifier(t, Config{Secret: append(testSecret(), 'x')}).Verify(token); !errors.Is(err, ErrTokenSignature) {
		t.Errorf("Verify with another secret = %v, want ErrTokenSignature", err)
	}
}

func TestSignerErrors(t *testing.T) {
	if _, err := NewSigner(testSecret()[:31]); err == nil || err.Error() != "jwt secret must be at least 32 bytes" {
		t.Errorf("NewSigner(31 bytes) = %v", err)
	}
	s, err := NewSigner(testSecret())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		sub   string
		ttl   time.Duration
		admin bool
		now   time.Time
		want  string
	}{
		{"empty sub for a user", "", time.Hour, false, clock(), "subject is empty"},
		{"bad sub for an admin", "a\x00", time.Hour, true, clock(), "control character"},
		{"long sub", strings.Repeat("a", 256), time.Hour, false, clock(), "longer than 255"},
		{"zero ttl", "alice", 0, false, clock(), "ttl must be positive"},
		{"negative ttl", "alice", -time.Second, false, clock(), "ttl must be positive"},
		{"zero now", "alice", time.Hour, false, time.Time{}, "zero time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token, err := s.Mint(tc.sub, tc.ttl, tc.admin, "", "", tc.now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Mint = %q, %v; want error containing %q", token, err, tc.want)
			}
		})
	}
}
