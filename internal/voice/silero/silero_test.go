package silero_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/it0/it0/internal/voice"
	"github.com/it0/it0/internal/voice/espeak"
	"github.com/it0/it0/internal/voice/silero"
	"github.com/it0/it0/internal/voice/silero/silerotest"
)

// say synthesises text with espeak-ng at 16 kHz (skipping without it, failing under CI).
func say(t *testing.T, text string) []int16 {
	t.Helper()
	tts, err := espeak.New(espeak.Config{})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs espeak-ng: %v", err)
		}
		t.Skipf("espeak-ng not installed: %v", err)
	}
	pcm, err := tts.Synthesize(context.Background(), text, "en")
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

// bounds returns the first and last sample louder than -36 dBFS: where the speech in a clip is.
func bounds(pcm []int16) (first, last int) {
	first, last = -1, -1
	for i, s := range pcm {
		if s > 520 || s < -520 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last
}

// hiss is n samples of white noise at dbfs (RMS).
func hiss(n int, dbfs float64, r *rand.Rand) []int16 {
	amp := 32768 * math.Pow(10, dbfs/20) * math.Sqrt(3) // uniform noise: RMS = amp/√3
	out := make([]int16, n)
	for i := range out {
		out[i] = int16((r.Float64()*2 - 1) * amp)
	}
	return out
}

func ms(n int) int { return n * silero.SampleRate / 1000 }

func TestSileroSegmentsSpeech(t *testing.T) {
	t.Parallel()
	rt := silerotest.Open(t)
	r := rand.New(rand.NewPCG(3, 4))
	phrase := say(t, "The disk on prod two is almost full. Shall I delete the old logs?")
	first, last := bounds(phrase)
	if first < 0 {
		t.Fatal("espeak-ng produced silence")
	}
	// 1 s of a quiet line, the phrase, 1.5 s quiet, 2 s of loud hiss, 1 s quiet.
	var audio []int16
	audio = append(audio, hiss(ms(1000), -60, r)...)
	onset, offset := len(audio)+first, len(audio)+last
	audio = append(audio, phrase...)
	audio = append(audio, hiss(ms(1500), -60, r)...)
	noiseAt := len(audio)
	audio = append(audio, hiss(ms(2000), -34, r)...)
	audio = append(audio, hiss(ms(1000), -60, r)...)

	vad := silerotest.NewVAD(t, rt)
	seg := voice.NewSegmenter(voice.SegmenterConfig{FrameMs: 32})
	var starts, ends []int // sample positions at the end of the window that raised the event
	var maxNoise float32
	for i := 0; i+silero.Window <= len(audio); i += silero.Window {
		w := audio[i : i+silero.Window]
		p := vad.Speech(w)
		if i >= noiseAt && i < noiseAt+ms(2000) {
			maxNoise = max(maxNoise, p)
		}
		switch ev, _ := seg.Push(w, p); ev {
		case voice.SegStart:
			starts = append(starts, i+silero.Window)
		case voice.SegEnd:
			ends = append(ends, i+silero.Window)
		}
	}
	if err := vad.Err(); err != nil {
		t.Fatal(err)
	}
	// Ensure one segment: the phrase, with its sentence pause bridged and the hiss ignored.
	if len(starts) != 1 || len(ends) != 1 {
		t.Fatalf("segments start at %v and end at %v (samples); want one, the phrase at %d..%d (max p in hiss %.2f)",
			starts, ends, onset, offset, maxNoise)
	}
	// Ensure the onset is found within 150 ms of the first sound (two 32 ms windows, plus the model's
	// own latency on a soft first consonant).
	if d := starts[0] - onset; d < 0 || d > ms(150) {
		t.Errorf("onset found %d ms after the speech began, want 0..150", d*1000/silero.SampleRate)
	}
	// Ensure the segment closes after the 500 ms of trailing silence the segmenter waits for, not much later.
	if d := ends[0] - offset; d < ms(500) || d > ms(900) {
		t.Errorf("segment ended %d ms after the speech, want 500..900", d*1000/silero.SampleRate)
	}
	t.Logf("onset +%d ms, offset +%d ms, max p in -34 dBFS hiss %.3f", (starts[0]-onset)*1000/silero.SampleRate,
		(ends[0]-offset)*1000/silero.SampleRate, maxNoise)
}

func TestSileroScores(t *testing.T) {
	t.Parallel()
	rt := silerotest.Open(t)
	phrase := say(t, "Yes, go ahead.")
	// Ensure digital silence and a wrong-sized window score 0, speech scores high somewhere.
	vad := silerotest.NewVAD(t, rt)
	for range 10 {
		if p := vad.Speech(make([]int16, silero.Window)); p > 0.1 {
			t.Fatalf("silence scores %.2f", p)
		}
	}
	if p := vad.Speech(make([]int16, 320)); p != 0 {
		t.Fatalf("a 320-sample window scores %.2f, want 0", p)
	}
	score := func() []float32 {
		var ps []float32
		for i := 0; i+silero.Window <= len(phrase); i += silero.Window {
			ps = append(ps, vad.Speech(phrase[i:i+silero.Window]))
		}
		return ps
	}
	vad.Reset()
	a := score()
	if m := maxOf(a); m < 0.8 {
		t.Fatalf("speech peaks at p=%.2f, want ≥ 0.8", m)
	}
	// Ensure Reset forgets the stream: the same audio scores the same again.
	vad.Reset()
	b := score()
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-4 {
			t.Fatalf("window %d: %.4f then %.4f after Reset", i, a[i], b[i])
		}
	}
	// Ensure two VADs of one runtime keep separate state (interleaved, each sees its own stream).
	v2 := silerotest.NewVAD(t, rt)
	vad.Reset()
	for i := 0; i+silero.Window <= len(phrase); i += silero.Window {
		p1 := vad.Speech(phrase[i : i+silero.Window])
		v2.Speech(make([]int16, silero.Window))
		if math.Abs(float64(p1-a[i/silero.Window])) > 1e-4 {
			t.Fatalf("window %d: %.4f interleaved with another stream, %.4f alone", i/silero.Window, p1, a[i/silero.Window])
		}
	}
}

func maxOf(ps []float32) float32 {
	var m float32
	for _, p := range ps {
		m = max(m, p)
	}
	return m
}

func TestOpenMissing(t *testing.T) {
	t.Parallel()
	// Ensure a missing file is ErrNotInstalled, named, not a crash in the loader.
	_, err := silero.Open(silero.Config{Library: "/nonexistent/libonnxruntime.so.1", Model: "/nonexistent/m.onnx"})
	if err == nil || !errors.Is(err, silero.ErrNotInstalled) {
		t.Fatalf("Open = %v, want ErrNotInstalled", err)
	}
}

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		env  map[string]string
		want silero.Config
	}{
		{"Home", map[string]string{"HOME": "/h"}, silero.Config{Library: "/h/.cache/it0/voice/libonnxruntime.so.1", Model: "/h/.cache/it0/voice/silero_vad_v5.onnx"}},
		{"XDG", map[string]string{"HOME": "/h", "XDG_CACHE_HOME": "/x"}, silero.Config{Library: "/x/it0/voice/libonnxruntime.so.1", Model: "/x/it0/voice/silero_vad_v5.onnx"}},
		{"Explicit", map[string]string{"HOME": "/h", "IT0_ONNXRUNTIME_LIB": "/l.so", "IT0_SILERO_MODEL": "/m.onnx"}, silero.Config{Library: "/l.so", Model: "/m.onnx"}},
		{"Cache", map[string]string{"IT0_VOICE_CACHE": "/c"}, silero.Config{Library: "/c/libonnxruntime.so.1", Model: "/c/silero_vad_v5.onnx"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := silero.DefaultConfig(env(tc.env)); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
