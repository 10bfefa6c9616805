// Package silerotest opens the Silero runtime for tests: installed by scripts/install-voice-models.sh
// (or named by IT0_ONNXRUNTIME_LIB and IT0_SILERO_MODEL). A test without it skips, and fails when
// CI=true: CI's setup step must have provided it.
package silerotest

import (
	"os"
	"testing"

	"github.com/it0/it0/internal/voice/silero"
)

// Open returns the runtime, closed when tb ends.
func Open(tb testing.TB) *silero.Runtime {
	tb.Helper()
	rt, err := silero.Open(silero.DefaultConfig(os.Getenv))
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI needs the Silero VAD (bash scripts/install-voice-models.sh): %v", err)
		}
		tb.Skipf("Silero VAD not installed (bash scripts/install-voice-models.sh): %v", err)
	}
	tb.Cleanup(func() { rt.Close() })
	return rt
}

// NewVAD returns one stream's detector of rt, closed when tb ends.
func NewVAD(tb testing.TB, rt *silero.Runtime) *silero.VAD {
	tb.Helper()
	v, err := rt.NewVAD()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}
