package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (r *loginRequest) Validate() error {
	if strings.TrimSpace(r.Email) == "" || r.Password == "" {
		return errs.New(errs.Invalid, "email and password are required")
	}
	return nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	tok, err := s.Auth.Login(r.Context(), req.Email, req.Password, s.clientIP(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tok)
	return nil
}

type meResponse struct {
	User        *auth.User        `json:"user"`
	Role        auth.Role         `json:"role"`
	Tenant      *auth.Tenant      `json:"tenant"`
	Permissions []auth.Permission `json:"permissions"`
	APIKeyID    string            `json:"api_key_id,omitempty"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, _ := auth.PrincipalFrom(ctx)
	// The user lives in the tenant it signed in to, which may differ from the one X-Tenant-Id selected.
	u, err := s.Auth.User(tenant.WithID(ctx, p.TenantID), p.UserID)
	if err != nil {
		return errs.New(errs.Unauthorized, "the signed-in user no longer exists")
	}
	tid, _ := tenant.ID(ctx)
	t, err := s.Auth.Tenant(ctx, tid)
	if err != nil {
		return err
	}
	var perms []auth.Permission
	for _, perm := range auth.Permissions() {
		if p.Can(perm) {
			perms = append(perms, perm)
		}
	}
	writeJSON(w, http.StatusOK, meResponse{User: u, Role: p.Role, Tenant: t, Permissions: perms, APIKeyID: p.APIKeyID})
	return nil
}

func (s *Server) ownTenant(w http.ResponseWriter, r *http.Request) error {
	tid, _ := tenant.ID(r.Context())
	t, err := s.Auth.Tenant(r.Context(), tid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

type createAPIKeyRequest struct {
	Name          string    `json:"name"`
	Role          auth.Role `json:"role,omitempty"`
	ExpiresInDays int       `json:"expires_in_days,omitempty"`
}

func (r *createAPIKeyRequest) Validate() error {
	if r.ExpiresInDays < 0 || r.ExpiresInDays > 3650 {
		return errs.Invalidf("expires_in_days", "expires_in_days must be from 0 (never) to 3650")
	}
	return nil
}

type createAPIKeyResponse struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	*auth.APIKey
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var req createAPIKeyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	key, k, err := s.Auth.CreateAPIKey(r.Context(), req.Name, req.Role, time.Duration(req.ExpiresInDays)*24*time.Hour)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, createAPIKeyResponse{ID: k.ID, Key: key, APIKey: k})
	return nil
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.Auth.APIKeys(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(keys))
	return nil
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) error {
	if err := s.Auth.RevokeAPIKey(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type createUserRequest struct {
	Email    string    `json:"email"`
	Name     string    `json:"name,omitempty"`
	Password string    `json:"password"`
	Role     auth.Role `json:"role"`
	Locale   string    `json:"locale,omitempty"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	var req createUserRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	u, err := s.Auth.CreateUser(r.Context(), auth.CreateUserParams{Email: req.Email, Name: req.Name, Password: req.Password,
		Role: req.Role, Locale: req.Locale})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	us, err := s.Auth.Users(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(us))
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.Auth.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

type updateUserRequest struct {
	Role auth.Role `json:"role"`
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	var req updateUserRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	u, err := s.Auth.SetRole(r.Context(), r.PathValue("id"), req.Role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) setUserStatus(status string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		u, err := s.Auth.SetUserStatus(r.Context(), r.PathValue("id"), status)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, u)
		return nil
	}
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := s.Auth.DeleteUser(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (r *changePasswordRequest) Validate() error {
	if r.CurrentPassword == "" || r.NewPassword == "" {
		return errs.New(errs.Invalid, "current_password and new_password are required")
	}
	return nil
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	var req changePasswordRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	tok, err := s.Auth.ChangePassword(r.Context(), req.CurrentPassword, req.NewPassword)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tok)
	return nil
}

type createTenantRequest struct {
	Name          string    `json:"name"`
	Slug          string    `json:"slug"`
	Plan          auth.Plan `json:"plan,omitempty"`
	Locale        string    `json:"locale,omitempty"`
	AdminEmail    string    `json:"admin_email"`
	AdminPassword string    `json:"admin_password"`
	AdminName     string    `json:"admin_name,omitempty"`
	auth.Quotas
}

type createTenantResponse struct {
	*auth.Tenant
	Admin *auth.User `json:"admin"`
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) error {
	var req createTenantRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	t, u, err := s.Auth.ProvisionTenant(r.Context(), auth.ProvisionParams{Name: req.Name, Slug: req.Slug, Plan: req.Plan,
		Locale: req.Locale, AdminEmail: req.AdminEmail, AdminPassword: req.AdminPassword, AdminName: req.AdminName, Quotas: req.Quotas})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, createTenantResponse{Tenant: t, Admin: u})
	return nil
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.Auth.Tenants(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(ts))
	return nil
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request) error {
	t, err := s.Auth.Tenant(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) setTenantStatus(st auth.TenantStatus) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		t, err := s.Auth.SetTenantStatus(r.Context(), r.PathValue("id"), st)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, t)
		return nil
	}
}

func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request) error {
	if err := s.Auth.DeleteTenant(r.Context(), r.PathValue("id"), r.URL.Query().Get("confirm")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
