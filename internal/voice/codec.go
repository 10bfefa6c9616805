// Package voice is IT0's voice gateway: the agent speaks and listens, in the console (PCM16 16 kHz over a
// WebSocket) and on the phone (Twilio Media Streams, μ-law 8 kHz). One pipeline serves both transports:
// VAD → segmenter → STT → the agent (or an escalation's intent step) → TTS → paced audio out, with
// barge-in. Speech engines are behind the STT and TTS interfaces; their adapters live in subpackages
// (openai, espeak, sphinx).
package voice

import (
	"encoding/binary"
	"errors"
)

// Audio formats of the pipeline: everything inside runs at 16 kHz mono PCM16; the phone is μ-law 8 kHz.
const (
	SampleRate      = 16000
	PhoneSampleRate = 8000
	// FrameMs is the length of one paced output frame (Twilio's and the app's chunk).
	FrameMs = 20
)

// ErrOddPCM is returned for PCM16 bytes of odd length (a sample cut in half).
var ErrOddPCM = errors.New("PCM16 data has an odd number of bytes")

// mulawTable maps each μ-law byte to its linear PCM16 value (ITU-T G.711).
var mulawTable = func() (t [256]int16) {
	for i := range t {
		u := ^byte(i)
		mag := ((int(u&0x0f) << 3) + 0x84) << ((u & 0x70) >> 4)
		v := mag - 0x84
		if u&0x80 != 0 {
			v = -v
		}
		t[i] = int16(v)
	}
	return t
}()

// MulawDecode appends the linear samples of μ-law bytes src to dst.
func MulawDecode(dst []int16, src []byte) []int16 {
	for _, b := range src {
		dst = append(dst, mulawTable[b])
	}
	return dst
}

// MulawEncode appends the μ-law bytes of linear samples src to dst (G.711, with the usual 0x84 bias and
// clipping at 32635).
func MulawEncode(dst []byte, src []int16) []byte {
	for _, s := range src {
		dst = append(dst, mulaw(s))
	}
	return dst
}

func mulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := byte(0)
	if v < 0 {
		v, sign = -v, 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := byte(7)
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := byte(v>>(exp+3)) & 0x0f
	return ^(sign | exp<<4 | mant)
}

// PCMFromBytes appends the samples of little-endian PCM16 bytes b to dst; ErrOddPCM for a cut sample.
func PCMFromBytes(dst []int16, b []byte) ([]int16, error) {
	if len(b)%2 != 0 {
		return dst, ErrOddPCM
	}
	for i := 0; i < len(b); i += 2 {
		dst = append(dst, int16(binary.LittleEndian.Uint16(b[i:])))
	}
	return dst, nil
}

// PCMToBytes appends samples as little-endian PCM16 bytes to dst.
func PCMToBytes(dst []byte, samples []int16) []byte {
	for _, s := range samples {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(s))
	}
	return dst
}
