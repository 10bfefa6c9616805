package vault

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// MasterKeySize is the length in bytes of a master key (AES-256).
const MasterKeySize = 32

// masterKeyIDDomain separates the key-id hash from any other use of the key.
const masterKeyIDDomain = "it0 vault master key id v1\x00"

// MasterKey is a 32-byte key that seals data keys. Its ID, stored next to
// every data key it seals, tells which configured key opens that data key.
// The zero MasterKey is invalid. MasterKey never prints its key bytes.
type MasterKey struct {
	id  string
	key [MasterKeySize]byte
}

// ParseMasterKey parses a master key given as base64 (standard or URL
// alphabet, padded or not) or hex of exactly 32 bytes, as found in
// IT0_VAULT_MASTER_KEY. Surrounding whitespace is ignored. The error never
// contains the input.
func ParseMasterKey(s string) (MasterKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return MasterKey{}, fmt.Errorf("%w: empty (generate one with `openssl rand -base64 32`)", ErrInvalidMasterKey)
	}
	var raw []byte
	if len(s) == 2*MasterKeySize {
		if b, err := hex.DecodeString(s); err == nil {
			raw = b
		}
	}
	if raw == nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				raw = b
				break
			}
		}
	}
	if raw == nil {
		return MasterKey{}, fmt.Errorf("%w: neither base64 nor hex (generate one with `openssl rand -base64 32`)", ErrInvalidMasterKey)
	}
	if len(raw) != MasterKeySize {
		return MasterKey{}, fmt.Errorf("%w: decodes to %d bytes, want %d", ErrInvalidMasterKey, len(raw), MasterKeySize)
	}
	return newMasterKey(raw), nil
}

// GenerateMasterKey returns a new random master key, encoded in base64 the
// way ParseMasterKey reads it, for an operator to store (for example with
// `it0 vault keygen`).
func GenerateMasterKey() (Secret, error) {
	return generateMasterKey(rand.Reader)
}

func generateMasterKey(r io.Reader) (Secret, error) {
	var b [MasterKeySize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generate master key: %w", err)
	}
	return Secret(base64.StdEncoding.EncodeToString(b[:])), nil
}

func newMasterKey(raw []byte) MasterKey {
	var k MasterKey
	copy(k.key[:], raw)
	h := sha256.Sum256(append([]byte(masterKeyIDDomain), raw...))
	k.id = hex.EncodeToString(h[:4])
	return k
}

// ID returns the key id: the first 8 hex digits of a domain-separated
// SHA-256 of the key. It is not secret.
func (k MasterKey) ID() string { return k.id }

// IsZero reports whether k is the zero MasterKey.
func (k MasterKey) IsZero() bool { return k.id == "" }

// String returns the key id only.
func (k MasterKey) String() string { return "vault.MasterKey(" + k.id + ", " + redacted + ")" }

// GoString returns the key id only.
func (k MasterKey) GoString() string { return k.String() }

// Format prints the key id only, for every verb.
func (k MasterKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue implements slog.LogValuer: it logs the key id only.
func (k MasterKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.id), slog.String("key", redacted))
}

// MarshalJSON encodes the key id only.
func (k MasterKey) MarshalJSON() ([]byte, error) {
	return []byte(`{"id":"` + k.id + `","key":"` + redacted + `"}`), nil
}
