package vault

import "fmt"

// sealedVersion is the first byte of a marshalled Sealed value.
const sealedVersion = 1

// Sealed is an encrypted value: the id of the data key that seals it, the
// nonce and the AES-GCM ciphertext with its tag. It is self-describing, so
// Open needs nothing else but the additional data.
type Sealed struct {
	// KeyID is the id of the data key.
	KeyID string
	// Nonce is the AES-GCM nonce, fresh for every seal.
	Nonce []byte
	// Ciphertext is the encrypted value followed by the GCM tag.
	Ciphertext []byte
}

// Marshal encodes s for storage as
// version(1) | len(KeyID)(1) | KeyID | len(Nonce)(1) | Nonce | Ciphertext.
// KeyID and Nonce must be shorter than 256 bytes; values from Seal are.
func (s Sealed) Marshal() []byte {
	b := make([]byte, 0, 3+len(s.KeyID)+len(s.Nonce)+len(s.Ciphertext))
	b = append(b, sealedVersion, byte(len(s.KeyID)))
	b = append(b, s.KeyID...)
	b = append(b, byte(len(s.Nonce)))
	b = append(b, s.Nonce...)
	return append(b, s.Ciphertext...)
}

// UnmarshalSealed decodes a value produced by Sealed.Marshal. It returns an
// error wrapping ErrMalformed for anything else. The result does not alias b.
func UnmarshalSealed(b []byte) (Sealed, error) {
	if len(b) < 3 {
		return Sealed{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if b[0] != sealedVersion {
		return Sealed{}, fmt.Errorf("%w: unknown version %d", ErrMalformed, b[0])
	}
	idLen := int(b[1])
	rest := b[2:]
	if idLen == 0 || len(rest) < idLen+1 {
		return Sealed{}, fmt.Errorf("%w: bad key id length %d", ErrMalformed, idLen)
	}
	id := string(rest[:idLen])
	rest = rest[idLen:]
	nonceLen := int(rest[0])
	rest = rest[1:]
	if nonceLen == 0 || len(rest) < nonceLen {
		return Sealed{}, fmt.Errorf("%w: bad nonce length %d", ErrMalformed, nonceLen)
	}
	return Sealed{
		KeyID:      id,
		Nonce:      append([]byte(nil), rest[:nonceLen]...),
		Ciphertext: append([]byte(nil), rest[nonceLen:]...),
	}, nil
}
