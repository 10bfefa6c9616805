package auth

import (
	"strings"
	"testing"
	"time"
)

func TestPassword(t *testing.T) {
	t.Parallel()
	p := Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}
	h, err := HashPassword("correct horse", p)
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q %v", h, err)
	}
	h2, _ := HashPassword("correct horse", p)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt?")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct hors": false, "": false} {
		if ok, err := CheckPassword(h, pw); ok != want || err != nil {
			t.Errorf("check %q = %v %v", pw, ok, err)
		}
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=64,t=1,p=1$$", "$bcrypt$x", "$argon2id$v=18$m=64,t=1,p=1$AAAA$AAAA", h[:len(h)-5] + "!!!!!"} {
		if ok, err := CheckPassword(bad, "x"); ok || err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

func TestJWT(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("s", 32))
	now := time.UnixMilli(1_800_000_000_123)
	u := &User{ID: "u1", TenantID: "t1", Role: RoleOperator, Email: "a@b.c"}
	tok, err := signJWT(secret, u, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseJWT(secret, tok, now.Add(59*time.Minute))
	// Ensure the issue time keeps its milliseconds (a password change in the same second must still count).
	if err != nil || p.UserID != "u1" || p.TenantID != "t1" || !p.IssuedAt.Equal(now) {
		t.Fatalf("parse: %+v %v", p, err)
	}
	if _, err := parseJWT(secret, tok, now.Add(61*time.Minute)); err != errTokenExpired {
		t.Errorf("expired: %v", err)
	}
	if _, err := parseJWT([]byte(strings.Repeat("x", 32)), tok, now); err != errTokenInvalid {
		t.Errorf("other secret: %v", err)
	}
	parts := strings.Split(tok, ".")
	// Ensure alg=none and a changed payload are refused.
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
	if _, err := parseJWT(secret, none, now); err != errTokenInvalid {
		t.Errorf("alg none: %v", err)
	}
	evil := strings.Replace(tok, parts[1], parts[1][:len(parts[1])-2]+"xx", 1)
	if _, err := parseJWT(secret, evil, now); err != errTokenInvalid {
		t.Errorf("edited payload: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiter(3, time.Minute)
	now := time.Unix(0, 0)
	for i := range 3 {
		if b, _ := l.blocked("k", now); b {
			t.Fatalf("blocked after %d", i)
		}
		l.add("k", now)
	}
	if b, wait := l.blocked("k", now.Add(10*time.Second)); !b || wait != 50*time.Second {
		t.Errorf("blocked=%v wait=%v", b, wait)
	}
	if b, _ := l.blocked("other", now); b {
		t.Error("keys are not independent")
	}
	if b, _ := l.blocked("k", now.Add(time.Minute)); b {
		t.Error("window did not reset")
	}
	l.reset("k")
	if b, _ := l.blocked("k", now); b {
		t.Error("reset did not clear")
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	if !RoleAdmin.AtLeast(RoleOperator) || RoleViewer.AtLeast(RoleOperator) || Role("x").AtLeast(Role("y")) {
		t.Error("role order")
	}
	if _, err := ParseRole("root"); err == nil {
		t.Error("unknown role parsed")
	}
	if (Principal{Role: RoleAdmin}).Can(PermManageTenants) || !(Principal{Role: RoleViewer, PlatformAdmin: true}).Can(PermManageTenants) {
		t.Error("manage_tenants follows the platform-admin flag, not the role")
	}
}
