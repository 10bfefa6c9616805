package vault

import (
	"fmt"
	"io"
	"log/slog"
)

// redacted replaces every secret value in logs, errors, JSON and fmt output.
const redacted = "[REDACTED]"

// Secret is a secret value (password, private key, token, kubeconfig) that
// never prints itself: fmt verbs, slog and encoding/json all see
// "[REDACTED]". Reveal returns the value for the one place that needs it.
//
// Secret is a string type so it converts cheaply from request fields and
// decodes from JSON like a plain string; only encoding is redacted.
type Secret string

var (
	_ fmt.Formatter  = Secret("")
	_ fmt.Stringer   = Secret("")
	_ fmt.GoStringer = Secret("")
	_ slog.LogValuer = Secret("")
	_ jsonMarshaler  = Secret("")
)

type jsonMarshaler interface{ MarshalJSON() ([]byte, error) }

// Reveal returns the secret value. Call it only where the value is used
// (sealing it, authenticating with it), never to log or return it.
func (s Secret) Reveal() string { return string(s) }

// Bytes returns a copy of the secret value as bytes.
func (s Secret) Bytes() []byte { return []byte(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

// String returns "[REDACTED]".
func (s Secret) String() string { return redacted }

// GoString returns "[REDACTED]", so %#v does not print the value either.
func (s Secret) GoString() string { return redacted }

// Format writes "[REDACTED]" for every verb, including %x, %q and %d, which
// would otherwise reach the underlying string.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes the secret as the string "[REDACTED]". Secrets are
// write-only over the API; a response that needs to show one exists carries a
// fingerprint instead.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
