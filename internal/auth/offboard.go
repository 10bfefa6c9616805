package auth

import (
	"context"
	"fmt"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

// SetUserStatus disables (UserDisabled) or re-enables (UserActive) user id of the tenant in ctx. Disabling
// revokes the user's API keys and access tokens at once; enabling does not bring them back. Disabling
// oneself or the tenant's last active admin is errs.Conflict.
func (s *Service) SetUserStatus(ctx context.Context, id, status string) (*User, error) {
	if status != UserActive && status != UserDisabled {
		return nil, errs.Invalidf("status", "status %q is not one of active, disabled", status)
	}
	u, err := s.store.UserGet(ctx, id)
	if err != nil {
		return nil, err
	}
	if status == UserDisabled {
		if err := notSelf(ctx, id, "disable"); err != nil {
			return nil, err
		}
	}
	if u.Status == status {
		return u, nil
	}
	old, now := u.Status, s.cfg.Now()
	u.Status, u.UpdatedAt = status, now
	if status == UserDisabled {
		u.TokensValidAfter = &now
	}
	if err := s.store.UserUpdate(ctx, u); err != nil {
		return nil, err
	}
	s.forgetUser(u.TenantID, u.ID)
	detail := map[string]any{"before": old, "after": status}
	action := "user.enabled"
	if status == UserDisabled {
		n, err := s.store.APIKeyRevokeForUser(ctx, id, now)
		if err != nil {
			return nil, err
		}
		action, detail["api_keys_revoked"] = "user.disabled", n
	}
	if _, err := s.audit.Record(ctx, audit.Record{Action: action, ResourceType: "user", ResourceID: id,
		Description: fmt.Sprintf("user %s %s", u.Email, status), Detail: detail}); err != nil {
		return nil, err
	}
	return u, nil
}

// DeleteUser removes user id of the tenant in ctx and its API keys; its access tokens stop working at once.
// Deleting oneself or the tenant's last active admin is errs.Conflict.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	u, err := s.store.UserGet(ctx, id)
	if err != nil {
		return err
	}
	if err := notSelf(ctx, id, "delete"); err != nil {
		return err
	}
	keys, err := s.store.APIKeyList(ctx, id)
	if err != nil {
		return err
	}
	if err := s.store.UserDelete(ctx, id); err != nil {
		return err
	}
	s.forgetUser(u.TenantID, u.ID)
	_, err = s.audit.Record(ctx, audit.Record{Action: "user.deleted", ResourceType: "user", ResourceID: id,
		Description: "user " + u.Email + " deleted", Detail: map[string]any{"email": u.Email, "role": u.Role, "api_keys_deleted": len(keys)}})
	return err
}

// ChangePassword replaces the caller's password after checking the current one, ends every access token
// issued before, and returns a fresh token for the caller.
func (s *Service) ChangePassword(ctx context.Context, current, next string) (Token, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok || p.APIKeyID != "" {
		return Token{}, errs.New(errs.Forbidden, "sign in with your password to change it").
			WithHint("API keys cannot change passwords")
	}
	if err := validPassword("new_password", next); err != nil {
		return Token{}, err
	}
	// The user lives in the tenant it signed in to, which may differ from the one X-Tenant-Id selected.
	ctx = tenant.WithID(ctx, p.TenantID)
	u, err := s.store.UserGet(ctx, p.UserID)
	if err != nil {
		return Token{}, err
	}
	if ok, err := CheckPassword(u.PasswordHash, current); err != nil || !ok {
		return Token{}, errs.Invalidf("current_password", "current_password is wrong")
	}
	hash, err := HashPassword(next, s.cfg.Argon2)
	if err != nil {
		return Token{}, err
	}
	now := s.cfg.Now()
	u.PasswordHash, u.UpdatedAt, u.TokensValidAfter = hash, now, &now
	if err := s.store.UserUpdate(ctx, u); err != nil {
		return Token{}, err
	}
	s.forgetUser(u.TenantID, u.ID)
	if _, err := s.audit.Record(ctx, audit.Record{Action: "user.password_changed", ResourceType: "user", ResourceID: u.ID,
		Description: "password of " + u.Email + " changed; earlier tokens revoked"}); err != nil {
		return Token{}, err
	}
	tok, err := signJWT(s.cfg.JWTSecret, u, now, s.cfg.TokenTTL)
	if err != nil {
		return Token{}, fmt.Errorf("sign token: %w", err)
	}
	return Token{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.cfg.TokenTTL.Seconds())}, nil
}

func notSelf(ctx context.Context, id, verb string) error {
	if p, ok := PrincipalFrom(ctx); ok && p.UserID == id {
		return errs.New(errs.Conflict, "you cannot %s your own account", verb).WithHint("ask another admin")
	}
	return nil
}
