package sshexec_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/it0/it0/internal/inventory/sshexec"
)

// TestAuthRedaction logs and prints hops every way a careless caller might
// and asserts no credential appears.
func TestAuthRedaction(t *testing.T) {
	t.Parallel()
	key, _ := newKeyPEM(t)
	const password, passphrase = "pa55word-secret", "passphrase-secret"
	hop := sshexec.Hop{ServerID: "s1", Host: "h", User: "u", Auth: sshexec.Auth{PrivateKey: key, Passphrase: passphrase, Password: password}}
	tg := target(hop)
	tests := []struct {
		name  string
		write func(*bytes.Buffer)
	}{
		{"SlogJSON", func(b *bytes.Buffer) {
			slog.New(slog.NewJSONHandler(b, nil)).Info("m", "hop", hop, "auth", hop.Auth, "target", tg)
		}},
		{"SlogText", func(b *bytes.Buffer) {
			slog.New(slog.NewTextHandler(b, nil)).Info("m", "hop", hop, "auth", hop.Auth, "target", tg)
		}},
		{"Fmt", func(b *bytes.Buffer) {
			for _, v := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
				fmt.Fprintf(b, v+" "+v+" "+v+"\n", hop, hop.Auth, tg)
			}
		}},
		{"JSON", func(b *bytes.Buffer) {
			out, err := json.Marshal(tg)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(out)
		}},
		{"Error", func(b *bytes.Buffer) {
			bad := hop
			bad.Auth.PrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + password + "\n-----END OPENSSH PRIVATE KEY-----\n"
			_, err := newExecutor(t, sshexec.Config{}).Run(t.Context(), target(bad), sshexec.Command{Cmd: "true"})
			fmt.Fprintf(b, "%v [REDACTED]", err)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			tc.write(&b)
			out := b.String()
			for _, secret := range []string{password, passphrase, "PRIVATE KEY", key.Reveal()[40:80]} {
				if strings.Contains(out, secret) {
					t.Fatalf("%q leaked: %s", secret, out)
				}
			}
			if !strings.Contains(out, "REDACTED") && !strings.Contains(out, `"password":true`) && !strings.Contains(out, "password=true") {
				t.Fatalf("no redaction marker: %s", out)
			}
		})
	}
}
