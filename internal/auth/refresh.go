package auth

import (
	"context"
	"fmt"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

// Refresh issues a fresh access token for the signed-in principal p, so that a browser session that keeps
// its token only in memory stays signed in without storing the password. Only tokens from a login refresh:
// an API key is its own long-lived credential. The user must still exist and be active, so that disabling
// a user ends their sessions at the next refresh at the latest.
func (s *Service) Refresh(ctx context.Context, p Principal) (Token, error) {
	if p.APIKeyID != "" {
		return Token{}, errs.New(errs.Invalid, "API keys are not refreshed").WithHint("send the access token from POST /api/v1/auth/login")
	}
	u, err := s.store.UserGet(tenant.WithID(ctx, p.TenantID), p.UserID)
	if err != nil || u.Status != "active" {
		return Token{}, errTokenInvalid
	}
	tok, err := signJWT(s.cfg.JWTSecret, u, s.cfg.Now(), s.cfg.TokenTTL)
	if err != nil {
		return Token{}, fmt.Errorf("sign token: %w", err)
	}
	return Token{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.cfg.TokenTTL.Seconds())}, nil
}
