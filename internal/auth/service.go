package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

// Store is what auth needs from storage. Methods that act inside a tenant read it from ctx.
type Store interface {
	TenantCreate(ctx context.Context, t *Tenant) error                 // also provisions its schema or file
	TenantGet(ctx context.Context, id string) (*Tenant, error)         // errs.NotFound
	TenantList(ctx context.Context) ([]Tenant, error)                  // not deleted
	TenantUpdate(ctx context.Context, t *Tenant) error                 // errs.NotFound
	TenantDrop(ctx context.Context, id string) error                   // removes its data for good
	UserCreate(ctx context.Context, u *User) error                     // errs.QuotaExceeded, errs.Conflict
	UserGet(ctx context.Context, id string) (*User, error)             // errs.NotFound
	UserList(ctx context.Context) ([]User, error)                      //
	UserUpdate(ctx context.Context, u *User) error                     // errs.NotFound; errs.Conflict for the last admin
	UserDelete(ctx context.Context, id string) error                   // also its API keys; errs.NotFound, errs.Conflict
	UserByEmail(ctx context.Context, email string) (*User, error)      // across tenants; errs.NotFound
	UserTouchLogin(ctx context.Context, id string, at time.Time) error //
	UserCount(ctx context.Context) (int, error)                        // across tenants
	APIKeyCreate(ctx context.Context, k *APIKey) error                 //
	APIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)    // across tenants; errs.NotFound
	APIKeyList(ctx context.Context, userID string) ([]APIKey, error)   //
	APIKeyGet(ctx context.Context, id string) (*APIKey, error)         // errs.NotFound
	APIKeyRevoke(ctx context.Context, id string, at time.Time) error   // errs.NotFound, errs.Conflict
	APIKeyTouch(ctx context.Context, id string, at time.Time) error    //
	// APIKeyRevokeForUser revokes every key of user userID and returns how many it revoked.
	APIKeyRevokeForUser(ctx context.Context, userID string, at time.Time) (int, error)
}

// AuditLog records what auth does.
type AuditLog interface {
	Record(ctx context.Context, r audit.Record) (*audit.Entry, error)
	RecordPlatform(ctx context.Context, r audit.Record) (*audit.Entry, error)
}

// Config configures the auth service.
type Config struct {
	JWTSecret []byte        // HS256 key, at least 32 bytes
	TokenTTL  time.Duration // access token lifetime; default 1h
	Argon2    Argon2Params  // zero means DefaultArgon2
	Login     LoginLimits
	Limits    LimitStore // where the login limits keep their counts; nil: in memory (NewMemoryLimits)
	Now       func() time.Time
}

// LoginLimits bound password guessing without letting anyone lock the owner out. Failed sign-ins are
// counted per (account, client IP), per client IP and per account; past a key's free failures each further
// attempt of that key waits a delay that doubles from LoginBaseDelay up to LoginMaxDelay. The per-account
// count (against guessing from many addresses) is skipped for an IP that signed in to that account in the
// last 30 days. Zero fields take the defaults documented in the README.
type LoginLimits struct {
	FreePerPair     int           // default 5
	FreePerIP       int           // default 20
	FreePerAccount  int           // default 50
	AttemptsPerIP   int           // attempts per minute per IP, failed or not; default 30
	BaseDelay       time.Duration // default 1s
	MaxDelay        time.Duration // default 15m
	ForgetAfter     time.Duration // failures are forgotten this long after the last one; default 1h
	KnownIPLifetime time.Duration // default 30 days
}

func (l *LoginLimits) setDefaults() {
	l.FreePerPair = cmp.Or(l.FreePerPair, 5)
	l.FreePerIP = cmp.Or(l.FreePerIP, 20)
	l.FreePerAccount = cmp.Or(l.FreePerAccount, 50)
	l.AttemptsPerIP = cmp.Or(l.AttemptsPerIP, 30)
	l.BaseDelay = cmp.Or(l.BaseDelay, time.Second)
	l.MaxDelay = cmp.Or(l.MaxDelay, 15*time.Minute)
	l.ForgetAfter = cmp.Or(l.ForgetAfter, time.Hour)
	l.KnownIPLifetime = cmp.Or(l.KnownIPLifetime, 30*24*time.Hour)
}

func (c *Config) setDefaults() error {
	if len(c.JWTSecret) < 32 {
		return errors.New("auth: JWT secret must be at least 32 bytes (set IT0_JWT_SECRET)")
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Hour
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = DefaultArgon2
	}
	c.Login.setDefaults()
	if c.Limits == nil {
		c.Limits = NewMemoryLimits()
	}
	if c.Now == nil {
		c.Now = func() time.Time { return time.Now().UTC() }
	}
	return nil
}

// Service is authentication, users, API keys and the tenant lifecycle.
type Service struct {
	cfg      Config
	store    Store
	audit    AuditLog
	attempts *limiter // per IP, failed or not
	limits   loginLimits
	dummy    string // a hash to check against when the email is unknown, so timing does not tell

	statusMu sync.Mutex
	status   map[string]cachedStatus

	usersMu sync.Mutex
	users   map[string]cachedUser // tenant id + "/" + user id

	onForget atomic.Pointer[func(tenantID, userID string)] // forget.go
}

type cachedUser struct {
	user *User
	at   time.Time
}

type cachedStatus struct {
	status TenantStatus
	at     time.Time
}

// New returns a Service.
func New(cfg Config, store Store, log AuditLog) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	dummy, err := HashPassword("dummy password for timing", cfg.Argon2)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg: cfg, store: store, audit: log, dummy: dummy,
		attempts: newLimiter(cfg.Login.AttemptsPerIP, time.Minute),
		limits:   newLoginLimits(cfg.Login, cfg.Limits, cfg.JWTSecret),
		status:   map[string]cachedStatus{},
		users:    map[string]cachedUser{},
	}, nil
}

var (
	errTokenExpired = errs.New(errs.Unauthorized, "token expired").WithHint("sign in again at POST /api/v1/auth/login")
	errTokenInvalid = errs.New(errs.Unauthorized, "invalid token").WithHint("send Authorization: Bearer <access_token or API key>")
	errBadLogin     = errs.New(errs.Unauthorized, "wrong email or password")
	errKeyRevoked   = errs.New(errs.Unauthorized, "API key revoked").WithHint("create a new key")
	errKeyExpired   = errs.New(errs.Unauthorized, "API key expired").WithHint("create a new key")
	errTokenRevoked = errs.New(errs.Unauthorized, "token no longer valid: the account's role, password or status changed").
			WithHint("sign in again at POST /api/v1/auth/login")
	errUserGone = errs.New(errs.Unauthorized, "the signed-in user no longer exists or is disabled").
			WithHint("ask an admin of your tenant")
	// ErrTenantSuspended is returned for every request of a suspended tenant.
	ErrTenantSuspended = errs.New(errs.Forbidden, "tenant suspended").WithHint("ask a platform admin to resume it")
)

// Login checks email and password and returns an access token. ip feeds the rate limiter and the audit log.
func (s *Service) Login(ctx context.Context, email, password, ip string) (Token, error) {
	now := s.cfg.Now()
	email = strings.ToLower(strings.TrimSpace(email))
	// A NUL cannot be in a stored email; the byte must not reach the database either (PostgreSQL refuses it).
	if strings.ContainsRune(email, 0) || !utf8.ValidString(email) {
		return Token{}, errBadLogin
	}
	if blocked, wait := s.attempts.blocked(ip, now); blocked {
		return Token{}, rateLimited(wait)
	}
	keys := s.limits.keys(email, ip)
	wait, err := s.limits.wait(ctx, keys, now)
	if err != nil {
		return Token{}, err
	}
	if wait > 0 {
		return Token{}, rateLimited(wait)
	}
	s.attempts.add(ip, now)
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return Token{}, err
	}
	hash := s.dummy
	if u != nil {
		hash = u.PasswordHash
	}
	ok, herr := CheckPassword(hash, password)
	if u == nil || herr != nil || !ok || u.Status != UserActive {
		if err := s.limits.fail(ctx, keys, now); err != nil {
			return Token{}, err
		}
		rec := audit.Record{Action: "auth.login_failed", ResourceType: "user", Description: "failed login for " + email}
		if u != nil {
			rec.ResourceID = u.ID
			_, err = s.audit.Record(tenant.WithID(ctx, u.TenantID), rec)
		} else {
			_, err = s.audit.RecordPlatform(ctx, rec)
		}
		if err != nil {
			return Token{}, err
		}
		return Token{}, errBadLogin
	}
	t, err := s.store.TenantGet(ctx, u.TenantID)
	if err != nil {
		return Token{}, err
	}
	if t.Status != TenantActive && !u.PlatformAdmin {
		return Token{}, ErrTenantSuspended
	}
	if err := s.limits.succeeded(ctx, keys, now); err != nil {
		return Token{}, err
	}
	tok, err := signJWT(s.cfg.JWTSecret, u, now, s.cfg.TokenTTL)
	if err != nil {
		return Token{}, fmt.Errorf("sign token: %w", err)
	}
	tctx := tenant.WithID(audit.WithActor(ctx, withActorID(audit.ActorFrom(ctx), audit.ActorUser, u.ID)), u.TenantID)
	if err := s.store.UserTouchLogin(tctx, u.ID, now); err != nil {
		return Token{}, err
	}
	if _, err := s.audit.Record(tctx, audit.Record{Action: "auth.login", ResourceType: "user", ResourceID: u.ID,
		Description: "login " + email}); err != nil {
		return Token{}, err
	}
	return Token{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.cfg.TokenTTL.Seconds())}, nil
}

func withActorID(a audit.Actor, typ, id string) audit.Actor {
	a.Type, a.ID = typ, id
	return a
}

func rateLimited(wait time.Duration) error {
	secs := max(int((wait+time.Second-1)/time.Second), 1) // rounded up: retrying on time must succeed
	return &errs.Error{Code: errs.RateLimited, Message: "too many login attempts",
		Hint: fmt.Sprintf("try again in %d seconds", secs), RetryAfter: time.Duration(secs) * time.Second}
}

// Authenticate resolves a bearer credential (a JWT or an API key) to a principal, and refuses it when the
// tenant is suspended or deleted (platform admins keep access to manage it).
func (s *Service) Authenticate(ctx context.Context, bearer string) (Principal, error) {
	now := s.cfg.Now()
	var p Principal
	if isAPIKey(bearer) {
		k, err := s.store.APIKeyByHash(ctx, hashAPIKey(bearer))
		if errs.Is(err, errs.NotFound) {
			return Principal{}, errTokenInvalid
		}
		if err != nil {
			return Principal{}, err
		}
		if k.RevokedAt != nil {
			return Principal{}, errKeyRevoked
		}
		if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
			return Principal{}, errKeyExpired
		}
		u, err := s.store.UserGet(tenant.WithID(ctx, k.TenantID), k.UserID)
		if err != nil || u.Status != UserActive {
			return Principal{}, errTokenInvalid
		}
		// Touch at most once a minute: a write per request would dominate a busy key's cost.
		if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > time.Minute {
			if err := s.store.APIKeyTouch(ctx, k.ID, now); err != nil {
				return Principal{}, err
			}
		}
		role := k.Role
		if !u.Role.AtLeast(role) { // a demoted user's keys are demoted too
			role = u.Role
		}
		p = Principal{UserID: u.ID, TenantID: k.TenantID, Role: role, PlatformAdmin: u.PlatformAdmin, APIKeyID: k.ID, Email: u.Email}
	} else {
		c, err := parseJWT(s.cfg.JWTSecret, bearer, now)
		if err != nil {
			return Principal{}, err
		}
		u, err := s.currentUser(ctx, c.TenantID, c.UserID)
		if err != nil {
			return Principal{}, err
		}
		if u.Status != UserActive {
			return Principal{}, errUserGone
		}
		// Tokens carry their issue time in milliseconds; a token signed in the millisecond of the change
		// (the fresh one a password change returns) stays valid.
		if u.TokensValidAfter != nil && c.IssuedAt.Before(u.TokensValidAfter.Truncate(time.Millisecond)) {
			return Principal{}, errTokenRevoked
		}
		p = Principal{UserID: u.ID, TenantID: u.TenantID, Role: u.Role, PlatformAdmin: u.PlatformAdmin, Email: u.Email}
	}
	st, err := s.tenantStatus(ctx, p.TenantID)
	if err != nil {
		return Principal{}, err
	}
	if st == TenantDeleted {
		return Principal{}, errTokenInvalid
	}
	if st != TenantActive && !p.PlatformAdmin {
		return Principal{}, ErrTenantSuspended
	}
	return p, nil
}

// statusTTL bounds how stale another replica's view of a suspension may be.
const statusTTL = 5 * time.Second

// userTTL bounds how stale another replica's view of a user's role, status and token stamp may be. This
// replica forgets a user it changes at once.
const userTTL = 3 * time.Second

// currentUser returns user userID of tenant tenantID as stored, at most userTTL old. A token whose user is
// gone (deleted, or its tenant dropped) gets errUserGone.
func (s *Service) currentUser(ctx context.Context, tenantID, userID string) (*User, error) {
	now, key := s.cfg.Now(), tenantID+"/"+userID
	s.usersMu.Lock()
	c, ok := s.users[key]
	s.usersMu.Unlock()
	if ok && now.Sub(c.at) >= 0 && now.Sub(c.at) < userTTL {
		return c.user, nil
	}
	u, err := s.store.UserGet(tenant.WithID(ctx, tenantID), userID)
	if errs.Is(err, errs.NotFound) {
		return nil, errUserGone
	}
	if err != nil {
		return nil, err
	}
	s.usersMu.Lock()
	if len(s.users) > 10000 { // bounded: drop everything rather than track ages; it refills in one request each
		clear(s.users)
	}
	s.users[key] = cachedUser{user: u, at: now}
	s.usersMu.Unlock()
	return u, nil
}

func (s *Service) forgetUser(tenantID, userID string) {
	s.usersMu.Lock()
	delete(s.users, tenantID+"/"+userID)
	s.usersMu.Unlock()
	s.forgotten(tenantID, userID)
}

func (s *Service) tenantStatus(ctx context.Context, id string) (TenantStatus, error) {
	now := s.cfg.Now()
	s.statusMu.Lock()
	c, ok := s.status[id]
	s.statusMu.Unlock()
	if ok && now.Sub(c.at) < statusTTL {
		return c.status, nil
	}
	t, err := s.store.TenantGet(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return TenantDeleted, nil
	}
	if err != nil {
		return "", err
	}
	s.statusMu.Lock()
	s.status[id] = cachedStatus{status: t.Status, at: now}
	s.statusMu.Unlock()
	return t.Status, nil
}

func (s *Service) forgetStatus(id string) {
	s.statusMu.Lock()
	delete(s.status, id)
	s.statusMu.Unlock()
	s.forgotten(id, "")
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

func validEmail(field, email string) error {
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 {
		return errs.Invalidf(field, "%s %q is not a valid email address", field, email)
	}
	return nil
}

func validPassword(field, pw string) error {
	if n := len(pw); n < 8 || n > 256 {
		return errs.Invalidf(field, "%s must be 8 to 256 characters", field)
	}
	return nil
}

// ProvisionParams describe a new tenant and its first admin.
type ProvisionParams struct {
	Name, Slug    string
	Plan          Plan
	Locale        string
	AdminEmail    string
	AdminPassword string
	AdminName     string
	// PlatformAdmin makes the first admin a platform admin too (the bootstrap admin is).
	PlatformAdmin bool
	// Quotas override the plan's defaults where non-zero.
	Quotas Quotas
}

// Validate checks p and returns every problem at once.
func (p *ProvisionParams) Validate() error {
	var list []error
	if p.Name = strings.TrimSpace(p.Name); p.Name == "" || len(p.Name) > 200 {
		list = append(list, errs.Invalidf("name", "name is required (1 to 200 characters)"))
	}
	if !slugPattern.MatchString(p.Slug) {
		list = append(list, errs.Invalidf("slug", "slug %q must be 2 to 63 lowercase letters, digits or dashes", p.Slug))
	}
	switch p.Plan {
	case "":
		p.Plan = PlanFree
	case PlanFree, PlanPro, PlanEnterprise:
	default:
		list = append(list, errs.Invalidf("plan", "plan %q is not one of free, pro, enterprise", p.Plan))
	}
	if p.Locale == "" {
		p.Locale = "zh-CN"
	}
	p.AdminEmail = strings.ToLower(strings.TrimSpace(p.AdminEmail))
	list = append(list, validEmail("admin_email", p.AdminEmail), validPassword("admin_password", p.AdminPassword))
	for name, v := range map[string]int{"max_servers": p.Quotas.MaxServers, "max_skills": p.Quotas.MaxSkills,
		"max_users": p.Quotas.MaxUsers, "max_sessions_per_day": p.Quotas.MaxSessionsPerDay} {
		if v < 0 {
			list = append(list, errs.Invalidf(name, "%s must be zero (plan default) or positive", name))
		}
	}
	return errs.Join(list...)
}

func newID() string { return uuid.NewString() }

// ProvisionTenant creates a tenant, its schema or file, and its first admin.
func (s *Service) ProvisionTenant(ctx context.Context, p ProvisionParams) (*Tenant, *User, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	now := s.cfg.Now()
	q := DefaultQuotas(p.Plan)
	for _, o := range []struct {
		dst *int
		v   int
	}{{&q.MaxServers, p.Quotas.MaxServers}, {&q.MaxSkills, p.Quotas.MaxSkills},
		{&q.MaxUsers, p.Quotas.MaxUsers}, {&q.MaxSessionsPerDay, p.Quotas.MaxSessionsPerDay}} {
		if o.v > 0 {
			*o.dst = o.v
		}
	}
	t := &Tenant{ID: newID(), Name: p.Name, Slug: p.Slug, Plan: p.Plan, Status: TenantActive, Quotas: q,
		AllowedEngines: append([]string(nil), AllEngines...), Locale: p.Locale, CreatedAt: now, UpdatedAt: now}
	if _, err := s.store.UserByEmail(ctx, p.AdminEmail); err == nil {
		return nil, nil, errs.Invalidf("admin_email", "a user with email %q already exists", p.AdminEmail)
	}
	if err := s.store.TenantCreate(ctx, t); err != nil {
		return nil, nil, err
	}
	tctx := tenant.WithID(ctx, t.ID)
	hash, err := HashPassword(p.AdminPassword, s.cfg.Argon2)
	if err != nil {
		return nil, nil, err
	}
	name := p.AdminName
	if name == "" {
		name = strings.SplitN(p.AdminEmail, "@", 2)[0]
	}
	u := &User{ID: newID(), TenantID: t.ID, Email: p.AdminEmail, Name: name, Role: RoleAdmin, PlatformAdmin: p.PlatformAdmin,
		Status: "active", PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.store.UserCreate(tctx, u); err != nil {
		return nil, nil, err
	}
	if _, err := s.audit.RecordPlatform(ctx, audit.Record{Action: "tenant.created", ResourceType: "tenant", ResourceID: t.ID,
		Description: "tenant " + t.Slug + " provisioned", Detail: map[string]any{"slug": t.Slug, "plan": t.Plan, "admin_email": u.Email}}); err != nil {
		return nil, nil, err
	}
	if _, err := s.audit.Record(tctx, audit.Record{Action: "tenant.created", ResourceType: "tenant", ResourceID: t.ID,
		Description: "tenant provisioned with admin " + u.Email}); err != nil {
		return nil, nil, err
	}
	return t, u, nil
}

// Tenant returns tenant id (platform admins, or a caller asking about its own tenant).
func (s *Service) Tenant(ctx context.Context, id string) (*Tenant, error) {
	t, err := s.store.TenantGet(ctx, id)
	if err == nil && t.Status == TenantDeleted {
		return nil, errs.New(errs.NotFound, "tenant not found")
	}
	return t, err
}

// TenantLocale is the language of the tenant in ctx: its own, else zh-CN (IT0's first users write Chinese).
func (s *Service) TenantLocale(ctx context.Context) string {
	id, _ := tenant.ID(ctx)
	if t, err := s.Tenant(ctx, id); err == nil && t.Locale != "" {
		return t.Locale
	}
	return "zh-CN"
}

// Tenants lists tenants that are not deleted.
func (s *Service) Tenants(ctx context.Context) ([]Tenant, error) { return s.store.TenantList(ctx) }

// SetTenantStatus suspends or resumes a tenant.
func (s *Service) SetTenantStatus(ctx context.Context, id string, st TenantStatus) (*Tenant, error) {
	if st != TenantActive && st != TenantSuspended {
		return nil, errs.Invalidf("status", "status %q is not one of active, suspended", st)
	}
	t, err := s.Tenant(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.Status == st {
		return t, nil
	}
	old := t.Status
	t.Status, t.UpdatedAt = st, s.cfg.Now()
	if err := s.store.TenantUpdate(ctx, t); err != nil {
		return nil, err
	}
	s.forgetStatus(id)
	action := map[TenantStatus]string{TenantActive: "tenant.resumed", TenantSuspended: "tenant.suspended"}[st]
	if _, err := s.audit.RecordPlatform(ctx, audit.Record{Action: action, ResourceType: "tenant", ResourceID: id,
		Description: fmt.Sprintf("tenant %s %s → %s", t.Slug, old, st)}); err != nil {
		return nil, err
	}
	return t, nil
}

// DeleteTenant removes a tenant and all its data. confirm must equal the tenant's slug: deletion cannot be
// undone, so the caller has to name what it deletes.
func (s *Service) DeleteTenant(ctx context.Context, id, confirm string) error {
	t, err := s.Tenant(ctx, id)
	if err != nil {
		return err
	}
	if confirm != t.Slug {
		return errs.Invalidf("confirm", "deleting a tenant drops all its data; confirm must equal its slug").
			WithHint(fmt.Sprintf("repeat the request with ?confirm=%s", t.Slug))
	}
	if p, ok := PrincipalFrom(ctx); ok && p.TenantID == id {
		return errs.New(errs.Conflict, "you cannot delete the tenant you are signed in to")
	}
	if err := s.store.TenantDrop(ctx, id); err != nil {
		return err
	}
	s.forgetStatus(id)
	_, err = s.audit.RecordPlatform(ctx, audit.Record{Action: "tenant.deleted", ResourceType: "tenant", ResourceID: id,
		Description: "tenant " + t.Slug + " deleted with all its data"})
	return err
}

// CreateUserParams describe a user to add to the caller's tenant.
type CreateUserParams struct {
	Email, Name, Password string
	Role                  Role
	Locale                string
}

// CreateUser adds a user to the tenant in ctx.
func (s *Service) CreateUser(ctx context.Context, p CreateUserParams) (*User, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	p.Email = strings.ToLower(strings.TrimSpace(p.Email))
	_, rerr := ParseRole(string(p.Role))
	if err := errs.Join(validEmail("email", p.Email), validPassword("password", p.Password), rerr); err != nil {
		return nil, err
	}
	hash, err := HashPassword(p.Password, s.cfg.Argon2)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	name := p.Name
	if name == "" {
		name = strings.SplitN(p.Email, "@", 2)[0]
	}
	u := &User{ID: newID(), TenantID: tid, Email: p.Email, Name: name, Role: p.Role, Status: "active", Locale: p.Locale,
		PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := s.store.UserCreate(ctx, u); err != nil {
		return nil, err
	}
	if _, err := s.audit.Record(ctx, audit.Record{Action: "user.created", ResourceType: "user", ResourceID: u.ID,
		Description: "user " + u.Email + " created as " + string(u.Role), Detail: map[string]any{"role": u.Role}}); err != nil {
		return nil, err
	}
	return u, nil
}

// User returns user id of the tenant in ctx.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	return s.store.UserGet(ctx, id)
}

// Users lists the users of the tenant in ctx.
func (s *Service) Users(ctx context.Context) ([]User, error) { return s.store.UserList(ctx) }

// SetRole changes a user's role; the change is audited with the old and new role. The user's access tokens
// stop working (they are reissued at the next sign-in). Demoting the tenant's last admin is errs.Conflict.
func (s *Service) SetRole(ctx context.Context, id string, role Role) (*User, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return nil, err
	}
	u, err := s.store.UserGet(ctx, id)
	if err != nil {
		return nil, err
	}
	if p, ok := PrincipalFrom(ctx); ok && p.UserID == id && role != RoleAdmin {
		return nil, errs.New(errs.Conflict, "you cannot lower your own role").WithHint("ask another admin")
	}
	old := u.Role
	if old == role {
		return u, nil
	}
	now := s.cfg.Now()
	u.Role, u.UpdatedAt, u.TokensValidAfter = role, now, &now
	if err := s.store.UserUpdate(ctx, u); err != nil {
		return nil, err
	}
	s.forgetUser(u.TenantID, u.ID)
	if _, err := s.audit.Record(ctx, audit.Record{Action: "user.role_changed", ResourceType: "user", ResourceID: id,
		Description: fmt.Sprintf("role of %s: %s → %s", u.Email, old, role), Detail: map[string]any{"before": old, "after": role}}); err != nil {
		return nil, err
	}
	return u, nil
}

// CreateAPIKey issues a key for the caller. The key itself is returned once and never stored.
func (s *Service) CreateAPIKey(ctx context.Context, name string, role Role, ttl time.Duration) (string, *APIKey, error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return "", nil, errs.New(errs.Unauthorized, "sign in first")
	}
	if name = strings.TrimSpace(name); name == "" || len(name) > 100 {
		return "", nil, errs.Invalidf("name", "name is required (1 to 100 characters)")
	}
	if role == "" {
		role = p.Role
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", nil, err
	}
	if !p.Role.AtLeast(role) {
		return "", nil, errs.Invalidf("role", "a key cannot have more rights (%s) than its owner (%s)", role, p.Role)
	}
	if ttl < 0 {
		return "", nil, errs.Invalidf("expires_in_days", "expires_in_days must be positive")
	}
	key, hash, err := newAPIKey()
	if err != nil {
		return "", nil, err
	}
	now := s.cfg.Now()
	k := &APIKey{ID: newID(), TenantID: p.TenantID, UserID: p.UserID, Name: name, Prefix: key[:12], Role: role,
		Hash: hash, CreatedAt: now}
	if ttl > 0 {
		exp := now.Add(ttl)
		k.ExpiresAt = &exp
	}
	if err := s.store.APIKeyCreate(ctx, k); err != nil {
		return "", nil, err
	}
	if _, err := s.audit.Record(ctx, audit.Record{Action: "api_key.created", ResourceType: "api_key", ResourceID: k.ID,
		Description: "API key " + k.Name + " (" + k.Prefix + "…) created", Detail: map[string]any{"role": role}}); err != nil {
		return "", nil, err
	}
	return key, k, nil
}

// APIKeys lists keys of the tenant in ctx: all of them for admins, one's own otherwise.
func (s *Service) APIKeys(ctx context.Context) ([]APIKey, error) {
	p, _ := PrincipalFrom(ctx)
	owner := p.UserID
	if p.Role == RoleAdmin {
		owner = ""
	}
	return s.store.APIKeyList(ctx, owner)
}

// RevokeAPIKey revokes key id. Admins may revoke any key of their tenant, others only their own.
func (s *Service) RevokeAPIKey(ctx context.Context, id string) error {
	k, err := s.store.APIKeyGet(ctx, id)
	if err != nil {
		return err
	}
	if p, _ := PrincipalFrom(ctx); p.Role != RoleAdmin && p.UserID != k.UserID {
		return errs.New(errs.NotFound, "API key not found")
	}
	if err := s.store.APIKeyRevoke(ctx, id, s.cfg.Now()); err != nil {
		return err
	}
	_, err = s.audit.Record(ctx, audit.Record{Action: "api_key.revoked", ResourceType: "api_key", ResourceID: id,
		Description: "API key " + k.Name + " (" + k.Prefix + "…) revoked"})
	return err
}

// BootstrapResult says what Bootstrap did.
type BootstrapResult struct {
	Created           bool
	Tenant            *Tenant
	Admin             *User
	GeneratedPassword string // set when no password was configured; print it once
}

// Bootstrap creates the default tenant and its admin (also a platform admin) when no user exists yet.
func (s *Service) Bootstrap(ctx context.Context, email, password string) (BootstrapResult, error) {
	n, err := s.store.UserCount(ctx)
	if err != nil {
		return BootstrapResult{}, err
	}
	if n > 0 {
		return BootstrapResult{}, nil
	}
	var res BootstrapResult
	if email == "" {
		email = "admin@it0.local"
	}
	if password == "" {
		b := make([]byte, 15)
		if _, err := rand.Read(b); err != nil {
			return res, err
		}
		password = base64.RawURLEncoding.EncodeToString(b)
		res.GeneratedPassword = password
	}
	t, u, err := s.ProvisionTenant(ctx, ProvisionParams{Name: "Default", Slug: "default", Plan: PlanEnterprise,
		AdminEmail: email, AdminPassword: password, AdminName: "admin", PlatformAdmin: true})
	if err != nil {
		return res, fmt.Errorf("bootstrap: %w", err)
	}
	res.Created, res.Tenant, res.Admin = true, t, u
	return res, nil
}

// MaxServers returns the max_servers quota of the tenant in ctx (inventory enforces it).
func (s *Service) MaxServers(ctx context.Context) (int, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return 0, err
	}
	t, err := s.Tenant(ctx, tid)
	if err != nil {
		return 0, err
	}
	return t.MaxServers, nil
}

// IssueToken signs an access token for user userID of the tenant in ctx, valid for ttl. The agent gives
// one to each engine process (hook, MCP server) so they act with exactly that user's rights.
func (s *Service) IssueToken(ctx context.Context, userID string, ttl time.Duration) (string, error) {
	u, err := s.store.UserGet(ctx, userID)
	if err != nil {
		return "", err
	}
	return signJWT(s.cfg.JWTSecret, u, s.cfg.Now(), ttl)
}
