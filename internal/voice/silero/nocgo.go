//go:build !cgo

// Without cgo this package cannot load ONNX Runtime: Open always fails and the caller falls back to the
// energy VAD.

package silero

import "fmt"

// Runtime is never made in a build without cgo.
type Runtime struct{}

// Open fails: ONNX Runtime is loaded through cgo.
func Open(Config) (*Runtime, error) {
	return nil, fmt.Errorf("%w: this binary was built without cgo (CGO_ENABLED=0)", ErrNotInstalled)
}

// Version is empty.
func (r *Runtime) Version() string { return "" }

// Close does nothing.
func (r *Runtime) Close() error { return nil }

// VAD is never made in a build without cgo.
type VAD struct{}

// NewVAD fails.
func (r *Runtime) NewVAD() (*VAD, error) { return nil, ErrNotInstalled }

// FrameSize is one 32 ms window.
func (v *VAD) FrameSize() int { return Window }

// Reset does nothing.
func (v *VAD) Reset() {}

// Speech scores nothing.
func (v *VAD) Speech([]int16) float32 { return 0 }

// Err is nil.
func (v *VAD) Err() error { return nil }

// Close does nothing.
func (v *VAD) Close() error { return nil }
