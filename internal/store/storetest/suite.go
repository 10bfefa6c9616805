package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
)

// NewTenant is a test factory: a provisioned tenant with the given slug and quotas from plan free.
func NewTenant(tb testing.TB, db *store.DB, slug string) *auth.Tenant {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	t := &auth.Tenant{ID: uuid.NewString(), Name: "Tenant " + slug, Slug: slug, Plan: auth.PlanFree,
		Status: auth.TenantActive, Quotas: auth.DefaultQuotas(auth.PlanFree), AllowedEngines: auth.AllEngines,
		Locale: "zh-CN", CreatedAt: now, UpdatedAt: now}
	if err := db.TenantCreate(context.Background(), t); err != nil {
		tb.Fatalf("create tenant %s: %v", slug, err)
	}
	return t
}

// NewUser is a test factory: a user in tenant t.
func NewUser(tb testing.TB, db *store.DB, t *auth.Tenant, email string, role auth.Role) *auth.User {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &auth.User{ID: uuid.NewString(), TenantID: t.ID, Email: email, Name: email, Role: role, Status: "active",
		PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
	if err := db.UserCreate(tenant.WithID(context.Background(), t.ID), u); err != nil {
		tb.Fatalf("create user %s: %v", email, err)
	}
	return u
}

var testKey = bytes.Repeat([]byte{7}, 32)

// Run is the contract every backend must satisfy: every context's store methods, exercised by the same
// code on each backend.
func Run(t *testing.T, open func(testing.TB) *store.DB) {
	for _, area := range []struct {
		name string
		run  func(*testing.T, func(testing.TB) *store.DB)
	}{
		{"Platform", runPlatform},
		{"PlatformMore", runPlatformMore},
		{"Agent", runAgent},
		{"Inventory", runInventory},
		{"Ops", runOps},
		{"Monitor", runMonitor},
		{"Checks", runChecks},
		{"Comm", runComm},
		{"Shared", runShared},
	} {
		t.Run(area.name, func(t *testing.T) {
			t.Parallel()
			area.run(t, open)
		})
	}
}

// runPlatform covers tenants, users, API keys and the audit chain.
func runPlatform(t *testing.T, open func(testing.TB) *store.DB) {
	t.Run("Tenants", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := context.Background()
		a := NewTenant(t, db, "alpha")
		got, err := db.TenantGet(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Slug != "alpha" || got.MaxUsers != a.MaxUsers || len(got.AllowedEngines) != 3 || !got.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("round trip: got %+v want %+v", got, a)
		}
		// Ensure a duplicate slug is a clear validation error.
		dup := *a
		dup.ID = uuid.NewString()
		if err := db.TenantCreate(ctx, &dup); !errs.Is(err, errs.Invalid) {
			t.Errorf("duplicate slug: got %v, want invalid", err)
		}
		got.Status = auth.TenantSuspended
		if err := db.TenantUpdate(ctx, got); err != nil {
			t.Fatal(err)
		}
		if got, _ = db.TenantGet(ctx, a.ID); got.Status != auth.TenantSuspended {
			t.Errorf("status = %s, want suspended", got.Status)
		}
		if _, err := db.TenantGet(ctx, "nope"); !errs.Is(err, errs.NotFound) {
			t.Errorf("missing tenant: got %v", err)
		}
	})

	t.Run("TenantDrop", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := context.Background()
		a := NewTenant(t, db, "drop-me")
		NewUser(t, db, a, "u@drop.example", auth.RoleAdmin)
		actx := tenant.WithID(ctx, a.ID)
		if _, err := db.AuditList(actx, audit.Filter{Limit: 1}); err != nil {
			t.Fatal(err)
		}
		if err := db.TenantDrop(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		// Ensure the tenant's tables are gone, its users too, and its slug is free again.
		if _, err := db.AuditList(actx, audit.Filter{Limit: 1}); err == nil {
			t.Error("audit of a dropped tenant still readable")
		}
		if _, err := db.UserByEmail(ctx, "u@drop.example"); !errs.Is(err, errs.NotFound) {
			t.Errorf("user of dropped tenant: %v", err)
		}
		NewTenant(t, db, "drop-me")
	})

	t.Run("UsersAndQuota", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := context.Background()
		a := NewTenant(t, db, "users-a")
		b := NewTenant(t, db, "users-b")
		actx, bctx := tenant.WithID(ctx, a.ID), tenant.WithID(ctx, b.ID)
		u := NewUser(t, db, a, "One@Example.com", auth.RoleAdmin)
		got, err := db.UserByEmail(ctx, "one@example.com")
		if err != nil || got.ID != u.ID || got.Email != "one@example.com" {
			t.Fatalf("by email: %v %+v", err, got)
		}
		// Ensure another tenant cannot see, update or create into tenant a.
		if _, err := db.UserGet(bctx, u.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant get: %v", err)
		}
		u.Role = auth.RoleViewer
		if err := db.UserUpdate(bctx, u); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant update: %v", err)
		}
		if err := db.UserCreate(bctx, &auth.User{ID: uuid.NewString(), TenantID: a.ID, Email: "x@y.z"}); err == nil {
			t.Error("created a user in another tenant")
		}
		if _, err := db.UserList(ctx); !errors.Is(err, tenant.ErrMissing) {
			t.Errorf("list without tenant: %v", err)
		}
		// Ensure a duplicate email is a conflict and the quota is enforced.
		dup := *u
		dup.ID = uuid.NewString()
		if err := db.UserCreate(actx, &dup); !errs.Is(err, errs.Conflict) {
			t.Errorf("duplicate email: %v", err)
		}
		for i := 1; i < a.MaxUsers; i++ {
			NewUser(t, db, a, fmt.Sprintf("u%d@example.com", i), auth.RoleViewer)
		}
		extra := &auth.User{ID: uuid.NewString(), TenantID: a.ID, Email: "extra@example.com", Role: auth.RoleViewer,
			Status: "active", CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := db.UserCreate(actx, extra); !errs.Is(err, errs.QuotaExceeded) {
			t.Errorf("over quota: %v", err)
		}
		list, _ := db.UserList(actx)
		if len(list) != a.MaxUsers {
			t.Errorf("users = %d, want %d", len(list), a.MaxUsers)
		}
	})

	t.Run("APIKeys", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := context.Background()
		a := NewTenant(t, db, "keys-a")
		b := NewTenant(t, db, "keys-b")
		u := NewUser(t, db, a, "k@example.com", auth.RoleOperator)
		actx, bctx := tenant.WithID(ctx, a.ID), tenant.WithID(ctx, b.ID)
		k := &auth.APIKey{ID: uuid.NewString(), TenantID: a.ID, UserID: u.ID, Name: "ci", Prefix: "it0_abcdefgh",
			Role: auth.RoleOperator, Hash: []byte("hash-1"), CreatedAt: time.Now().UTC()}
		if err := db.APIKeyCreate(actx, k); err != nil {
			t.Fatal(err)
		}
		got, err := db.APIKeyByHash(ctx, []byte("hash-1"))
		if err != nil || got.ID != k.ID || got.TenantID != a.ID {
			t.Fatalf("by hash: %v %+v", err, got)
		}
		if err := db.APIKeyRevoke(bctx, k.ID, time.Now()); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant revoke: %v", err)
		}
		if err := db.APIKeyRevoke(actx, k.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := db.APIKeyRevoke(actx, k.ID, time.Now()); !errs.Is(err, errs.Conflict) {
			t.Errorf("second revoke: %v", err)
		}
		if got, _ := db.APIKeyByHash(ctx, []byte("hash-1")); got.RevokedAt == nil {
			t.Error("revoked_at not set")
		}
		if list, _ := db.APIKeyList(bctx, ""); len(list) != 0 {
			t.Errorf("tenant b sees %d keys", len(list))
		}
	})

	t.Run("AuditChain", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		a := NewTenant(t, db, "audit-a")
		b := NewTenant(t, db, "audit-b")
		ctx := context.Background()
		actx, bctx := tenant.WithID(ctx, a.ID), tenant.WithID(ctx, b.ID)
		log, err := audit.New(db, testKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := log.Record(actx, audit.Record{Action: "test.action", ResourceType: "thing",
				ResourceID: fmt.Sprint(i), Description: "step", Detail: map[string]any{"i": i, "name": "中文"}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := log.Record(bctx, audit.Record{Action: "other"}); err != nil {
			t.Fatal(err)
		}
		if _, err := log.RecordPlatform(ctx, audit.Record{Action: "tenant.created"}); err != nil {
			t.Fatal(err)
		}
		if _, err := log.Record(ctx, audit.Record{Action: "x"}); !errors.Is(err, tenant.ErrMissing) {
			t.Errorf("record without tenant: %v", err)
		}
		res, err := log.Verify(actx)
		if err != nil || !res.OK || res.Checked != 5 {
			t.Fatalf("verify a: %+v %v", res, err)
		}
		res, _ = log.Verify(tenant.WithID(ctx, tenant.Platform))
		if !res.OK || res.Checked != 1 {
			t.Errorf("verify platform: %+v", res)
		}
		list, err := db.AuditList(actx, audit.Filter{ResourceID: "3", Limit: 10})
		if err != nil || len(list) != 1 || list[0].Seq != 4 || string(list[0].Detail) != `{"i":3,"name":"中文"}` {
			t.Fatalf("filter: %v %+v", err, list)
		}
		page, _ := db.AuditList(actx, audit.Filter{Limit: 2})
		next, _ := db.AuditList(actx, audit.Filter{Limit: 2, BeforeSeq: page[1].Seq})
		if len(page) != 2 || page[0].Seq != 5 || len(next) != 2 || next[0].Seq != 3 {
			t.Errorf("pagination: %+v then %+v", page, next)
		}
		if l, _ := db.AuditList(bctx, audit.Filter{Limit: 100}); len(l) != 1 {
			t.Errorf("tenant b sees %d entries", len(l))
		}
		// Ensure the database itself refuses to change or remove rows.
		for _, q := range []string{"UPDATE audit_logs SET description = 'x'", "DELETE FROM audit_logs"} {
			if err := db.ExecTenantForTest(actx, q); err == nil {
				t.Errorf("%s: allowed", q)
			}
		}
	})

	t.Run("AuditTamper", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name    string
			tamper  []string
			wantSeq int64
		}{
			{"Edited", []string{"UPDATE audit_logs SET description = 'nothing happened' WHERE seq = 3"}, 3},
			{"Deleted", []string{"DELETE FROM audit_logs WHERE seq = 2"}, 3},
			{"Reordered", []string{"UPDATE audit_logs SET seq = -1 WHERE seq = 2", "UPDATE audit_logs SET seq = 2 WHERE seq = 4",
				"UPDATE audit_logs SET seq = 4 WHERE seq = -1"}, 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				db := open(t)
				a := NewTenant(t, db, "tamper")
				actx := tenant.WithID(context.Background(), a.ID)
				log, _ := audit.New(db, testKey, nil)
				var ids []int64
				for i := range 5 {
					e, err := log.Record(actx, audit.Record{Action: "a", Description: fmt.Sprint(i)})
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, e.ID)
				}
				if err := db.TamperAuditForTest(actx, tc.tamper...); err != nil {
					t.Fatal(err)
				}
				res, err := log.Verify(actx)
				if err != nil {
					t.Fatal(err)
				}
				if res.OK || res.FirstBad != tc.wantSeq {
					t.Errorf("verify after tamper = %+v, want first bad seq %d", res, tc.wantSeq)
				}
				if res.FirstBadID == 0 {
					t.Error("first_bad_id not set")
				}
			})
		}
	})

	t.Run("MissingTenant", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		// Ensure a tenant id that was never provisioned reads as not found, and creates nothing.
		ctx := tenant.WithID(context.Background(), "0000-not-a-tenant")
		if _, err := db.AuditList(ctx, audit.Filter{Limit: 1}); err == nil {
			t.Error("unprovisioned tenant readable")
		}
		if _, err := db.AuditList(tenant.WithID(context.Background(), "../../etc"), audit.Filter{Limit: 1}); err == nil {
			t.Error("path-like tenant id accepted")
		}
	})
}
