package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token is what a successful login returns.
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

type claims struct {
	TenantID      string `json:"tenant_id"`
	Role          Role   `json:"role"`
	PlatformAdmin bool   `json:"platform_admin,omitempty"`
	Email         string `json:"email,omitempty"`
	// IssuedAtMs is iat in milliseconds: a token signed in the same second as a password change must still
	// be told apart from one signed just before it.
	IssuedAtMs int64 `json:"iat_ms,omitempty"`
	jwt.RegisteredClaims
}

const issuer = "it0"

func signJWT(secret []byte, u *User, now time.Time, ttl time.Duration) (string, error) {
	c := claims{
		TenantID:      u.TenantID,
		Role:          u.Role,
		PlatformAdmin: u.PlatformAdmin,
		Email:         u.Email,
		IssuedAtMs:    now.UnixMilli(),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   u.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// tokenClaims is what a verified token says. Only who and where are trusted: the role and the platform-admin
// flag are read from the user store on every request, so a demotion takes effect at once.
type tokenClaims struct {
	UserID, TenantID string
	IssuedAt         time.Time
}

// parseJWT verifies an HS256 token's signature, issuer and expiry and returns who it names.
func parseJWT(secret []byte, tok string, now time.Time) (tokenClaims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(issuer), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return tokenClaims{}, errTokenExpired
		}
		return tokenClaims{}, errTokenInvalid
	}
	if c.Subject == "" || c.TenantID == "" || c.IssuedAt == nil {
		return tokenClaims{}, errTokenInvalid
	}
	iat := c.IssuedAt.Time
	if c.IssuedAtMs != 0 {
		iat = time.UnixMilli(c.IssuedAtMs)
	}
	return tokenClaims{UserID: c.Subject, TenantID: c.TenantID, IssuedAt: iat}, nil
}

// apiKeyPrefix starts every API key, so a key is recognisable in a leak scan and cannot be mistaken for a JWT.
const apiKeyPrefix = "it0_"

// newAPIKey returns a fresh random key and its hash. Keys carry 256 bits of entropy, so a plain SHA-256 is
// a safe way to store them (no slow hash is needed, unlike passwords).
func newAPIKey() (key string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("generate api key: %w", err)
	}
	key = apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, hashAPIKey(key), nil
}

func hashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

func isAPIKey(tok string) bool { return strings.HasPrefix(tok, apiKeyPrefix) }
