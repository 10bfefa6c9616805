// Package auth owns tenants, users, roles, API keys, tokens and the permission matrix.
package auth

import (
	"context"
	"slices"
	"time"

	"github.com/it0/it0/internal/errs"
)

// Plan is a tenant's subscription plan; it sets the default quotas.
type Plan string

// Plans.
const (
	PlanFree       Plan = "free"
	PlanPro        Plan = "pro"
	PlanEnterprise Plan = "enterprise"
)

// TenantStatus is a tenant's lifecycle state.
type TenantStatus string

// Tenant states. A suspended tenant gets 403 on everything; a deleted one no longer exists for the API.
const (
	TenantActive    TenantStatus = "active"
	TenantSuspended TenantStatus = "suspended"
	TenantDeleted   TenantStatus = "deleted"
)

// Engine names a tenant may be allowed to use.
var AllEngines = []string{"claude_code_cli", "claude_api", "openai_compatible"}

// Quotas bound what a tenant may create.
type Quotas struct {
	MaxServers        int `json:"max_servers"`
	MaxSkills         int `json:"max_skills"`
	MaxUsers          int `json:"max_users"`
	MaxSessionsPerDay int `json:"max_sessions_per_day"`
}

// DefaultQuotas returns the quotas that come with plan.
func DefaultQuotas(p Plan) Quotas {
	switch p {
	case PlanPro:
		return Quotas{MaxServers: 200, MaxSkills: 100, MaxUsers: 50, MaxSessionsPerDay: 2000}
	case PlanEnterprise:
		return Quotas{MaxServers: 100000, MaxSkills: 10000, MaxUsers: 10000, MaxSessionsPerDay: 1000000}
	}
	return Quotas{MaxServers: 10, MaxSkills: 20, MaxUsers: 5, MaxSessionsPerDay: 100}
}

// Tenant is one customer organisation; its data lives in its own schema or file.
type Tenant struct {
	ID             string       `json:"id"`
	Name           string       `json:"name"`
	Slug           string       `json:"slug"`
	Plan           Plan         `json:"plan"`
	Status         TenantStatus `json:"status"`
	Quotas                      // flattened: max_servers, max_skills, max_users, max_sessions_per_day
	AllowedEngines []string     `json:"allowed_engines"`
	Locale         string       `json:"locale"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
}

// Role is a user's role inside a tenant.
type Role string

// Roles, from least to most privileged.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// ParseRole validates s as a role.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleViewer, RoleOperator, RoleAdmin:
		return r, nil
	}
	return "", errs.Invalidf("role", "role %q is not one of viewer, operator, admin", s)
}

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// AtLeast reports whether r is at least as privileged as o.
func (r Role) AtLeast(o Role) bool { return r.rank() >= o.rank() && r.rank() > 0 }

// Permission is an action guarded by RBAC.
type Permission string

// Permissions of the original design's matrix, plus the ones the API needs.
const (
	PermViewDashboard  Permission = "view_dashboard"   // read servers, sessions, alerts, tasks
	PermStartTask      Permission = "start_inspection" // start agent tasks and inspections
	PermApproveL1      Permission = "approve_l1"       // confirm L1 commands
	PermApprove        Permission = "approve"          // approve L2 commands
	PermManageServers  Permission = "manage_servers"   // inventory and credentials
	PermSwitchEngine   Permission = "switch_engine"    // change the tenant's agent engine
	PermManageUsers    Permission = "manage_users"     // users and their roles
	PermViewAudit      Permission = "view_audit"       // read and verify the audit log
	PermManageAPIKeys  Permission = "manage_api_keys"  // create and revoke one's own API keys
	PermManageTenants  Permission = "manage_tenants"   // platform admins only
	PermManageSettings Permission = "manage_settings"  // tenant settings, policies, rules
)

// matrix lists the roles granted each permission. PermManageTenants is granted by the platform-admin flag.
var matrix = map[Permission][]Role{
	PermViewDashboard:  {RoleViewer, RoleOperator, RoleAdmin},
	PermManageAPIKeys:  {RoleViewer, RoleOperator, RoleAdmin},
	PermStartTask:      {RoleOperator, RoleAdmin},
	PermApproveL1:      {RoleOperator, RoleAdmin},
	PermApprove:        {RoleAdmin},
	PermManageServers:  {RoleAdmin},
	PermSwitchEngine:   {RoleAdmin},
	PermManageUsers:    {RoleAdmin},
	PermViewAudit:      {RoleAdmin},
	PermManageSettings: {RoleAdmin},
}

// Permissions lists every permission, for documentation and tests.
func Permissions() []Permission {
	return []Permission{PermViewDashboard, PermManageAPIKeys, PermStartTask, PermApproveL1, PermApprove,
		PermManageServers, PermSwitchEngine, PermManageUsers, PermViewAudit, PermManageSettings, PermManageTenants}
}

// User is a person who signs in to a tenant.
type User struct {
	ID            string     `json:"id"`
	TenantID      string     `json:"tenant_id"`
	Email         string     `json:"email"`
	Name          string     `json:"name"`
	Role          Role       `json:"role"`
	PlatformAdmin bool       `json:"platform_admin"`
	Status        string     `json:"status"`
	Locale        string     `json:"locale,omitempty"`
	PasswordHash  string     `json:"-"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	LastLoginAt   *time.Time `json:"last_login_at,omitempty"`
	// TokensValidAfter refuses every access token issued before it (role or password changed, disabled).
	TokensValidAfter *time.Time `json:"-"`
}

// User states. A disabled user cannot sign in and its tokens and API keys stop working.
const (
	UserActive   = "active"
	UserDisabled = "disabled"
)

// APIKey is a long-lived credential for scripts; only its hash is stored.
type APIKey struct {
	ID         string     `json:"id"`
	TenantID   string     `json:"tenant_id"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"` // the first characters of the key, to recognise it
	Role       Role       `json:"role"`
	Hash       []byte     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Principal is who is calling: resolved from a JWT or an API key.
type Principal struct {
	UserID        string
	TenantID      string
	Role          Role
	PlatformAdmin bool
	APIKeyID      string // set when authenticated by API key
	Email         string
}

// Can reports whether p holds perm.
func (p Principal) Can(perm Permission) bool {
	if perm == PermManageTenants {
		return p.PlatformAdmin
	}
	return slices.Contains(matrix[perm], p.Role)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx and whether there is one.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
