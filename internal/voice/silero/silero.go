//go:build cgo

// This file loads ONNX Runtime through onnxruntime_go (cgo), which dlopens libonnxruntime at run time:
// the build never needs the library.

package silero

import (
	"errors"
	"fmt"
	"os"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// The ONNX Runtime environment is process-global in onnxruntime_go (one dlopen, one OrtEnv), so the
// runtimes of one process share it: the first Open initialises it, the last Close destroys it.
var (
	envMu   sync.Mutex
	envRefs int
	envLib  string
)

func acquireEnv(lib string) error {
	envMu.Lock()
	defer envMu.Unlock()
	if envRefs > 0 {
		if lib != envLib {
			return fmt.Errorf("silero: ONNX Runtime already loaded from %s, cannot load %s too", envLib, lib)
		}
		envRefs++
		return nil
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("silero: load ONNX Runtime %s: %w", lib, err)
	}
	envRefs, envLib = 1, lib
	return nil
}

func releaseEnv() {
	envMu.Lock()
	defer envMu.Unlock()
	if envRefs--; envRefs == 0 {
		ort.DestroyEnvironment()
	}
}

// Runtime is a loaded Silero model. Its session is shared by every VAD made from it: ONNX Runtime runs
// one session from many goroutines at once.
type Runtime struct {
	session *ort.DynamicAdvancedSession
	version string
	once    sync.Once
}

// Open loads the runtime library and the model. It returns an error wrapping ErrNotInstalled when a file
// is missing.
func Open(cfg Config) (*Runtime, error) {
	for _, f := range []struct{ what, path string }{{"IT0_ONNXRUNTIME_LIB", cfg.Library}, {"IT0_SILERO_MODEL", cfg.Model}} {
		if f.path == "" {
			return nil, fmt.Errorf("%w: %s is not set", ErrNotInstalled, f.what)
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNotInstalled, f.what, err)
		}
	}
	if err := acquireEnv(cfg.Library); err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		releaseEnv()
		return nil, fmt.Errorf("silero: session options: %w", err)
	}
	defer opts.Destroy()
	// One thread per call: each stream's window runs on the goroutine that feeds it, and ONNX Runtime's
	// own thread pools would only fight the Go scheduler for the same cores.
	if err := errors.Join(opts.SetIntraOpNumThreads(1), opts.SetInterOpNumThreads(1)); err != nil {
		releaseEnv()
		return nil, fmt.Errorf("silero: session options: %w", err)
	}
	s, err := ort.NewDynamicAdvancedSession(cfg.Model, []string{"input", "state", "sr"}, []string{"output", "stateN"}, opts)
	if err != nil {
		releaseEnv()
		return nil, fmt.Errorf("silero: load model %s: %w", cfg.Model, err)
	}
	return &Runtime{session: s, version: ort.GetVersion()}, nil
}

// Version is the ONNX Runtime library's version.
func (r *Runtime) Version() string { return r.version }

// Close releases the model (and the runtime with the last one). VADs made from r must be closed first.
func (r *Runtime) Close() error {
	var err error
	r.once.Do(func() {
		err = r.session.Destroy()
		releaseEnv()
	})
	return err
}

// VAD is one stream's detector. Not safe for concurrent use; Close releases its tensors.
type VAD struct {
	rt            *Runtime
	input         *ort.Tensor[float32]
	state, stateN *ort.Tensor[float32]
	sr            *ort.Tensor[int64]
	output        *ort.Tensor[float32]
	err           error
	ins, outs     [3]ort.Value
}

// NewVAD returns a detector for one 16 kHz stream.
func (r *Runtime) NewVAD() (*VAD, error) {
	v := &VAD{rt: r}
	var err error
	v.input, err = ort.NewEmptyTensor[float32](ort.NewShape(1, Context+Window))
	if err == nil {
		v.state, err = ort.NewEmptyTensor[float32](ort.NewShape(2, 1, 128))
	}
	if err == nil {
		v.stateN, err = ort.NewEmptyTensor[float32](ort.NewShape(2, 1, 128))
	}
	if err == nil {
		// onnxruntime_go rejects a 0-dimensional shape; the model takes sr as [1] as well.
		v.sr, err = ort.NewTensor(ort.NewShape(1), []int64{SampleRate})
	}
	if err == nil {
		v.output, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1))
	}
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("silero: tensors: %w", err)
	}
	return v, nil
}

// FrameSize is one 32 ms window.
func (v *VAD) FrameSize() int { return Window }

// Reset forgets the stream: the recurrent state and the context samples.
func (v *VAD) Reset() {
	if v.input == nil {
		return
	}
	v.state.ZeroContents()
	clear(v.input.GetData())
}

// Speech scores one window of Window samples: the probability that it holds speech. A window of another
// size, a closed VAD, or a failed run (kept in Err) scores 0.
func (v *VAD) Speech(frame []int16) float32 {
	if len(frame) != Window || v.input == nil {
		return 0
	}
	in := v.input.GetData()
	copy(in, in[Window:]) // the last 64 samples of the previous window lead this one
	for i, s := range frame {
		in[Context+i] = float32(s) / 32768
	}
	v.ins, v.outs = [3]ort.Value{v.input, v.state, v.sr}, [3]ort.Value{v.output, v.stateN}
	if err := v.rt.session.Run(v.ins[:], v.outs[:2]); err != nil {
		if v.err == nil {
			v.err = fmt.Errorf("silero: run: %w", err)
		}
		return 0
	}
	v.state, v.stateN = v.stateN, v.state
	return v.output.GetData()[0]
}

// Err is the first failed run of this VAD, if any.
func (v *VAD) Err() error { return v.err }

// Close releases the VAD's tensors; a second Close does nothing.
func (v *VAD) Close() error {
	var errs []error
	for _, t := range []**ort.Tensor[float32]{&v.input, &v.state, &v.stateN, &v.output} {
		if *t != nil {
			errs = append(errs, (*t).Destroy())
			*t = nil
		}
	}
	if v.sr != nil {
		errs = append(errs, v.sr.Destroy())
		v.sr = nil
	}
	return errors.Join(errs...)
}
