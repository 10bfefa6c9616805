// Package vaulttest provides test helpers for package vault: an in-memory
// KeyStore and random master keys.
package vaulttest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"sync"
	"testing"

	"github.com/it0/it0/internal/vault"
)

// KeyStore is an in-memory vault.KeyStore. It is safe for concurrent use.
// Set its fields before first use to inject errors.
type KeyStore struct {
	// FailList, when set, is returned by DataKeyList.
	FailList error
	// FailUpdate, when set, is called by DataKeyUpdate; a non-nil result is
	// returned instead of updating.
	FailUpdate func(k vault.SealedKey) error

	mu    sync.Mutex
	keys  []vault.SealedKey // creation order; the last is active
	calls map[string]int
}

var _ vault.KeyStore = (*KeyStore)(nil)

// NewKeyStore returns an empty KeyStore.
func NewKeyStore() *KeyStore { return &KeyStore{calls: make(map[string]int)} }

func clone(k vault.SealedKey) vault.SealedKey {
	k.Nonce = slices.Clone(k.Nonce)
	k.Ciphertext = slices.Clone(k.Ciphertext)
	return k
}

// Calls returns how many times the named method (for example "DataKeyGet")
// was called.
func (s *KeyStore) Calls(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

// DataKeyActive implements vault.KeyStore.
func (s *KeyStore) DataKeyActive(_ context.Context) (vault.SealedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["DataKeyActive"]++
	if len(s.keys) == 0 {
		return vault.SealedKey{}, vault.ErrDataKeyNotFound
	}
	return clone(s.keys[len(s.keys)-1]), nil
}

// DataKeyGet implements vault.KeyStore.
func (s *KeyStore) DataKeyGet(_ context.Context, id string) (vault.SealedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["DataKeyGet"]++
	for _, k := range s.keys {
		if k.ID == id {
			return clone(k), nil
		}
	}
	return vault.SealedKey{}, vault.ErrDataKeyNotFound
}

// DataKeyCreate implements vault.KeyStore.
func (s *KeyStore) DataKeyCreate(_ context.Context, k vault.SealedKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["DataKeyCreate"]++
	s.keys = append(s.keys, clone(k))
	return nil
}

// DataKeyList implements vault.KeyStore.
func (s *KeyStore) DataKeyList(_ context.Context) ([]vault.SealedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["DataKeyList"]++
	if s.FailList != nil {
		return nil, s.FailList
	}
	out := make([]vault.SealedKey, len(s.keys))
	for i, k := range s.keys {
		out[i] = clone(k)
	}
	return out, nil
}

// DataKeyUpdate implements vault.KeyStore.
func (s *KeyStore) DataKeyUpdate(_ context.Context, k vault.SealedKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["DataKeyUpdate"]++
	if s.FailUpdate != nil {
		if err := s.FailUpdate(k); err != nil {
			return err
		}
	}
	for i := range s.keys {
		if s.keys[i].ID == k.ID {
			s.keys[i].MasterKeyID = k.MasterKeyID
			s.keys[i].Nonce = slices.Clone(k.Nonce)
			s.keys[i].Ciphertext = slices.Clone(k.Ciphertext)
			return nil
		}
	}
	return vault.ErrDataKeyNotFound
}

// Tamper lets a test change a stored data key in place.
func (s *KeyStore) Tamper(id string, f func(k *vault.SealedKey)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.keys {
		if s.keys[i].ID == id {
			f(&s.keys[i])
		}
	}
}

// MasterKey returns a new random master key.
func MasterKey(tb testing.TB) vault.MasterKey {
	tb.Helper()
	var b [vault.MasterKeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("vaulttest: random master key: %v", err)
	}
	k, err := vault.ParseMasterKey(base64.StdEncoding.EncodeToString(b[:]))
	if err != nil {
		tb.Fatalf("vaulttest: parse master key: %v", err)
	}
	return k
}

// New returns a Vault with a random master key over a new in-memory
// KeyStore, which it also returns.
func New(tb testing.TB) (*vault.Vault, *KeyStore) {
	tb.Helper()
	store := NewKeyStore()
	v, err := vault.New(vault.Config{MasterKey: MasterKey(tb)}, store)
	if err != nil {
		tb.Fatalf("vaulttest: new vault: %v", err)
	}
	return v, store
}
