package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/vault"
)

// runPlatformMore covers the rest of the shared tables: the tenant list, sign-in and key bookkeeping, and
// the vault's data keys.
func runPlatformMore(t *testing.T, open func(testing.TB) *store.DB) {
	t.Run("UsersAndKeysBookkeeping", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := context.Background()
		if n, err := db.UserCount(ctx); err != nil || n != 0 {
			t.Errorf("users of a fresh install = %d, %v", n, err)
		}
		a, b := NewTenant(t, db, "book-a"), NewTenant(t, db, "book-b")
		actx, bctx := tenant.WithID(ctx, a.ID), tenant.WithID(ctx, b.ID)
		u := NewUser(t, db, a, "one@book.example", auth.RoleOperator)
		NewUser(t, db, b, "two@book.example", auth.RoleViewer)
		if n, _ := db.UserCount(ctx); n != 2 {
			t.Errorf("users = %d, want 2 across tenants", n)
		}
		if list, err := db.TenantList(ctx); err != nil || len(list) != 2 || list[0].ID != a.ID {
			t.Errorf("tenants oldest first: %v %+v", err, list)
		}
		if err := db.UserTouchLogin(actx, u.ID, at); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.UserGet(actx, u.ID); got.LastLoginAt == nil || !got.LastLoginAt.Equal(at) {
			t.Errorf("last login: %+v", got.LastLoginAt)
		}
		var ids []string
		for i := range 2 {
			k := &auth.APIKey{ID: uuid.NewString(), TenantID: a.ID, UserID: u.ID, Name: "ci", Prefix: "it0_book000" + string(rune('a'+i)),
				Role: auth.RoleOperator, Hash: []byte{byte(i), 1, 2}, CreatedAt: at}
			if err := db.APIKeyCreate(actx, k); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, k.ID)
		}
		if err := db.APIKeyTouch(actx, ids[0], at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err := db.APIKeyGet(actx, ids[0])
		if err != nil || got.LastUsedAt == nil || !got.LastUsedAt.Equal(at.Add(time.Minute)) || !bytes.Equal(got.Hash, []byte{0, 1, 2}) {
			t.Errorf("key after touch: %v %+v", err, got)
		}
		if _, err := db.APIKeyGet(bctx, ids[0]); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant key: %v", err)
		}
		// Ensure offboarding revokes every live key of the user, once.
		if n, err := db.APIKeyRevokeForUser(bctx, u.ID, at); err != nil || n != 0 {
			t.Errorf("tenant b revoked %d of a's keys, %v", n, err)
		}
		if n, err := db.APIKeyRevokeForUser(actx, u.ID, at); err != nil || n != 2 {
			t.Errorf("revoked %d, %v; want 2", n, err)
		}
		if n, _ := db.APIKeyRevokeForUser(actx, u.ID, at); n != 0 {
			t.Errorf("revoked %d again", n)
		}
	})

	t.Run("DataKeys", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := context.Background()
		mk := func(id string, created time.Time) vault.SealedKey {
			return vault.SealedKey{ID: id, MasterKeyID: "m1", Nonce: []byte("nonce-123456"), Ciphertext: []byte("sealed-" + id), CreatedAt: created}
		}
		for i, id := range []string{"k1", "k2"} {
			if err := db.DataKeyCreate(ctx, mk(id, at.Add(time.Duration(i)*time.Hour))); err != nil {
				t.Fatal(err)
			}
		}
		// Ensure the newest key is the active one, and a re-seal under a new master key replaces the old.
		if k, err := db.DataKeyActive(ctx); err != nil || k.ID != "k2" {
			t.Errorf("active: %+v %v", k, err)
		}
		k1 := mk("k1", at)
		k1.MasterKeyID, k1.Ciphertext = "m2", []byte("resealed")
		if err := db.DataKeyUpdate(ctx, k1); err != nil {
			t.Fatal(err)
		}
		got, err := db.DataKeyGet(ctx, "k1")
		if err != nil || got.MasterKeyID != "m2" || string(got.Ciphertext) != "resealed" || string(got.Nonce) != "nonce-123456" || !got.CreatedAt.Equal(at) {
			t.Errorf("after re-seal: %+v %v", got, err)
		}
		if _, err := db.DataKeyGet(ctx, "nope"); err == nil {
			t.Error("missing data key found")
		}
		if list, err := db.DataKeyList(ctx); err != nil || len(list) != 2 {
			t.Errorf("list: %+v %v", list, err)
		}
	})
}
