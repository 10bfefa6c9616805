// Package silero runs the Silero v5 voice activity detector through ONNX Runtime. One Runtime holds the
// model; each stream gets its own VAD, which carries the model's recurrent state and the last 64 samples
// between 32 ms windows.
//
// Without cgo, or when the library or the model is missing, Open returns an error wrapping
// ErrNotInstalled and the caller falls back to the energy VAD. scripts/install-voice-models.sh fetches
// both files from npm into the cache DefaultConfig points at.
package silero

import (
	"errors"
	"path/filepath"
)

// Window is the samples the model scores per call at 16 kHz (32 ms); Context is how many samples of the
// previous window are prepended to it (without them v5 scores silence higher and v6 detects nothing).
const (
	Window     = 512
	Context    = 64
	SampleRate = 16000
)

// Config names the two files the runtime needs.
type Config struct {
	Library string // libonnxruntime.so.1 (npm onnxruntime-node)
	Model   string // silero_vad_v5.onnx (npm @ricky0123/vad-web)
}

// ErrNotInstalled is a missing library or model file, or a build without cgo: use another VAD.
var ErrNotInstalled = errors.New("silero: ONNX Runtime library or Silero model not installed")

// DefaultConfig reads IT0_ONNXRUNTIME_LIB and IT0_SILERO_MODEL; either one unset defaults to where
// scripts/install-voice-models.sh puts it: $IT0_VOICE_CACHE, else $XDG_CACHE_HOME/it0/voice, else
// $HOME/.cache/it0/voice.
func DefaultConfig(getenv func(string) string) Config {
	dir := getenv("IT0_VOICE_CACHE")
	if dir == "" {
		if x := getenv("XDG_CACHE_HOME"); x != "" {
			dir = filepath.Join(x, "it0", "voice")
		} else if h := getenv("HOME"); h != "" {
			dir = filepath.Join(h, ".cache", "it0", "voice")
		}
	}
	c := Config{Library: getenv("IT0_ONNXRUNTIME_LIB"), Model: getenv("IT0_SILERO_MODEL")}
	if dir != "" {
		if c.Library == "" {
			c.Library = filepath.Join(dir, "libonnxruntime.so.1")
		}
		if c.Model == "" {
			c.Model = filepath.Join(dir, "silero_vad_v5.onnx")
		}
	}
	return c
}
