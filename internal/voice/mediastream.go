package voice

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Twilio Media Streams protocol ("Call" 1.0.0): every frame is a JSON text message.

// Media Streams events.
const (
	TwilioConnected = "connected"
	TwilioStart     = "start"
	TwilioMedia     = "media"
	TwilioMark      = "mark"
	TwilioDTMF      = "dtmf"
	TwilioStop      = "stop"
)

// Limits of an inbound media message.
const (
	// MaxTwilioMessage bounds one JSON message (a 20 ms frame is ~300 bytes).
	MaxTwilioMessage = 16 << 10
	// MaxTwilioPayload bounds one decoded media payload: 200 ms of μ-law 8 kHz.
	MaxTwilioPayload = 1600
)

// ErrMalformed is returned for a Media Streams message that breaks the protocol.
var ErrMalformed = errors.New("malformed Media Streams message")

// TwilioMessage is one message from Twilio.
type TwilioMessage struct {
	Event          string           `json:"event"`
	SequenceNumber string           `json:"sequenceNumber"`
	StreamSID      string           `json:"streamSid"`
	Protocol       string           `json:"protocol,omitempty"`
	Start          *TwilioStartInfo `json:"start,omitempty"`
	Media          *struct {
		Track     string `json:"track"`
		Chunk     string `json:"chunk"`
		Timestamp string `json:"timestamp"`
		Payload   string `json:"payload"`
	} `json:"media,omitempty"`
	Mark *struct {
		Name string `json:"name"`
	} `json:"mark,omitempty"`
	DTMF *struct {
		Track string `json:"track"`
		Digit string `json:"digit"`
	} `json:"dtmf,omitempty"`
	Stop *struct {
		AccountSID string `json:"accountSid"`
		CallSID    string `json:"callSid"`
	} `json:"stop,omitempty"`

	// Audio is the decoded μ-law payload of a media message.
	Audio []byte `json:"-"`
}

// TwilioStartInfo is the start message's body.
type TwilioStartInfo struct {
	AccountSID       string            `json:"accountSid"`
	StreamSID        string            `json:"streamSid"`
	CallSID          string            `json:"callSid"`
	Tracks           []string          `json:"tracks"`
	CustomParameters map[string]string `json:"customParameters"`
	MediaFormat      struct {
		Encoding   string `json:"encoding"`
		SampleRate int    `json:"sampleRate"`
		Channels   int    `json:"channels"`
	} `json:"mediaFormat"`
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseTwilio parses and checks one message: a known event with the body it needs, integer strings where
// the protocol has them, base64 audio within MaxTwilioPayload. It returns ErrMalformed (wrapped, saying
// what is wrong) for anything else.
func ParseTwilio(b []byte) (*TwilioMessage, error) {
	if len(b) > MaxTwilioMessage {
		return nil, malformed("message of %d bytes (at most %d)", len(b), MaxTwilioMessage)
	}
	var m TwilioMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, malformed("not JSON: %v", err)
	}
	if m.SequenceNumber != "" {
		if _, err := strconv.ParseUint(m.SequenceNumber, 10, 63); err != nil {
			return nil, malformed("sequenceNumber %q is not an integer", clipStr(m.SequenceNumber, 20))
		}
	}
	switch m.Event {
	case TwilioConnected:
	case TwilioStart:
		if m.Start == nil || m.StreamSID == "" {
			return nil, malformed("start without start body or streamSid")
		}
		if f := m.Start.MediaFormat; f.Encoding != "audio/x-mulaw" || f.SampleRate != PhoneSampleRate || f.Channels != 1 {
			return nil, malformed("media format %s/%d/%d, want audio/x-mulaw/8000/1", clipStr(f.Encoding, 40), f.SampleRate, f.Channels)
		}
	case TwilioMedia:
		if m.Media == nil || m.StreamSID == "" {
			return nil, malformed("media without media body or streamSid")
		}
		for _, v := range []string{m.Media.Chunk, m.Media.Timestamp} {
			if v == "" {
				continue
			}
			if _, err := strconv.ParseUint(v, 10, 63); err != nil {
				return nil, malformed("chunk/timestamp %q is not an integer", clipStr(v, 20))
			}
		}
		audio, err := base64.StdEncoding.DecodeString(m.Media.Payload)
		if err != nil {
			return nil, malformed("media payload is not base64")
		}
		if len(audio) == 0 || len(audio) > MaxTwilioPayload {
			return nil, malformed("media payload of %d bytes (want 160: 20 ms of μ-law 8 kHz; at most %d)", len(audio), MaxTwilioPayload)
		}
		m.Audio = audio
	case TwilioMark:
		if m.Mark == nil || m.StreamSID == "" {
			return nil, malformed("mark without mark body or streamSid")
		}
	case TwilioDTMF:
		if m.DTMF == nil || len(m.DTMF.Digit) != 1 {
			return nil, malformed("dtmf without one digit")
		}
	case TwilioStop:
		if m.StreamSID == "" {
			return nil, malformed("stop without streamSid")
		}
	default:
		return nil, malformed("unknown event %q", clipStr(m.Event, 40))
	}
	return &m, nil
}

func clipStr(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TwilioMediaOut is the media message carrying μ-law audio to Twilio.
func TwilioMediaOut(streamSID string, ulaw []byte) []byte {
	b := make([]byte, 0, 96+base64.StdEncoding.EncodedLen(len(ulaw)))
	b = append(b, `{"event":"media","streamSid":`...)
	b = strconv.AppendQuote(b, streamSID)
	b = append(b, `,"media":{"payload":"`...)
	b = base64.StdEncoding.AppendEncode(b, ulaw)
	return append(b, `"}}`...)
}

// TwilioMarkOut asks Twilio to echo name once the audio sent before it has played.
func TwilioMarkOut(streamSID, name string) []byte {
	b, _ := json.Marshal(map[string]any{"event": TwilioMark, "streamSid": streamSID, "mark": map[string]string{"name": name}})
	return b
}

// TwilioClearOut makes Twilio drop the audio it has queued (barge-in).
func TwilioClearOut(streamSID string) []byte {
	b, _ := json.Marshal(map[string]string{"event": "clear", "streamSid": streamSID})
	return b
}
