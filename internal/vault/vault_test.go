package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/it0/it0/internal/vault"
	"github.com/it0/it0/internal/vault/vaulttest"
)

func TestParseMasterKey(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0xfb}, vault.MasterKeySize)
	want, err := vault.ParseMasterKey(hex.EncodeToString(raw))
	if err != nil {
		t.Fatalf("parse hex: %v", err)
	}
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "Base64", in: base64.StdEncoding.EncodeToString(raw)},
		{name: "Base64Raw", in: base64.RawStdEncoding.EncodeToString(raw)},
		{name: "Base64URL", in: base64.URLEncoding.EncodeToString(raw)},
		{name: "HexUpper", in: strings.ToUpper(hex.EncodeToString(raw))},
		{name: "Whitespace", in: "  " + base64.StdEncoding.EncodeToString(raw) + "\n"},
		{name: "ErrEmpty", in: "", wantErr: true},
		{name: "ErrShort", in: base64.StdEncoding.EncodeToString(raw[:16]), wantErr: true},
		{name: "ErrLong", in: base64.StdEncoding.EncodeToString(append(raw, 1)), wantErr: true},
		{name: "ErrGarbage", in: "not a key at all!", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := vault.ParseMasterKey(tc.in)
			if tc.wantErr {
				if !errors.Is(err, vault.ErrInvalidMasterKey) {
					t.Fatalf("err = %v, want ErrInvalidMasterKey", err)
				}
				if tc.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
					t.Fatalf("error %q repeats the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMasterKey: %v", err)
			}
			if got.ID() != want.ID() || len(got.ID()) != 8 {
				t.Fatalf("id = %q, want %q", got.ID(), want.ID())
			}
		})
	}
}

func TestGenerateMasterKey(t *testing.T) {
	t.Parallel()
	s, err := vault.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := vault.ParseMasterKey(s.Reveal())
	if err != nil {
		t.Fatalf("generated key does not parse: %v", err)
	}
	if k.IsZero() {
		t.Fatal("zero key")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	k1, k2 := vaulttest.MasterKey(t), vaulttest.MasterKey(t)
	tests := []struct {
		name    string
		cfg     vault.Config
		wantErr bool
	}{
		{name: "OK", cfg: vault.Config{MasterKey: k1}},
		{name: "OKPrevious", cfg: vault.Config{MasterKey: k1, PreviousMasterKeys: []vault.MasterKey{k2}}},
		{name: "ErrMissing", cfg: vault.Config{}, wantErr: true},
		{name: "ErrZeroPrevious", cfg: vault.Config{MasterKey: k1, PreviousMasterKeys: []vault.MasterKey{{}}}, wantErr: true},
		{name: "ErrDuplicate", cfg: vault.Config{MasterKey: k1, PreviousMasterKeys: []vault.MasterKey{k1}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tc.wantErr)
			}
			if _, nerr := vault.New(tc.cfg, vaulttest.NewKeyStore()); (nerr != nil) != tc.wantErr {
				t.Fatalf("New() = %v, wantErr %v", nerr, tc.wantErr)
			}
		})
	}
}

func TestVault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := []byte("-----BEGIN OPENSSH PRIVATE KEY----- hunter2")
	const aad = "tenant/t1/credential/c1"

	// Ensure a sealed value opens with the same additional data, through a
	// marshal round trip, and that the data key is created once and cached.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		v, store := vaulttest.New(t)
		s1, err := v.Seal(ctx, secret, aad)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		s2, err := v.Seal(ctx, secret, aad)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if bytes.Equal(s1.Nonce, s2.Nonce) || bytes.Equal(s1.Ciphertext, s2.Ciphertext) {
			t.Fatal("two seals share a nonce or ciphertext")
		}
		if bytes.Contains(s1.Marshal(), secret) {
			t.Fatal("sealed blob contains the plaintext")
		}
		back, err := vault.UnmarshalSealed(s1.Marshal())
		if err != nil {
			t.Fatalf("UnmarshalSealed: %v", err)
		}
		got, err := v.Open(ctx, back, aad)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("Open = %q", got)
		}
		if n := store.Calls("DataKeyCreate"); n != 1 {
			t.Fatalf("DataKeyCreate called %d times, want 1", n)
		}
		if n := store.Calls("DataKeyGet"); n != 0 {
			t.Fatalf("DataKeyGet called %d times, want 0 (cached)", n)
		}
	})

	// Ensure concurrent first seals create a single data key.
	t.Run("ConcurrentFirstSeal", func(t *testing.T) {
		t.Parallel()
		v, store := vaulttest.New(t)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := v.Seal(ctx, secret, aad); err != nil {
					t.Errorf("Seal: %v", err)
				}
			})
		}
		wg.Wait()
		if n := store.Calls("DataKeyCreate"); n != 1 {
			t.Fatalf("DataKeyCreate called %d times, want 1", n)
		}
	})

	// Ensure a value does not open with other additional data or after any
	// byte of it changed.
	t.Run("ErrDecrypt", func(t *testing.T) {
		t.Parallel()
		v, _ := vaulttest.New(t)
		s, err := v.Seal(ctx, secret, aad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Open(ctx, s, "tenant/t2/credential/c1"); !errors.Is(err, vault.ErrDecrypt) {
			t.Fatalf("Open with other aad: err = %v, want ErrDecrypt", err)
		}
		blob := s.Marshal()
		for i := len(blob) - len(s.Ciphertext) - len(s.Nonce); i < len(blob); i++ {
			bad := bytes.Clone(blob)
			bad[i] ^= 0x01
			bs, err := vault.UnmarshalSealed(bad)
			if err != nil {
				t.Fatalf("UnmarshalSealed: %v", err)
			}
			if _, err := v.Open(ctx, bs, aad); !errors.Is(err, vault.ErrDecrypt) {
				t.Fatalf("byte %d flipped: err = %v, want ErrDecrypt", i, err)
			}
		}
	})

	// Ensure a vault with another master key fails closed, both on Open and
	// on Verify, and names the missing key id.
	t.Run("ErrWrongMasterKey", func(t *testing.T) {
		t.Parallel()
		v, store := vaulttest.New(t)
		s, err := v.Seal(ctx, secret, aad)
		if err != nil {
			t.Fatal(err)
		}
		other, err := vault.New(vault.Config{MasterKey: vaulttest.MasterKey(t)}, store)
		if err != nil {
			t.Fatal(err)
		}
		got, err := other.Open(ctx, s, aad)
		if !errors.Is(err, vault.ErrWrongMasterKey) || got != nil {
			t.Fatalf("Open = %q, %v; want ErrWrongMasterKey", got, err)
		}
		if !strings.Contains(err.Error(), v.MasterKeyID()) {
			t.Fatalf("error %q does not name master key %s", err, v.MasterKeyID())
		}
		if err := other.Verify(ctx); !errors.Is(err, vault.ErrWrongMasterKey) {
			t.Fatalf("Verify = %v, want ErrWrongMasterKey", err)
		}
		if err := v.Verify(ctx); err != nil {
			t.Fatalf("Verify with the right key: %v", err)
		}
		if _, err := other.Seal(ctx, secret, aad); !errors.Is(err, vault.ErrWrongMasterKey) {
			t.Fatalf("Seal with wrong key = %v, want ErrWrongMasterKey", err)
		}
	})

	// Ensure a tampered data key row fails closed.
	t.Run("ErrTamperedDataKey", func(t *testing.T) {
		t.Parallel()
		key, store := vaulttest.MasterKey(t), vaulttest.NewKeyStore()
		v, err := vault.New(vault.Config{MasterKey: key}, store)
		if err != nil {
			t.Fatal(err)
		}
		s, err := v.Seal(ctx, secret, aad)
		if err != nil {
			t.Fatal(err)
		}
		store.Tamper(s.KeyID, func(k *vault.SealedKey) { k.Ciphertext[0] ^= 1 })
		fresh, err := vault.New(vault.Config{MasterKey: key}, store)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fresh.Open(ctx, s, aad); !errors.Is(err, vault.ErrWrongMasterKey) {
			t.Fatalf("Open = %v, want ErrWrongMasterKey", err)
		}
	})

	// Ensure a value naming an unknown data key reports it.
	t.Run("ErrDataKeyNotFound", func(t *testing.T) {
		t.Parallel()
		v, _ := vaulttest.New(t)
		_, err := v.Open(ctx, vault.Sealed{KeyID: "dk_missing", Nonce: make([]byte, 12), Ciphertext: make([]byte, 32)}, aad)
		if !errors.Is(err, vault.ErrDataKeyNotFound) {
			t.Fatalf("Open = %v, want ErrDataKeyNotFound", err)
		}
	})
}
