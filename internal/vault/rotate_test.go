package vault_test

import (
	"context"
	"errors"
	"testing"

	"github.com/it0/it0/internal/vault"
	"github.com/it0/it0/internal/vault/vaulttest"
)

func TestVaultRotate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const aad = "tenant/t1/credential/c1"

	// setup seals two values under two data keys with oldKey and returns
	// them with the store.
	setup := func(t *testing.T) (oldKey, newKey vault.MasterKey, store *vaulttest.KeyStore, sealed []vault.Sealed) {
		t.Helper()
		oldKey, newKey = vaulttest.MasterKey(t), vaulttest.MasterKey(t)
		store = vaulttest.NewKeyStore()
		// Each value gets its own data key: seal into a scratch store, then
		// copy that store's data key over, so Rotate has several to re-seal.
		for _, msg := range []string{"first secret", "second secret"} {
			scratch := vaulttest.NewKeyStore()
			v, err := vault.New(vault.Config{MasterKey: oldKey}, scratch)
			if err != nil {
				t.Fatal(err)
			}
			s, err := v.Seal(ctx, []byte(msg), aad)
			if err != nil {
				t.Fatal(err)
			}
			dk, err := scratch.DataKeyActive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.DataKeyCreate(ctx, dk); err != nil {
				t.Fatal(err)
			}
			sealed = append(sealed, s)
		}
		return oldKey, newKey, store, sealed
	}

	// Ensure rotation re-seals every data key under the new master key, old
	// values still open with only the new key, and the old key alone fails
	// closed afterwards.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		oldKey, newKey, store, sealed := setup(t)
		rotating, err := vault.New(vault.Config{MasterKey: newKey, PreviousMasterKeys: []vault.MasterKey{oldKey}}, store)
		if err != nil {
			t.Fatal(err)
		}
		n, err := rotating.Rotate(ctx)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		keys, _ := store.DataKeyList(ctx)
		if n != len(keys) || n == 0 {
			t.Fatalf("Rotate re-sealed %d of %d data keys", n, len(keys))
		}
		for _, k := range keys {
			if k.MasterKeyID != newKey.ID() {
				t.Fatalf("data key %s still sealed by %s", k.ID, k.MasterKeyID)
			}
		}
		if n, err := rotating.Rotate(ctx); err != nil || n != 0 {
			t.Fatalf("second Rotate = %d, %v; want 0, nil", n, err)
		}

		newOnly, err := vault.New(vault.Config{MasterKey: newKey}, store)
		if err != nil {
			t.Fatal(err)
		}
		if err := newOnly.Verify(ctx); err != nil {
			t.Fatalf("Verify after rotation: %v", err)
		}
		for i, s := range sealed {
			if _, err := newOnly.Open(ctx, s, aad); err != nil {
				t.Fatalf("Open value %d after rotation: %v", i, err)
			}
		}
		oldOnly, err := vault.New(vault.Config{MasterKey: oldKey}, store)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oldOnly.Open(ctx, sealed[0], aad); !errors.Is(err, vault.ErrWrongMasterKey) {
			t.Fatalf("Open with the retired key = %v, want ErrWrongMasterKey", err)
		}
	})

	// Ensure a rotation that fails half way reports how far it got and a
	// re-run finishes the job.
	t.Run("ResumeAfterFailure", func(t *testing.T) {
		t.Parallel()
		oldKey, newKey, store, sealed := setup(t)
		errBoom := errors.New("boom")
		calls := 0
		store.FailUpdate = func(vault.SealedKey) error {
			calls++
			if calls == 1 {
				return errBoom
			}
			return nil
		}
		v, err := vault.New(vault.Config{MasterKey: newKey, PreviousMasterKeys: []vault.MasterKey{oldKey}}, store)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := v.Rotate(ctx); !errors.Is(err, errBoom) || n != 0 {
			t.Fatalf("Rotate = %d, %v; want 0, boom", n, err)
		}
		if n, err := v.Rotate(ctx); err != nil || n != len(sealed) {
			t.Fatalf("second Rotate = %d, %v; want %d, nil", n, err, len(sealed))
		}
		newOnly, err := vault.New(vault.Config{MasterKey: newKey}, store)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range sealed {
			if _, err := newOnly.Open(ctx, s, aad); err != nil {
				t.Fatalf("Open value %d: %v", i, err)
			}
		}
	})

	// Ensure rotation without the previous key fails closed and changes
	// nothing.
	t.Run("ErrWrongMasterKey", func(t *testing.T) {
		t.Parallel()
		_, newKey, store, _ := setup(t)
		v, err := vault.New(vault.Config{MasterKey: newKey}, store)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Rotate(ctx); !errors.Is(err, vault.ErrWrongMasterKey) {
			t.Fatalf("Rotate = %v, want ErrWrongMasterKey", err)
		}
		if n := store.Calls("DataKeyUpdate"); n != 0 {
			t.Fatalf("DataKeyUpdate called %d times", n)
		}
	})
}
