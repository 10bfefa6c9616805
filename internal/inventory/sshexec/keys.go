package sshexec

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"

	gossh "golang.org/x/crypto/ssh"

	"github.com/it0/it0/internal/vault"
)

// KeyInfo describes a private key without revealing it, for the credential
// API to show and store next to the sealed key.
type KeyInfo struct {
	// Type is the key algorithm: "ssh-ed25519", "ssh-rsa",
	// "ecdsa-sha2-nistp256", …
	Type string `json:"key_type"`
	// Bits is the key size (RSA modulus, ECDSA curve; 256 for ed25519).
	Bits int `json:"bits"`
	// Fingerprint is the SHA256 fingerprint of the public key, as
	// ssh-keygen -l prints it.
	Fingerprint string `json:"fingerprint"`
	// PublicKey is the public key in authorized_keys format.
	PublicKey string `json:"public_key"`
	// Encrypted reports whether the PEM is passphrase-protected.
	Encrypted bool `json:"encrypted"`
}

// InspectPrivateKey parses a PEM private key (decrypting it with
// passphrase when it is encrypted) and describes it. It returns an error
// wrapping ErrPrivateKey when the key does not parse, is encrypted and no
// passphrase is given, or the passphrase is wrong. Errors never contain key
// material.
func InspectPrivateKey(pem, passphrase vault.Secret) (KeyInfo, error) {
	if pem.IsZero() {
		return KeyInfo{}, fmt.Errorf("%w: empty", ErrPrivateKey)
	}
	var (
		signer    gossh.Signer
		err       error
		encrypted bool
	)
	signer, err = gossh.ParsePrivateKey(pem.Bytes())
	var missing *gossh.PassphraseMissingError
	if errors.As(err, &missing) {
		encrypted = true
		if passphrase.IsZero() {
			return KeyInfo{}, fmt.Errorf("%w: key is encrypted and no passphrase is set", ErrPrivateKey)
		}
		signer, err = gossh.ParsePrivateKeyWithPassphrase(pem.Bytes(), passphrase.Bytes())
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%w: %v", ErrPrivateKey, err)
	}
	pub := signer.PublicKey()
	return KeyInfo{
		Type:        pub.Type(),
		Bits:        keyBits(pub),
		Fingerprint: gossh.FingerprintSHA256(pub),
		PublicKey:   authorizedKey(pub),
		Encrypted:   encrypted,
	}, nil
}

func keyBits(pub gossh.PublicKey) int {
	cpk, ok := pub.(gossh.CryptoPublicKey)
	if !ok {
		return 0
	}
	switch k := cpk.CryptoPublicKey().(type) {
	case *rsa.PublicKey:
		return k.N.BitLen()
	case *ecdsa.PublicKey:
		return k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return 256
	}
	return 0
}

// ParseHostKey validates a host key in authorized_keys format (as stored in
// Hop.HostKey, with or without a trailing comment) and returns it
// normalised to "type base64" and its SHA256 fingerprint. It returns an
// error wrapping ErrHostKeyInvalid otherwise.
func ParseHostKey(s string) (key, fingerprint string, err error) {
	pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrHostKeyInvalid, err)
	}
	return authorizedKey(pub), gossh.FingerprintSHA256(pub), nil
}
