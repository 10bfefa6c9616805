package vault_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/it0/it0/internal/vault"
)

func TestUnmarshalSealed(t *testing.T) {
	t.Parallel()
	good := vault.Sealed{KeyID: "dk_0123456789abcdef", Nonce: bytes.Repeat([]byte{7}, 12), Ciphertext: []byte("0123456789abcdef-ct")}
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{name: "OK", in: good.Marshal()},
		{name: "OKEmptyCiphertext", in: vault.Sealed{KeyID: "k", Nonce: []byte{1}}.Marshal()},
		{name: "ErrEmpty", in: nil, wantErr: true},
		{name: "ErrShort", in: []byte{1, 3}, wantErr: true},
		{name: "ErrVersion", in: append([]byte{2}, good.Marshal()[1:]...), wantErr: true},
		{name: "ErrKeyIDLength", in: []byte{1, 200, 'a', 'b'}, wantErr: true},
		{name: "ErrNoKeyID", in: []byte{1, 0, 1, 1}, wantErr: true},
		{name: "ErrNonceLength", in: []byte{1, 1, 'a', 12, 1, 2}, wantErr: true},
		{name: "ErrNoNonce", in: []byte{1, 1, 'a', 0, 9}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := vault.UnmarshalSealed(tc.in)
			if tc.wantErr {
				if !errors.Is(err, vault.ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalSealed: %v", err)
			}
			if !bytes.Equal(s.Marshal(), tc.in) {
				t.Fatalf("round trip changed the blob")
			}
		})
	}
}

func FuzzUnmarshalSealed(f *testing.F) {
	f.Add(vault.Sealed{KeyID: "dk_0123456789abcdef", Nonce: make([]byte, 12), Ciphertext: []byte("ct")}.Marshal())
	f.Add([]byte{1, 1, 'a', 1, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := vault.UnmarshalSealed(b)
		if err != nil {
			if !errors.Is(err, vault.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(s.Marshal(), b) {
			t.Fatalf("Marshal(UnmarshalSealed(b)) != b")
		}
	})
}

func FuzzParseMasterKey(f *testing.F) {
	f.Add("+7+7+7+7+7+7+7+7+7+7+7+7+7+7+7+7+7+7+7+7+7s=")
	f.Add("fbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfbfb")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := vault.ParseMasterKey(s)
		if err != nil {
			if !errors.Is(err, vault.ErrInvalidMasterKey) {
				t.Fatalf("error %v does not wrap ErrInvalidMasterKey", err)
			}
			return
		}
		if len(k.ID()) != 8 {
			t.Fatalf("id %q", k.ID())
		}
	})
}
