package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestTokenRightsFollowTheStore checks that a JWT carries who and where only: role, status and existence are
// read from the user store on every request.
func TestTokenRightsFollowTheStore(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		b := setupApp(t, open)
		tid, tok := b.newTenant("rights")
		ctx := tenant.WithID(context.Background(), tid)
		bID, bTok := b.newUser(tok, "b@rights.example", auth.RoleAdmin)
		if r := b.do("GET", "/api/v1/auth/users", bTok, nil); r.status != 200 {
			t.Fatalf("admin b: %d %s", r.status, r.raw)
		}
		b.now.Advance(time.Millisecond)

		// Ensure a role changed behind this replica's back (another replica, a restore) is honoured within
		// seconds: the token's own claims never grant rights.
		u, err := b.db.UserGet(ctx, bID)
		if err != nil {
			t.Fatal(err)
		}
		u.Role = auth.RoleViewer
		if err := b.db.UserUpdate(ctx, u); err != nil {
			t.Fatal(err)
		}
		b.now.Advance(4 * time.Second)
		if r := b.do("GET", "/api/v1/auth/users", bTok, nil); r.status != 403 || !strings.Contains(r.raw, "viewer") {
			t.Errorf("demoted in the store, token still admin: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", "/api/v1/auth/me", bTok, nil); r.status != 200 || r.body["role"] != "viewer" {
			t.Errorf("me after demotion: %d %s", r.status, r.raw)
		}

		// Ensure a demotion through the API ends the user's tokens at once.
		cID, cTok := b.newUser(tok, "c@rights.example", auth.RoleAdmin)
		b.now.Advance(time.Millisecond)
		if r := b.do("PATCH", "/api/v1/auth/users/"+cID, tok, map[string]string{"role": "viewer"}); r.status != 200 {
			t.Fatalf("demote: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", "/api/v1/auth/users", cTok, nil); r.status != 401 || !strings.Contains(r.raw, "no longer valid") {
			t.Errorf("demoted user's old token: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", "/api/v1/auth/me", b.login("c@rights.example", "password-123"), nil); r.body["role"] != "viewer" {
			t.Errorf("new token after demotion: %s", r.raw)
		}

		// Ensure a deleted user's token is refused.
		if r := b.do("DELETE", "/api/v1/auth/users/"+bID, tok, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", "/api/v1/auth/me", bTok, nil); r.status != 401 {
			t.Errorf("deleted user's token: %d %s", r.status, r.raw)
		}

		// Ensure a password change ends earlier tokens and hands back a working one.
		dID, dTok := b.newUser(tok, "d@rights.example", auth.RoleOperator)
		b.now.Advance(time.Millisecond)
		r := b.do("POST", "/api/v1/auth/password", dTok, map[string]string{"current_password": "wrong-password", "new_password": "new-password-1"})
		if r.status != 400 || !strings.Contains(r.raw, "current_password") {
			t.Errorf("wrong current password: %d %s", r.status, r.raw)
		}
		r = b.do("POST", "/api/v1/auth/password", dTok, map[string]string{"current_password": "password-123", "new_password": "new-password-1"})
		newTok, _ := r.body["access_token"].(string)
		if r.status != 200 || newTok == "" {
			t.Fatalf("change password: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", "/api/v1/auth/me", dTok, nil); r.status != 401 {
			t.Errorf("token from before the password change: %d", r.status)
		}
		if r := b.do("GET", "/api/v1/auth/me", newTok, nil); r.status != 200 || r.body["user"].(map[string]any)["id"] != dID {
			t.Errorf("token from the password change: %d %s", r.status, r.raw)
		}
		if r := b.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "d@rights.example", "password": "password-123"}); r.status != 401 {
			t.Errorf("old password still signs in: %d", r.status)
		}
	})
}

// TestOffboarding disables, re-enables and deletes users and checks their credentials die with them.
func TestOffboarding(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		b := setupApp(t, open)
		tid, tok := b.newTenant("offb")
		ctx := tenant.WithID(context.Background(), tid)
		uID, uTok := b.newUser(tok, "leaver@offb.example", auth.RoleOperator)
		key := b.do("POST", "/api/v1/auth/api-keys", uTok, map[string]string{"name": "laptop"}).body["key"].(string)
		if r := b.do("GET", "/api/v1/auth/me", key, nil); r.status != 200 {
			t.Fatalf("key: %d %s", r.status, r.raw)
		}
		b.now.Advance(time.Millisecond)

		// Ensure disabling stops the token, the key and signing in, at once.
		r := b.do("POST", "/api/v1/auth/users/"+uID+"/disable", tok, nil)
		if r.status != 200 || r.body["status"] != "disabled" {
			t.Fatalf("disable: %d %s", r.status, r.raw)
		}
		for name, cred := range map[string]string{"token": uTok, "key": key} {
			if r := b.do("GET", "/api/v1/auth/me", cred, nil); r.status != 401 {
				t.Errorf("disabled user's %s: %d %s", name, r.status, r.raw)
			}
		}
		if r := b.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "leaver@offb.example", "password": "password-123"}); r.status != 401 {
			t.Errorf("disabled user signs in: %d", r.status)
		}
		// Ensure enabling lets the user sign in again, but revoked keys stay revoked.
		if r := b.do("POST", "/api/v1/auth/users/"+uID+"/enable", tok, nil); r.status != 200 || r.body["status"] != "active" {
			t.Fatalf("enable: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", "/api/v1/auth/me", b.login("leaver@offb.example", "password-123"), nil); r.status != 200 {
			t.Errorf("re-enabled user: %d", r.status)
		}
		if r := b.do("GET", "/api/v1/auth/me", key, nil); r.status != 401 || !strings.Contains(r.raw, "revoked") {
			t.Errorf("key after re-enable: %d %s", r.status, r.raw)
		}
		// Ensure deleting removes the user and its keys.
		key2 := b.do("POST", "/api/v1/auth/api-keys", b.login("leaver@offb.example", "password-123"), map[string]string{"name": "k2"}).body["key"].(string)
		if r := b.do("DELETE", "/api/v1/auth/users/"+uID, tok, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", "/api/v1/auth/me", key2, nil); r.status != 401 {
			t.Errorf("deleted user's key: %d", r.status)
		}
		if r := b.do("GET", "/api/v1/auth/users/"+uID, tok, nil); r.status != 404 {
			t.Errorf("deleted user: %d", r.status)
		}
		if r := b.do("DELETE", "/api/v1/auth/users/"+uID, tok, nil); r.status != 404 {
			t.Errorf("delete twice: %d", r.status)
		}

		// Ensure the last active admin can be neither demoted, disabled nor deleted, even by a platform admin.
		admin, err := b.db.UserByEmail(context.Background(), "admin@offb.example")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ method, path, body string }{
			{"PATCH", "/api/v1/auth/users/" + admin.ID, `{"role":"operator"}`},
			{"POST", "/api/v1/auth/users/" + admin.ID + "/disable", ""},
			{"DELETE", "/api/v1/auth/users/" + admin.ID, ""},
		} {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			if r := b.do(tc.method, tc.path, b.adminTok, body, "X-Tenant-Id", tid); r.status != 409 || !strings.Contains(r.raw, "last active admin") {
				t.Errorf("%s %s on the last admin: %d %s", tc.method, tc.path, r.status, r.raw)
			}
		}
		// Ensure an admin cannot offboard itself.
		for _, tc := range []struct{ method, path string }{{"POST", "/api/v1/auth/users/" + admin.ID + "/disable"}, {"DELETE", "/api/v1/auth/users/" + admin.ID}} {
			if r := b.do(tc.method, tc.path, tok, nil); r.status != 409 || !strings.Contains(r.raw, "your own account") {
				t.Errorf("self %s: %d %s", tc.method, r.status, r.raw)
			}
		}
		// With a second admin the first one may go.
		b.newUser(tok, "second@offb.example", auth.RoleAdmin)
		if r := b.do("POST", "/api/v1/auth/users/"+admin.ID+"/disable", b.adminTok, nil, "X-Tenant-Id", tid); r.status != 200 {
			t.Errorf("disable an admin with another left: %d %s", r.status, r.raw)
		}

		// Ensure every step is in the tenant's audit chain.
		entries, err := b.audit.List(ctx, auditFilterAll())
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range entries {
			actions = append(actions, e.ActionType)
		}
		got := strings.Join(actions, ",")
		for _, want := range []string{"user.disabled", "user.enabled", "user.deleted"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit lacks %s: %s", want, got)
			}
		}
	})
}

// TestLoginThrottle checks that guessing is slowed down per (account, IP), per IP and per account, and that
// an attacker cannot lock the owner out.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	b := setupApp(t, storetest.OpenSQLite)
	b.newTenant("thr")
	ctx := context.Background()
	const email, pw = "admin@thr.example", "password-thr"
	login := func(password, ip string) error {
		_, err := b.auth.Login(ctx, email, password, ip)
		return err
	}
	retryAfter := func(err error) time.Duration {
		var e *errs.Error
		if !errors.As(err, &e) || e.Code != errs.RateLimited {
			return 0
		}
		return e.RetryAfter
	}
	// The owner signed in from the office before the attack.
	if err := login(pw, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	// Ensure five wrong guesses from one address are free and the sixth must wait a second.
	for i := range 5 {
		if err := login("wrong-password", "198.51.100.1"); retryAfter(err) != 0 {
			t.Fatalf("guess %d throttled: %v", i+1, err)
		}
	}
	if d := retryAfter(login("wrong-password", "198.51.100.1")); d != time.Second {
		t.Errorf("6th guess: retry after %v, want 1s", d)
	}
	// Ensure the right password from the attacker's address waits too: throttling cannot tell who is typing.
	if d := retryAfter(login(pw, "198.51.100.1")); d == 0 {
		t.Error("right password from the throttled address passed")
	}
	// Ensure the delay doubles with each further failure.
	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
		b.now.Advance(want / 2)
		if err := login("wrong-password", "198.51.100.1"); retryAfter(err) != 0 {
			t.Fatalf("after waiting: %v", err)
		}
		if d := retryAfter(login("wrong-password", "198.51.100.1")); d != want {
			t.Errorf("retry after %v, want %v", d, want)
		}
	}
	// Ensure the real owner, from another address, still signs in at once.
	if err := login(pw, "203.0.113.7"); err != nil {
		t.Errorf("owner from another address: %v", err)
	}
	// Ensure guesses spread over many addresses hit the per-account bound, which the owner's known
	// address skips.
	for i := range 50 {
		login("wrong-password", fmt.Sprintf("10.1.%d.%d", i/200, i%200))
	}
	if d := retryAfter(login("wrong-password", "10.9.9.9")); d == 0 {
		t.Error("a fresh address was not slowed down after many failures on the account")
	}
	if err := login(pw, "192.0.2.10"); err != nil {
		t.Errorf("owner from a known address during a distributed attack: %v", err)
	}
	// Ensure waiting always ends: after the longest delay the attacker's address may try again.
	b.now.Advance(time.Hour)
	if err := login(pw, "198.51.100.1"); err != nil {
		t.Errorf("after an hour: %v", err)
	}
}
