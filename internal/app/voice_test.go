package app

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/it0/it0/internal/voice/silero"
)

// TestVoiceVAD: IT0_VAD picks the VAD; a Silero that does not load falls back to the energy VAD with one
// log line unless Silero was asked for by name, which makes it a startup error.
func TestVoiceVAD(t *testing.T) {
	t.Parallel()
	missing := silero.Config{Library: "/nonexistent/libonnxruntime.so.1", Model: "/nonexistent/silero_vad_v5.onnx"}
	t.Run("ErrBadName", func(t *testing.T) {
		t.Parallel()
		// Ensure an unknown VAD is a validation error naming the setting.
		c := VoiceConfig{VAD: "webrtc"}
		if errs := c.validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), `IT0_VAD "webrtc"`) {
			t.Fatalf("validate = %v", errs)
		}
	})
	t.Run("FallbackLogged", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		c := VoiceConfig{Silero: missing}
		newVAD, name, closeVAD, err := c.vad(slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil || newVAD != nil || name != "energy" {
			t.Fatalf("vad = %v, %q, %v", newVAD != nil, name, err)
		}
		closeVAD()
		if n := strings.Count(buf.String(), "using the energy VAD"); n != 1 || !strings.Contains(buf.String(), "IT0_ONNXRUNTIME_LIB") {
			t.Fatalf("log (want one line naming the missing file):\n%s", buf.String())
		}
	})
	t.Run("ErrSileroRequired", func(t *testing.T) {
		t.Parallel()
		c := VoiceConfig{VAD: "silero", Silero: missing}
		if _, _, _, err := c.vad(slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "install-voice-models.sh") {
			t.Fatalf("vad = %v", err)
		}
	})
	t.Run("Energy", func(t *testing.T) {
		t.Parallel()
		// Ensure IT0_VAD=energy never touches the runtime, even where it is installed.
		c := VoiceConfig{VAD: "energy", Silero: silero.DefaultConfig(os.Getenv)}
		if newVAD, name, _, err := c.vad(slog.New(slog.DiscardHandler)); err != nil || newVAD != nil || name != "energy" {
			t.Fatalf("vad = %q, %v", name, err)
		}
	})
	t.Run("Silero", func(t *testing.T) {
		t.Parallel()
		// Ensure an installed runtime is used by default, one VAD per stream.
		c := VoiceConfig{Silero: silero.DefaultConfig(os.Getenv)}
		newVAD, name, closeVAD, err := c.vad(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer closeVAD()
		if newVAD == nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("CI needs the Silero VAD (bash scripts/install-voice-models.sh); got %q", name)
			}
			t.Skip("Silero VAD not installed")
		}
		v := newVAD()
		if v.FrameSize() != silero.Window || !strings.HasPrefix(name, "silero (ONNX Runtime 1.") {
			t.Fatalf("frame %d, name %q", v.FrameSize(), name)
		}
		v.(*silero.VAD).Close()
	})
}
