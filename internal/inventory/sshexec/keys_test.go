package sshexec_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/vault"
)

func TestInspectPrivateKey(t *testing.T) {
	t.Parallel()
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	marshal := func(k any, passphrase string) vault.Secret {
		var b *pem.Block
		var err error
		if passphrase == "" {
			b, err = gossh.MarshalPrivateKey(k, "c")
		} else {
			b, err = gossh.MarshalPrivateKeyWithPassphrase(k, "c", []byte(passphrase))
		}
		if err != nil {
			t.Fatal(err)
		}
		return vault.Secret(pem.EncodeToMemory(b))
	}
	// Encrypted keys cost a bcrypt KDF per marshal and parse (seconds under
	// -race): make one.
	encrypted := marshal(edKey, "s3cret")
	tests := []struct {
		name       string
		pem        vault.Secret
		passphrase vault.Secret
		wantType   string
		wantBits   int
		wantEnc    bool
		wantErr    bool
	}{
		{name: "Ed25519", pem: marshal(edKey, ""), wantType: "ssh-ed25519", wantBits: 256},
		{name: "ECDSA", pem: marshal(ecKey, ""), wantType: "ecdsa-sha2-nistp256", wantBits: 256},
		{name: "RSA", pem: marshal(rsaKey, ""), wantType: "ssh-rsa", wantBits: 1024},
		{name: "Encrypted", pem: encrypted, passphrase: "s3cret", wantType: "ssh-ed25519", wantBits: 256, wantEnc: true},
		{name: "ErrNoPassphrase", pem: encrypted, wantErr: true},
		{name: "ErrWrongPassphrase", pem: encrypted, passphrase: "nope", wantErr: true},
		{name: "ErrGarbage", pem: "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n-----END OPENSSH PRIVATE KEY-----\n", wantErr: true},
		{name: "ErrEmpty", pem: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			info, err := sshexec.InspectPrivateKey(tc.pem, tc.passphrase)
			if tc.wantErr {
				if !errors.Is(err, sshexec.ErrPrivateKey) {
					t.Fatalf("err = %v, want ErrPrivateKey", err)
				}
				if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error leaks key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("InspectPrivateKey: %v", err)
			}
			if info.Type != tc.wantType || info.Bits != tc.wantBits || info.Encrypted != tc.wantEnc || !strings.HasPrefix(info.Fingerprint, "SHA256:") {
				t.Fatalf("info %+v", info)
			}
			key, fp, err := sshexec.ParseHostKey(info.PublicKey + " comment")
			if err != nil || key != info.PublicKey || fp != info.Fingerprint {
				t.Fatalf("ParseHostKey = %q, %q, %v", key, fp, err)
			}
		})
	}
	if _, _, err := sshexec.ParseHostKey("ssh-ed25519 not-base64"); !errors.Is(err, sshexec.ErrHostKeyInvalid) {
		t.Fatalf("ParseHostKey(bad) = %v", err)
	}
}
