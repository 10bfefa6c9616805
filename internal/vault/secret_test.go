package vault_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/it0/it0/internal/vault"
)

// TestSecretRedaction logs and prints secrets every way a careless caller
// might and asserts the value never appears.
func TestSecretRedaction(t *testing.T) {
	t.Parallel()
	const value = "hunter2-top-secret-value"
	type credential struct {
		Name   string
		Secret vault.Secret
	}
	s := vault.Secret(value)
	c := credential{Name: "prod", Secret: s}
	ptr := &c

	tests := []struct {
		name  string
		write func(buf *bytes.Buffer)
	}{
		{name: "SlogJSON", write: func(buf *bytes.Buffer) {
			l := slog.New(slog.NewJSONHandler(buf, nil))
			l.Info("msg", "secret", s, "credential", c, "ptr", ptr, slog.Any("any", s))
		}},
		{name: "SlogText", write: func(buf *bytes.Buffer) {
			l := slog.New(slog.NewTextHandler(buf, nil))
			l.Info("msg", "secret", s, "credential", c, "ptr", ptr)
		}},
		{name: "Fmt", write: func(buf *bytes.Buffer) {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
				fmt.Fprintf(buf, verb+" "+verb+" "+verb+"\n", s, c, ptr)
			}
			fmt.Fprint(buf, s, c)
			fmt.Fprintln(buf, s, c)
			_ = fmt.Errorf("wrap %v", s)
			buf.WriteString(fmt.Errorf("wrap: %v %w", s, fmt.Errorf("%s", s)).Error())
		}},
		{name: "JSON", write: func(buf *bytes.Buffer) {
			b, err := json.Marshal(map[string]any{"s": s, "c": c, "p": ptr, "list": []vault.Secret{s}})
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(b)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tc.write(&buf)
			out := buf.String()
			if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
				t.Fatalf("secret leaked: %s", out)
			}
			if !strings.Contains(out, "[REDACTED]") {
				t.Fatalf("no redaction marker in %s", out)
			}
		})
	}
	if s.Reveal() != value {
		t.Fatal("Reveal does not return the value")
	}

	// Ensure a Secret still decodes from JSON like a string, for requests.
	t.Run("UnmarshalJSON", func(t *testing.T) {
		t.Parallel()
		var in credential
		if err := json.Unmarshal([]byte(`{"Name":"x","Secret":"`+value+`"}`), &in); err != nil {
			t.Fatal(err)
		}
		if in.Secret.Reveal() != value {
			t.Fatalf("decoded %q", in.Secret.Reveal())
		}
	})
}

// TestMasterKeyRedaction asserts a master key logs and prints its id only.
func TestMasterKeyRedaction(t *testing.T) {
	t.Parallel()
	encoded, err := vault.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := vault.ParseMasterKey(encoded.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", "key", k, "cfg", vault.Config{MasterKey: k}, "encoded", encoded)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", "key", k, "cfg", vault.Config{MasterKey: k})
	fmt.Fprintf(&buf, "%v %+v %#v %s %x\n", k, k, k, k, k)
	fmt.Fprintf(&buf, "%v %+v %#v\n", vault.Config{MasterKey: k}, vault.Config{MasterKey: k}, vault.Config{MasterKey: k})
	b, _ := json.Marshal(vault.Config{MasterKey: k})
	buf.Write(b)
	if out := buf.String(); strings.Contains(out, encoded.Reveal()) || !strings.Contains(out, k.ID()) {
		t.Fatalf("master key leaked or id missing: %s", out)
	}
}
