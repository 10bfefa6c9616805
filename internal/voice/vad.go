package voice

import "math"

// VAD scores frames of 16 kHz PCM16 audio: the probability that each holds speech.
type VAD interface {
	// FrameSize is the number of samples Speech takes per call.
	FrameSize() int
	// Speech scores one frame of FrameSize samples, in order (a VAD may carry state between frames).
	Speech(frame []int16) float32
	// Reset forgets the state of the stream (a new stream).
	Reset()
}

// EnergyVAD is the fallback VAD: a frame is speech when its level stands well above an adaptive noise
// floor and its zero-crossing rate is not that of hiss. Fine on clean audio (a headset, a phone line),
// weak in noise; Silero is the better choice when its runtime is installed.
type EnergyVAD struct {
	// MarginDB is how far above the noise floor speech must be (default 12 dB); MinDBFS is the quietest
	// level counted as speech at all (default -45 dBFS).
	MarginDB, MinDBFS float64
	floor             float64 // noise floor estimate, dBFS
	frames            int
}

// NewEnergyVAD returns an energy VAD with the default thresholds, 20 ms frames.
func NewEnergyVAD() *EnergyVAD { return &EnergyVAD{MarginDB: 12, MinDBFS: -45, floor: -60} }

// FrameSize is 20 ms at 16 kHz.
func (v *EnergyVAD) FrameSize() int { return SampleRate * FrameMs / 1000 }

// Reset forgets the noise floor.
func (v *EnergyVAD) Reset() { v.floor, v.frames = -60, 0 }

// Speech returns 1 for a speech frame, 0 otherwise, with a ramp over the last 6 dB below the threshold.
func (v *EnergyVAD) Speech(frame []int16) float32 {
	if len(frame) == 0 {
		return 0
	}
	var sum float64
	crossings := 0
	for i, s := range frame {
		f := float64(s)
		sum += f * f
		if i > 0 && (s >= 0) != (frame[i-1] >= 0) {
			crossings++
		}
	}
	db := 10 * math.Log10(sum/float64(len(frame))/(32768*32768)+1e-12)
	zcr := float64(crossings) / float64(len(frame))
	// The floor falls fast (silence after speech) and rises slowly (so speech does not become the floor).
	v.frames++
	switch {
	case db < v.floor:
		v.floor += (db - v.floor) * 0.5
	case v.frames < 10:
		v.floor += (db - v.floor) * 0.3 // learn the line's noise in the first 200 ms
	default:
		v.floor += (db - v.floor) * 0.005
	}
	threshold := math.Max(v.floor+v.MarginDB, v.MinDBFS)
	if zcr > 0.4 { // white noise crosses zero on every other sample; voiced speech far less often
		return 0
	}
	switch {
	case db >= threshold:
		return 1
	case db <= threshold-6:
		return 0
	}
	return float32((db - (threshold - 6)) / 6)
}
