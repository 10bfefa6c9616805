package voice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Conn is a WebSocket as the transports use it (the HTTP layer adapts its library to it).
type Conn interface {
	// Read returns the next message and whether it was a text frame.
	Read(ctx context.Context) (text bool, data []byte, err error)
	// Write sends one text or binary message.
	Write(ctx context.Context, text bool, data []byte) error
	// Close ends the stream with a WebSocket close code and a reason the far end can read.
	Close(code int, reason string) error
}

// WebSocket close codes the transports use.
const (
	CloseNormal      = 1000
	CloseUnsupported = 1003 // binary where text is expected, or the reverse
	ClosePolicy      = 1008 // bad token, protocol violation
	CloseTooBig      = 1009
	CloseInternal    = 1011
	CloseTryLater    = 1013 // the tenant's stream limit
)

// CloseError is why a transport closed its stream.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("stream closed (%d): %s", e.Code, e.Reason) }

// closeWith closes conn with err's code and reason (clipped to what a close frame holds).
func closeWith(conn Conn, err error) {
	var ce *CloseError
	switch {
	case err == nil, errors.Is(err, ErrHangup), errors.Is(err, errStreamEnded):
		conn.Close(CloseNormal, "")
	case errors.As(err, &ce):
		conn.Close(ce.Code, clipStr(ce.Reason, 120))
	case errors.Is(err, ErrSpeechFailed):
		conn.Close(CloseInternal, "speech synthesis unavailable")
	default:
		conn.Close(CloseInternal, clipStr(err.Error(), 120))
	}
}

// AudioWriteTimeout bounds one outbound audio write. The pacer sends every stream's frames from one
// goroutine, so a far end that stopped reading (its socket buffer full: many seconds of audio unread)
// must not hold the others up for long: its write fails, which ends its stream (the WebSocket closes on
// a write timeout). Not shorter: on a starved machine a healthy write can wait a few hundred ms for a CPU.
const AudioWriteTimeout = time.Second

// twilioOut is the Output of a Twilio stream: 16 kHz → 8 kHz → μ-law → media messages.
type twilioOut struct {
	ctx       context.Context
	conn      Conn
	streamSID string
	mu        sync.Mutex
	down      *Resampler
	pcm       []int16
	ulaw      []byte
}

func newTwilioOut(ctx context.Context, conn Conn, sid string) *twilioOut {
	return &twilioOut{ctx: ctx, conn: conn, streamSID: sid, down: NewResampler(SampleRate, PhoneSampleRate)}
}

func (o *twilioOut) Audio(frame []int16) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pcm = o.down.Process(o.pcm[:0], frame)
	o.ulaw = MulawEncode(o.ulaw[:0], o.pcm)
	if len(o.ulaw) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(o.ctx, AudioWriteTimeout)
	defer cancel()
	return o.conn.Write(ctx, true, TwilioMediaOut(o.streamSID, o.ulaw))
}

func (o *twilioOut) Clear() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conn.Write(o.ctx, true, TwilioClearOut(o.streamSID))
}

func (o *twilioOut) Mark(name string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conn.Write(o.ctx, true, TwilioMarkOut(o.streamSID, name))
}

func (o *twilioOut) Control(Control) error { return nil }

// appOut is the Output of the app transport: binary PCM16 16 kHz frames and JSON control frames.
type appOut struct {
	ctx  context.Context
	conn Conn
	mu   sync.Mutex
	buf  []byte
}

func (o *appOut) Audio(frame []int16) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = PCMToBytes(o.buf[:0], frame)
	ctx, cancel := context.WithTimeout(o.ctx, AudioWriteTimeout)
	defer cancel()
	return o.conn.Write(ctx, false, o.buf)
}

func (o *appOut) Clear() error { return o.Control(Control{Type: "interrupt"}) }

func (o *appOut) Mark(string) error { return nil }

func (o *appOut) Control(c Control) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conn.Write(o.ctx, true, b)
}

// StreamStart is what a stream's start message said, for the service to authorise.
type StreamStart struct {
	StreamSID, CallSID, AccountSID string
	Parameters                     map[string]string
}

// twilioHandshake reads up to the start message: connected (optional) then start. Anything else first
// is out of order.
func twilioHandshake(ctx context.Context, conn Conn) (*StreamStart, error) {
	for i := 0; i < 2; i++ {
		m, err := readTwilio(ctx, conn)
		if err != nil {
			return nil, err
		}
		switch m.Event {
		case TwilioConnected:
			continue
		case TwilioStart:
			return &StreamStart{StreamSID: m.StreamSID, CallSID: m.Start.CallSID, AccountSID: m.Start.AccountSID,
				Parameters: m.Start.CustomParameters}, nil
		default:
			return nil, &CloseError{Code: ClosePolicy, Reason: fmt.Sprintf("%q before start: out of order", m.Event)}
		}
	}
	return nil, &CloseError{Code: ClosePolicy, Reason: "no start message after connected"}
}

func readTwilio(ctx context.Context, conn Conn) (*TwilioMessage, error) {
	text, data, err := conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	if !text {
		return nil, &CloseError{Code: CloseUnsupported, Reason: "Media Streams messages are JSON text frames, not binary"}
	}
	m, err := ParseTwilio(data)
	if err != nil {
		return nil, &CloseError{Code: ClosePolicy, Reason: err.Error()}
	}
	return m, nil
}

// pumpTwilio feeds a started Twilio stream into c until stop, an error, or ctx's end. Media of another
// stream, or a second start, closes the stream.
func pumpTwilio(ctx context.Context, conn Conn, sid string, c *Conversation) error {
	up := NewResampler(PhoneSampleRate, SampleRate)
	var pcm8, pcm16 []int16
	for {
		m, err := readTwilio(ctx, conn)
		if err != nil {
			return err
		}
		if m.StreamSID != "" && m.StreamSID != sid {
			return &CloseError{Code: ClosePolicy, Reason: fmt.Sprintf("unknown streamSid %q", clipStr(m.StreamSID, 40))}
		}
		switch m.Event {
		case TwilioMedia:
			if m.Media.Track != "" && m.Media.Track != "inbound" {
				continue
			}
			pcm8 = MulawDecode(pcm8[:0], m.Audio)
			pcm16 = up.Process(pcm16[:0], pcm8)
			c.Feed(pcm16)
		case TwilioMark:
			c.Marked(m.Mark.Name)
		case TwilioStop:
			return nil
		case TwilioConnected, TwilioStart:
			return &CloseError{Code: ClosePolicy, Reason: fmt.Sprintf("%q after start: out of order", m.Event)}
		}
	}
}

// MaxAppFrame bounds one binary frame of the app transport: 200 ms of PCM16 16 kHz.
const MaxAppFrame = SampleRate * 2 / 5

// appControl is a control frame from the app.
type appControl struct {
	Type string `json:"type"` // stop ends the conversation; interrupt is a manual barge-in
}

// pumpApp feeds the app's binary PCM frames into c; text frames are control messages.
func pumpApp(ctx context.Context, conn Conn, c *Conversation, out *appOut) error {
	var pcm []int16
	for {
		text, data, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		if text {
			var ctl appControl
			if err := json.Unmarshal(data, &ctl); err != nil {
				out.Control(Control{Type: "error", Code: "bad_control", Message: "text frames are JSON control messages ({\"type\":\"stop\"}); audio goes in binary frames"})
				continue
			}
			switch ctl.Type {
			case "stop":
				return nil
			case "interrupt":
				c.interrupt()
			default:
				out.Control(Control{Type: "error", Code: "bad_control", Message: fmt.Sprintf("unknown control type %q (want stop or interrupt)", clipStr(ctl.Type, 40))})
			}
			continue
		}
		if len(data) > MaxAppFrame {
			return &CloseError{Code: CloseTooBig, Reason: fmt.Sprintf("audio frame of %d bytes: send 20–32 ms chunks (at most %d bytes)", len(data), MaxAppFrame)}
		}
		if pcm, err = PCMFromBytes(pcm[:0], data); err != nil {
			return &CloseError{Code: CloseUnsupported, Reason: "audio frames are PCM s16le 16 kHz mono: odd byte count"}
		}
		c.Feed(pcm)
	}
}
