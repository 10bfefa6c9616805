// Package vault seals secrets with envelope encryption.
//
// Every secret is encrypted with AES-256-GCM under a data key; every data key
// is a random 32-byte key, itself sealed with AES-256-GCM under a master key
// (IT0_VAULT_MASTER_KEY) and stored through a KeyStore. A sealed secret names
// its data key and a sealed data key names its master key, so the master key
// can be rotated while IT0 keeps serving: configure the new key as current and
// the old one as previous, run Rotate, then drop the old key.
//
// Each seal uses a fresh random nonce. Callers bind a ciphertext to where it
// belongs (tenant id, credential id) with an additional-data string, so a
// sealed value copied to another row does not open. Unsealed data keys are
// cached in memory only; nothing unsealed is ever written anywhere.
package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

var (
	// ErrWrongMasterKey means a data key is sealed by a master key that is
	// not configured, or the configured key with that id does not open it.
	// The vault fails closed: nothing is decrypted.
	ErrWrongMasterKey = errors.New("vault: wrong master key")
	// ErrInvalidMasterKey means a master key could not be parsed.
	ErrInvalidMasterKey = errors.New("vault: invalid master key")
	// ErrDecrypt means a sealed value failed authentication: it was
	// tampered with, truncated, or opened with the wrong additional data.
	ErrDecrypt = errors.New("vault: decryption failed")
	// ErrMalformed means a sealed blob could not be parsed.
	ErrMalformed = errors.New("vault: malformed sealed value")
	// ErrDataKeyNotFound is returned by a KeyStore when the data key asked
	// for does not exist, or when there is no active data key yet.
	ErrDataKeyNotFound = errors.New("vault: data key not found")
)

// DataKeySize is the length in bytes of a data key (AES-256).
const DataKeySize = 32

// SealedKey is a data key sealed under a master key, as a KeyStore keeps it.
// It holds no plaintext key material.
type SealedKey struct {
	// ID identifies the data key; sealed values carry it.
	ID string
	// MasterKeyID is the id of the master key that seals Ciphertext.
	MasterKeyID string
	// Nonce is the AES-GCM nonce used to seal the data key.
	Nonce []byte
	// Ciphertext is the sealed data key, with its GCM tag.
	Ciphertext []byte
	// CreatedAt is when the data key was created.
	CreatedAt time.Time
}

// KeyStore persists sealed data keys. The database implements it; package
// vaulttest has an in-memory one.
type KeyStore interface {
	// DataKeyActive returns the data key new values are sealed with: the
	// most recently created one. Returns ErrDataKeyNotFound if there is none.
	DataKeyActive(ctx context.Context) (SealedKey, error)
	// DataKeyGet returns the data key with the given id. Returns
	// ErrDataKeyNotFound if it does not exist.
	DataKeyGet(ctx context.Context, id string) (SealedKey, error)
	// DataKeyCreate stores a new data key, which becomes the active one.
	DataKeyCreate(ctx context.Context, k SealedKey) error
	// DataKeyList returns every data key.
	DataKeyList(ctx context.Context) ([]SealedKey, error)
	// DataKeyUpdate replaces MasterKeyID, Nonce and Ciphertext of the data
	// key with k.ID (a re-seal). Returns ErrDataKeyNotFound if it does not
	// exist.
	DataKeyUpdate(ctx context.Context, k SealedKey) error
}

// Config configures a Vault.
type Config struct {
	// MasterKey seals new data keys and is the target of Rotate. Required.
	MasterKey MasterKey
	// PreviousMasterKeys still open data keys sealed before a rotation.
	PreviousMasterKeys []MasterKey
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.MasterKey.IsZero() {
		errs = append(errs, fmt.Errorf("%w: master key is required (IT0_VAULT_MASTER_KEY)", ErrInvalidMasterKey))
	}
	seen := map[string]bool{c.MasterKey.ID(): true}
	for i, k := range c.PreviousMasterKeys {
		switch {
		case k.IsZero():
			errs = append(errs, fmt.Errorf("%w: previous master key %d is empty", ErrInvalidMasterKey, i))
		case seen[k.ID()]:
			errs = append(errs, fmt.Errorf("%w: previous master key %d (id %s) is configured twice", ErrInvalidMasterKey, i, k.ID()))
		}
		seen[k.ID()] = true
	}
	return errors.Join(errs...)
}

// Vault seals and opens secrets. It is safe for concurrent use.
type Vault struct {
	current MasterKey
	masters map[string]cipher.AEAD // by master key id, current included
	store   KeyStore
	rand    io.Reader
	now     func() time.Time

	mu       sync.RWMutex
	dataKeys map[string]cipher.AEAD // unsealed data keys, by id
	activeID string                 // "" until known
	createMu sync.Mutex             // one data key creation at a time
}

// New returns a Vault that keeps its data keys in store. It does no I/O;
// call Verify at startup to fail fast on a wrong master key.
func New(cfg Config, store KeyStore) (*Vault, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("vault: nil KeyStore")
	}
	v := &Vault{
		current:  cfg.MasterKey,
		masters:  make(map[string]cipher.AEAD, 1+len(cfg.PreviousMasterKeys)),
		store:    store,
		rand:     rand.Reader,
		now:      time.Now,
		dataKeys: make(map[string]cipher.AEAD),
	}
	for _, k := range append([]MasterKey{cfg.MasterKey}, cfg.PreviousMasterKeys...) {
		aead, err := newAEAD(k.key[:])
		if err != nil {
			return nil, err
		}
		v.masters[k.ID()] = aead
	}
	return v, nil
}

// MasterKeyID returns the id of the current master key.
func (v *Vault) MasterKeyID() string { return v.current.ID() }

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("vault: aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("vault: gcm: %w", err)
	}
	return aead, nil
}

// dataKeyAAD binds a sealed data key to its id and its master key id, so a
// KeyStore row cannot be swapped for another.
func dataKeyAAD(id, masterID string) []byte {
	return []byte("it0 vault data key v1\x00" + id + "\x00" + masterID)
}

// valueAAD binds a sealed value to its format version, its data key and the
// caller's additional data.
func valueAAD(keyID, aad string) []byte {
	b := make([]byte, 0, 24+len(keyID)+len(aad))
	b = append(b, "it0 vault value v1\x00"...)
	b = append(b, keyID...)
	b = append(b, 0)
	return append(b, aad...)
}

// Seal encrypts plaintext under the active data key, creating the first data
// key if there is none. aad (for example "tenant/<id>/credential/<id>") must
// be given again to Open; it is authenticated, not encrypted or stored.
func (v *Vault) Seal(ctx context.Context, plaintext []byte, aad string) (Sealed, error) {
	id, aead, err := v.activeKey(ctx)
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return Sealed{}, fmt.Errorf("vault: seal: nonce: %w", err)
	}
	return Sealed{
		KeyID:      id,
		Nonce:      nonce,
		Ciphertext: aead.Seal(nil, nonce, plaintext, valueAAD(id, aad)),
	}, nil
}

// Open decrypts s, which must have been sealed with the same aad. Returns an
// error wrapping ErrDecrypt if s was altered or aad differs, ErrWrongMasterKey
// if its data key cannot be unsealed, and ErrDataKeyNotFound if its data key
// is gone.
func (v *Vault) Open(ctx context.Context, s Sealed, aad string) ([]byte, error) {
	aead, err := v.dataKey(ctx, s.KeyID)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("%w: nonce is %d bytes, want %d", ErrMalformed, len(s.Nonce), aead.NonceSize())
	}
	pt, err := aead.Open(nil, s.Nonce, s.Ciphertext, valueAAD(s.KeyID, aad))
	if err != nil {
		return nil, fmt.Errorf("%w: value sealed with data key %s", ErrDecrypt, s.KeyID)
	}
	return pt, nil
}

// Verify unseals every data key with the configured master keys. Call it at
// startup: it returns an error wrapping ErrWrongMasterKey naming the first
// data key no configured master key opens.
func (v *Vault) Verify(ctx context.Context) error {
	keys, err := v.store.DataKeyList(ctx)
	if err != nil {
		return fmt.Errorf("vault: list data keys: %w", err)
	}
	for _, sk := range keys {
		if _, err := v.unsealDataKey(sk); err != nil {
			return err
		}
	}
	return nil
}

// Rotate re-seals every data key not yet sealed by the current master key,
// opening it with the previous master key that sealed it, and returns how many
// it re-sealed. Values sealed with those data keys stay valid, so rotation
// needs no downtime and no re-encryption of secrets. It is idempotent and
// safe to re-run after a partial failure.
func (v *Vault) Rotate(ctx context.Context) (int, error) {
	keys, err := v.store.DataKeyList(ctx)
	if err != nil {
		return 0, fmt.Errorf("vault: rotate: list data keys: %w", err)
	}
	n := 0
	for _, sk := range keys {
		if sk.MasterKeyID == v.current.ID() {
			continue
		}
		raw, err := v.unsealDataKey(sk)
		if err != nil {
			return n, fmt.Errorf("vault: rotate: %w", err)
		}
		resealed, err := v.sealDataKey(sk.ID, raw, sk.CreatedAt)
		clear(raw)
		if err != nil {
			return n, fmt.Errorf("vault: rotate: %w", err)
		}
		if err := v.store.DataKeyUpdate(ctx, resealed); err != nil {
			return n, fmt.Errorf("vault: rotate: update data key %s: %w", sk.ID, err)
		}
		n++
	}
	return n, nil
}

// activeKey returns the data key new values are sealed with, creating it on
// first use.
func (v *Vault) activeKey(ctx context.Context) (string, cipher.AEAD, error) {
	v.mu.RLock()
	id := v.activeID
	aead := v.dataKeys[id]
	v.mu.RUnlock()
	if id != "" && aead != nil {
		return id, aead, nil
	}

	v.createMu.Lock()
	defer v.createMu.Unlock()
	sk, err := v.store.DataKeyActive(ctx)
	switch {
	case errors.Is(err, ErrDataKeyNotFound):
		sk, err = v.createDataKey(ctx)
		if err != nil {
			return "", nil, err
		}
	case err != nil:
		return "", nil, fmt.Errorf("vault: active data key: %w", err)
	}
	aead, err = v.cacheDataKey(sk)
	if err != nil {
		return "", nil, err
	}
	v.mu.Lock()
	v.activeID = sk.ID
	v.mu.Unlock()
	return sk.ID, aead, nil
}

func (v *Vault) createDataKey(ctx context.Context) (SealedKey, error) {
	var idb [8]byte
	if _, err := io.ReadFull(v.rand, idb[:]); err != nil {
		return SealedKey{}, fmt.Errorf("vault: data key id: %w", err)
	}
	raw := make([]byte, DataKeySize)
	defer clear(raw)
	if _, err := io.ReadFull(v.rand, raw); err != nil {
		return SealedKey{}, fmt.Errorf("vault: data key: %w", err)
	}
	sk, err := v.sealDataKey("dk_"+hex.EncodeToString(idb[:]), raw, v.now().UTC())
	if err != nil {
		return SealedKey{}, err
	}
	if err := v.store.DataKeyCreate(ctx, sk); err != nil {
		return SealedKey{}, fmt.Errorf("vault: create data key: %w", err)
	}
	return sk, nil
}

// dataKey returns the unsealed data key id from the cache or the store.
func (v *Vault) dataKey(ctx context.Context, id string) (cipher.AEAD, error) {
	v.mu.RLock()
	aead := v.dataKeys[id]
	v.mu.RUnlock()
	if aead != nil {
		return aead, nil
	}
	sk, err := v.store.DataKeyGet(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("vault: data key %s: %w", id, err)
	}
	if sk.ID != id {
		return nil, fmt.Errorf("vault: data key %s: store returned key %s", id, sk.ID)
	}
	return v.cacheDataKey(sk)
}

func (v *Vault) cacheDataKey(sk SealedKey) (cipher.AEAD, error) {
	raw, err := v.unsealDataKey(sk)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(raw)
	clear(raw)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.dataKeys[sk.ID] = aead
	v.mu.Unlock()
	return aead, nil
}

func (v *Vault) sealDataKey(id string, raw []byte, created time.Time) (SealedKey, error) {
	master := v.masters[v.current.ID()]
	nonce := make([]byte, master.NonceSize())
	if _, err := io.ReadFull(v.rand, nonce); err != nil {
		return SealedKey{}, fmt.Errorf("vault: data key nonce: %w", err)
	}
	return SealedKey{
		ID:          id,
		MasterKeyID: v.current.ID(),
		Nonce:       nonce,
		Ciphertext:  master.Seal(nil, nonce, raw, dataKeyAAD(id, v.current.ID())),
		CreatedAt:   created,
	}, nil
}

// unsealDataKey returns the raw data key; the caller clears it.
func (v *Vault) unsealDataKey(sk SealedKey) ([]byte, error) {
	master, ok := v.masters[sk.MasterKeyID]
	if !ok {
		return nil, fmt.Errorf("%w: data key %s is sealed by master key %s, which is not configured (current %s)",
			ErrWrongMasterKey, sk.ID, sk.MasterKeyID, v.current.ID())
	}
	if len(sk.Nonce) != master.NonceSize() {
		return nil, fmt.Errorf("%w: data key %s: nonce is %d bytes", ErrMalformed, sk.ID, len(sk.Nonce))
	}
	raw, err := master.Open(nil, sk.Nonce, sk.Ciphertext, dataKeyAAD(sk.ID, sk.MasterKeyID))
	if err != nil {
		return nil, fmt.Errorf("%w: master key %s does not open data key %s", ErrWrongMasterKey, sk.MasterKeyID, sk.ID)
	}
	if len(raw) != DataKeySize {
		clear(raw)
		return nil, fmt.Errorf("%w: data key %s is %d bytes", ErrMalformed, sk.ID, len(raw))
	}
	return raw, nil
}
