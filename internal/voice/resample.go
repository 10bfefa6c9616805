package voice

import "math"

// resampleTaps is the half-width of the windowed-sinc kernel (in input samples at the lower rate), and
// resamplePhases how finely the fractional position is quantised: 16 taps a side keep the aliasing of a
// 16k→8k conversion ~30 dB down, which is what telephone speech and the recognisers need.
const (
	resampleTaps   = 16
	resamplePhases = 256
)

// Resampler converts a stream of PCM16 samples from one rate to another with a windowed-sinc
// (Blackman) low-pass filter. It keeps the filter's history between calls, so a stream cut into 20 ms
// frames converts as one signal, without clicks at the frame edges. It delays the signal by resampleTaps
// input samples. Not safe for concurrent use.
type Resampler struct {
	from, to int
	taps     int // half-width in input samples
	table    []float32
	buf      []float32 // input history and pending samples
	// pos is the position of the next output sample in buf, in units of 1/to input samples: integer
	// arithmetic keeps a stream cut anywhere bit-identical to the whole clip.
	pos int64
}

// NewResampler returns a converter from rate from to rate to (Hz, both > 0).
func NewResampler(from, to int) *Resampler {
	r := &Resampler{from: from, to: to}
	cutoff := 1.0 // of the input's Nyquist
	if to < from {
		cutoff = float64(to) / float64(from)
	}
	cutoff *= 0.92 // leave a transition band below Nyquist
	r.taps = int(math.Ceil(resampleTaps / cutoff))
	n := 2 * r.taps
	r.table = make([]float32, (resamplePhases+1)*n)
	for p := 0; p <= resamplePhases; p++ {
		frac := float64(p) / resamplePhases
		for k := 0; k < n; k++ {
			x := float64(k-r.taps+1) - frac // distance from the output position to input sample k
			r.table[p*n+k] = float32(cutoff * sinc(cutoff*x) * blackman(x/float64(r.taps)))
		}
	}
	r.buf = make([]float32, r.taps, r.taps+4096)
	r.pos = int64(r.taps) * int64(to)
	return r
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// blackman is the window over x in [-1, 1].
func blackman(x float64) float64 {
	if x <= -1 || x >= 1 {
		return 0
	}
	a := math.Pi * (x + 1)
	return 0.42 - 0.5*math.Cos(a) + 0.08*math.Cos(2*a)
}

// Process appends the output samples for src to dst. Same rates copy through.
func (r *Resampler) Process(dst, src []int16) []int16 {
	if r.from == r.to {
		return append(dst, src...)
	}
	for _, s := range src {
		r.buf = append(r.buf, float32(s))
	}
	n := 2 * r.taps
	to := int64(r.to)
	for {
		i := int(r.pos / to)
		if i+r.taps >= len(r.buf) {
			break
		}
		p := int(r.pos % to * resamplePhases / to)
		h := r.table[p*n : p*n+n]
		w := r.buf[i-r.taps+1 : i+r.taps+1]
		var acc float32
		for k, c := range h {
			acc += c * w[k]
		}
		dst = append(dst, clamp16(acc))
		r.pos += int64(r.from)
	}
	// Drop what no future output needs.
	if drop := int(r.pos/to) - r.taps + 1; drop > 0 {
		r.buf = append(r.buf[:0], r.buf[drop:]...)
		r.pos -= int64(drop) * to
	}
	return dst
}

func clamp16(v float32) int16 {
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(math.Round(float64(v)))
}

// Resample converts a whole clip from rate from to rate to (a synthesised sentence, a recorded answer).
func Resample(src []int16, from, to int) []int16 {
	if from == to {
		return append([]int16(nil), src...)
	}
	r := NewResampler(from, to)
	out := r.Process(make([]int16, 0, len(src)*to/from+8), src)
	// Flush the filter's delay with silence so the clip keeps its end.
	return r.Process(out, make([]int16, r.taps+1))
}
