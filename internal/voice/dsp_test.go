package voice

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// tone returns n samples of a sine of freq Hz at rate, amplitude amp.
func tone(n, rate int, freq, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

func noise(n int, amp float64, r *rand.Rand) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16((r.Float64()*2 - 1) * amp)
	}
	return out
}

func TestMulaw(t *testing.T) {
	t.Parallel()
	// Ensure the G.711 reference points: silence, full scale, sign.
	for _, tc := range []struct {
		pcm  int16
		byte byte
	}{{0, 0xff}, {-1, 0x7f}, {32767, 0x80}, {-32768, 0x00}, {1000, 0xce}} {
		if got := MulawEncode(nil, []int16{tc.pcm})[0]; got != tc.byte {
			t.Errorf("encode %d = %#x, want %#x", tc.pcm, got, tc.byte)
		}
	}
	// Ensure every byte decodes and re-encodes to itself (0x7f is -0 and encodes as +0's neighbour).
	for b := 0; b < 256; b++ {
		s := MulawDecode(nil, []byte{byte(b)})[0]
		if got := MulawEncode(nil, []int16{s})[0]; got != byte(b) && !(b == 0x7f && got == 0xff) {
			t.Errorf("byte %#x → %d → %#x", b, s, got)
		}
	}
	// Ensure the round trip error stays within μ-law's quantisation (about 3% of the value).
	for v := -32000; v <= 32000; v += 37 {
		got := MulawDecode(nil, MulawEncode(nil, []int16{int16(v)}))[0]
		if d := math.Abs(float64(got) - float64(v)); d > 8+0.035*math.Abs(float64(v)) {
			t.Fatalf("round trip %d → %d", v, got)
		}
	}
}

func TestPCMBytes(t *testing.T) {
	t.Parallel()
	in := []int16{0, 1, -1, 32767, -32768}
	b := PCMToBytes(nil, in)
	out, err := PCMFromBytes(nil, b)
	if err != nil || len(out) != len(in) {
		t.Fatalf("PCMFromBytes = %v, %v", out, err)
	}
	for i := range in {
		if in[i] != out[i] {
			t.Fatalf("sample %d: %d != %d", i, out[i], in[i])
		}
	}
	if _, err := PCMFromBytes(nil, []byte{1, 2, 3}); err != ErrOddPCM {
		t.Fatalf("odd length: err = %v, want ErrOddPCM", err)
	}
}

// snr compares got against want after aligning by delay samples.
func snr(want, got []int16, delay int) float64 {
	var sig, errp float64
	for i := 200; i+delay < len(got) && i < len(want)-200; i++ {
		d := float64(got[i+delay]) - float64(want[i])
		sig += float64(want[i]) * float64(want[i])
		errp += d * d
	}
	return 10 * math.Log10(sig/(errp+1e-9))
}

func TestResample(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		from, to int
		freq     float64
	}{{"16kTo8k", 16000, 8000, 440}, {"8kTo16k", 8000, 16000, 440}, {"24kTo16k", 24000, 16000, 1000}, {"22050To16k", 22050, 16000, 700}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := tone(tc.from, tc.from, tc.freq, 10000) // one second
			// Ensure a stream cut into 20 ms frames equals the whole clip converted at once.
			r := NewResampler(tc.from, tc.to)
			var streamed []int16
			for i := 0; i < len(in); i += tc.from / 50 {
				streamed = r.Process(streamed, in[i:min(i+tc.from/50, len(in))])
			}
			whole := NewResampler(tc.from, tc.to).Process(nil, in)
			if len(streamed) != len(whole) {
				t.Fatalf("streamed %d samples, whole %d", len(streamed), len(whole))
			}
			for i := range whole {
				if whole[i] != streamed[i] {
					t.Fatalf("sample %d differs: %d vs %d", i, streamed[i], whole[i])
				}
			}
			// Ensure the length and the signal: compare with the ideal tone at the output rate.
			out := Resample(in, tc.from, tc.to)
			if d := len(out) - tc.to; d < -2 || d > 2 {
				t.Fatalf("len = %d, want about %d", len(out), tc.to)
			}
			want := tone(tc.to, tc.to, tc.freq, 10000)
			if got := snr(want, out, 0); got < 30 {
				t.Fatalf("SNR = %.1f dB, want ≥ 30", got)
			}
		})
	}
	// Ensure a tone above the lower Nyquist is filtered out rather than aliased.
	out := Resample(tone(16000, 16000, 6000, 10000), 16000, 8000)
	var e float64
	for _, s := range out[100 : len(out)-100] {
		e += float64(s) * float64(s)
	}
	if rms := math.Sqrt(e / float64(len(out)-200)); rms > 300 {
		t.Fatalf("6 kHz tone leaks into 8 kHz output at rms %.0f", rms)
	}
}

// speechLike is a voiced-sounding burst: a 150 Hz fundamental with harmonics, amplitude amp.
func speechLike(n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		x := 2 * math.Pi * 150 * float64(i) / SampleRate
		out[i] = int16(amp * (0.6*math.Sin(x) + 0.3*math.Sin(2*x) + 0.1*math.Sin(3*x)))
	}
	return out
}

// feed runs audio through vad and seg frame by frame and returns the frame indices of the events.
func feed(vad VAD, seg *Segmenter, audio []int16) (starts, ends []int, segs [][]int16) {
	n := vad.FrameSize()
	for i := 0; i+n <= len(audio); i += n {
		f := audio[i : i+n]
		switch ev, s := seg.Push(f, vad.Speech(f)); ev {
		case SegStart:
			starts = append(starts, i/n)
		case SegEnd:
			ends = append(ends, i/n)
			segs = append(segs, s)
		}
	}
	return
}

func TestEnergyVADSegments(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	frame := SampleRate * FrameMs / 1000
	var audio []int16
	audio = append(audio, noise(50*frame, 300, r)...)    // 1 s of line noise (~-40 dBFS)
	audio = append(audio, speechLike(40*frame, 8000)...) // 800 ms of "speech"
	audio = append(audio, noise(8*frame, 300, r)...)     // a comma pause of 160 ms
	audio = append(audio, speechLike(20*frame, 8000)...) // more speech
	audio = append(audio, noise(60*frame, 300, r)...)    // 1.2 s of silence
	audio = append(audio, noise(50*frame, 3000, r)...)   // a burst of loud white noise
	audio = append(audio, noise(40*frame, 300, r)...)    // silence
	starts, ends, segs := feed(NewEnergyVAD(), NewSegmenter(SegmenterConfig{}), audio)
	// Ensure one utterance, with the pause bridged and the hiss ignored.
	if len(starts) != 1 || len(ends) != 1 {
		t.Fatalf("starts %v, ends %v: want one segment", starts, ends)
	}
	// Ensure the onset is found within 60 ms of the speech (frame 50).
	if starts[0] < 50 || starts[0] > 53 {
		t.Fatalf("onset at frame %d, want 50..53", starts[0])
	}
	// Ensure the segment ends after 500 ms of silence and holds the pre-roll.
	if ends[0] != 50+40+8+20+24 {
		t.Fatalf("end at frame %d, want %d", ends[0], 50+40+8+20+24)
	}
	if got := len(segs[0]) / frame; got < 40+8+20+25 {
		t.Fatalf("segment has %d frames", got)
	}
}

func TestSegmenterMaxLength(t *testing.T) {
	t.Parallel()
	seg := NewSegmenter(SegmenterConfig{MaxFrames: 10})
	f := make([]int16, 320)
	var events []SegmentEvent
	for range 25 {
		if ev, _ := seg.Push(f, 1); ev != SegNone {
			events = append(events, ev)
		}
	}
	// Ensure endless speech is cut every MaxFrames and reopened.
	if len(events) < 4 || events[0] != SegStart || events[1] != SegEnd || events[2] != SegStart {
		t.Fatalf("events = %v", events)
	}
}

func TestWAV(t *testing.T) {
	t.Parallel()
	in := tone(1600, 16000, 440, 5000)
	out, rate, err := ParseWAV(EncodeWAV(in, 16000))
	if err != nil || rate != 16000 || len(out) != len(in) || out[100] != in[100] {
		t.Fatalf("round trip: %d samples at %d, %v", len(out), rate, err)
	}
	// Ensure a streamed WAV (unknown data size) reads to the end.
	b := EncodeWAV(in, 22050)
	copy(b[40:], []byte{0xff, 0xff, 0xff, 0xff})
	if out, rate, err := ParseWAV(b); err != nil || rate != 22050 || len(out) != len(in) {
		t.Fatalf("streamed: %d samples at %d, %v", len(out), rate, err)
	}
	for _, bad := range [][]byte{nil, []byte("RIFF....WAVE"), []byte("ID3\x04 mp3 data here")} {
		if _, _, err := ParseWAV(bad); !errors.Is(err, ErrBadWAV) {
			t.Fatalf("ParseWAV(%q) = %v, want ErrBadWAV", bad, err)
		}
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(EncodeWAV(tone(100, 8000, 300, 1000), 8000))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, rate, err := ParseWAV(b)
		if err == nil && (rate < 4000 || len(s) > len(b)/2) {
			t.Fatalf("rate %d, %d samples from %d bytes", rate, len(s), len(b))
		}
	})
}
