package voice

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadWAV is returned for audio that is not a PCM16 WAV file the gateway can read.
var ErrBadWAV = errors.New("not a PCM16 WAV file")

// EncodeWAV wraps mono PCM16 samples at rate in a WAV header (what STT servers take as a file).
func EncodeWAV(samples []int16, rate int) []byte {
	n := len(samples) * 2
	b := make([]byte, 0, 44+n)
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(36+n))
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1) // PCM
	b = binary.LittleEndian.AppendUint16(b, 1) // mono
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*2))
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	return PCMToBytes(b, samples)
}

// ParseWAV reads a PCM16 WAV file (mono or stereo, mixed down) and returns its samples and rate. A data
// chunk whose size is unknown (0 or 0xFFFFFFFF, as streaming servers and espeak-ng write) runs to the end.
func ParseWAV(b []byte) ([]int16, int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("%w: no RIFF/WAVE header", ErrBadWAV)
	}
	var rate, channels int
	fmtSeen := false
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int64(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8:]
		switch id {
		case "fmt ":
			if size < 16 || int64(len(body)) < 16 {
				return nil, 0, fmt.Errorf("%w: short fmt chunk", ErrBadWAV)
			}
			format, bits := binary.LittleEndian.Uint16(body), binary.LittleEndian.Uint16(body[14:])
			channels, rate = int(binary.LittleEndian.Uint16(body[2:])), int(binary.LittleEndian.Uint32(body[4:]))
			if (format != 1 && format != 0xFFFE) || bits != 16 || channels < 1 || channels > 2 || rate < 4000 || rate > 96000 {
				return nil, 0, fmt.Errorf("%w: format %d, %d bits, %d channels, %d Hz (want PCM 16-bit mono or stereo)", ErrBadWAV, format, bits, channels, rate)
			}
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return nil, 0, fmt.Errorf("%w: data before fmt", ErrBadWAV)
			}
			if size == 0 || size == 0xFFFFFFFF || size > int64(len(body)) {
				size = int64(len(body))
			}
			data := body[:size&^1]
			if channels == 1 {
				s, err := PCMFromBytes(make([]int16, 0, len(data)/2), data)
				return s, rate, err
			}
			out := make([]int16, 0, len(data)/4)
			for i := 0; i+4 <= len(data); i += 4 {
				l, r := int16(binary.LittleEndian.Uint16(data[i:])), int16(binary.LittleEndian.Uint16(data[i+2:]))
				out = append(out, int16((int32(l)+int32(r))/2))
			}
			return out, rate, nil
		}
		if size > int64(len(body)) {
			break
		}
		p += 8 + int(size) + int(size&1)
	}
	return nil, 0, fmt.Errorf("%w: no data chunk", ErrBadWAV)
}
