package voice

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

// pipeConn is an in-memory WebSocket: the test writes what the far end sends and reads what IT0 sends.
type pipeConn struct {
	in     chan frame
	out    chan frame
	closed chan CloseError
}

type frame struct {
	text bool
	data []byte
}

func newPipe() *pipeConn {
	return &pipeConn{in: make(chan frame, 64), out: make(chan frame, 4096), closed: make(chan CloseError, 1)}
}

func (p *pipeConn) Read(ctx context.Context) (bool, []byte, error) {
	select {
	case f, ok := <-p.in:
		if !ok {
			return false, nil, errors.New("EOF")
		}
		return f.text, f.data, nil
	case <-ctx.Done():
		return false, nil, ctx.Err()
	}
}

func (p *pipeConn) Write(ctx context.Context, text bool, b []byte) error {
	select {
	case p.out <- frame{text, append([]byte(nil), b...)}:
	default: // nobody reads: drop, like a full socket buffer the test does not care about
	}
	return nil
}

func (p *pipeConn) Close(code int, reason string) error {
	select {
	case p.closed <- CloseError{Code: code, Reason: reason}:
	default:
	}
	return nil
}

func (p *pipeConn) send(v any) {
	b, _ := json.Marshal(v)
	p.in <- frame{text: true, data: b}
}

// fakeAgent answers the approval lookups of an escalation call; other methods are unused here.
type fakeAgent struct {
	Agent
	approval *approval.Approval
}

func (f fakeAgent) Approval(context.Context, string) (*approval.Approval, error) {
	return f.approval, nil
}
func (f fakeAgent) Session(context.Context, string) (*agent.Session, error) {
	return &agent.Session{ID: f.approval.SessionID, Title: "disk cleanup"}, nil
}
func (f fakeAgent) Note(_ context.Context, _ string, e agent.Event) agent.Event { return e }

func newTestService(t *testing.T, max int) *Service {
	t.Helper()
	a := &approval.Approval{ID: "ap1", SessionID: "s1", Command: "rm -rf /var/log/old", RiskLevel: 1, Status: approval.Pending,
		ToolInput: json.RawMessage(`{"server":"web-1"}`)}
	s, err := New(Config{STT: lenSTT{text: func([]int16) (string, error) { return "", nil }}, TTS: &toneTTS{}, Secret: []byte("0123456789abcdef0123"),
		PublicURL: "https://it0.example", MaxStreams: max, Frame: time.Millisecond, SilenceTimeout: time.Hour}, fakeAgent{approval: a}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startMsg(params map[string]string) map[string]any {
	return map[string]any{"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": map[string]any{"streamSid": "MZ1", "callSid": "CA1",
		"customParameters": params, "mediaFormat": map[string]any{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
}

func media(sid, payload string) map[string]any {
	return map[string]any{"event": "media", "streamSid": sid, "media": map[string]string{"track": "inbound", "payload": payload}}
}

func TestServeTwilioBadInput(t *testing.T) {
	t.Parallel()
	ctx := tenant.WithID(context.Background(), "t1")
	s := newTestService(t, 10)
	good := func() map[string]string {
		u, p, err := s.PrepareCall(ctx, "ap1", "+8613800001111", "en")
		if err != nil || u != "wss://it0.example/api/v1/twilio/media" {
			t.Fatalf("PrepareCall = %s, %v", u, err)
		}
		return p
	}
	silence := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\xff", 160)))
	for _, tc := range []struct {
		name string
		code int
		want string
		play func(p *pipeConn)
	}{
		{"Binary", CloseUnsupported, "JSON text frames", func(p *pipeConn) { p.in <- frame{data: []byte{1, 2}} }},
		{"MediaBeforeStart", ClosePolicy, "out of order", func(p *pipeConn) { p.send(media("MZ1", silence)) }},
		{"NoToken", ClosePolicy, "stream token", func(p *pipeConn) { p.send(startMsg(map[string]string{"voice_session": good()["voice_session"]})) }},
		{"ForgedToken", ClosePolicy, "stream token", func(p *pipeConn) {
			params := good()
			params["token"] = params["token"][:len(params["token"])-2] + "AA"
			p.send(startMsg(params))
		}},
		{"OtherSession", ClosePolicy, "stream token", func(p *pipeConn) {
			params := good()
			params["voice_session"] = "8d2c1a10-0000-4000-8000-000000000000"
			p.send(startMsg(params))
		}},
		{"UnknownStreamSid", ClosePolicy, "unknown streamSid", func(p *pipeConn) {
			p.send(startMsg(good()))
			p.send(media("MZ2", silence))
		}},
		{"BadBase64", ClosePolicy, "not base64", func(p *pipeConn) {
			p.send(startMsg(good()))
			p.send(media("MZ1", "%%%"))
		}},
		{"WrongFrameSize", ClosePolicy, "want 160", func(p *pipeConn) {
			p.send(startMsg(good()))
			p.send(media("MZ1", base64.StdEncoding.EncodeToString(make([]byte, 5000))))
		}},
		{"SecondStart", ClosePolicy, "out of order", func(p *pipeConn) {
			p.send(startMsg(good()))
			p.send(startMsg(good()))
		}},
		{"Hangup", CloseNormal, "", func(p *pipeConn) {
			p.send(startMsg(good()))
			close(p.in) // the caller went away
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPipe()
			done := make(chan struct{})
			go func() { s.ServeTwilio(ctx, p); close(done) }()
			tc.play(p)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ServeTwilio did not end")
			}
			ce := <-p.closed
			if ce.Code != tc.code || !strings.Contains(ce.Reason, tc.want) {
				t.Fatalf("closed %d %q, want %d %q", ce.Code, ce.Reason, tc.code, tc.want)
			}
		})
	}
	t.Run("Replay", func(t *testing.T) {
		t.Parallel()
		// Ensure a token works once.
		params := good()
		for i, want := range []int{CloseNormal, ClosePolicy} {
			p := newPipe()
			p.send(startMsg(params))
			close(p.in)
			s.ServeTwilio(ctx, p)
			if ce := <-p.closed; ce.Code != want {
				t.Fatalf("use %d: closed %d %q", i+1, ce.Code, ce.Reason)
			}
		}
	})
}

func TestStreamLimit(t *testing.T) {
	t.Parallel()
	ctx := tenant.WithID(context.Background(), "t1")
	s := newTestService(t, 1)
	_, params, err := s.PrepareCall(ctx, "ap1", "+1", "en")
	if err != nil {
		t.Fatal(err)
	}
	p1 := newPipe()
	p1.send(startMsg(params))
	go s.ServeTwilio(ctx, p1)
	// Wait until the first stream speaks: it holds the tenant's only slot.
	for f := range p1.out {
		if strings.Contains(string(f.data), `"media"`) {
			break
		}
	}
	_, params2, _ := s.PrepareCall(ctx, "ap1", "+1", "en")
	p2 := newPipe()
	p2.send(startMsg(params2))
	s.ServeTwilio(ctx, p2)
	if ce := <-p2.closed; ce.Code != CloseTryLater {
		t.Fatalf("second stream closed %d %q, want %d", ce.Code, ce.Reason, CloseTryLater)
	}
	close(p1.in)
	if ce := <-p1.closed; ce.Code != CloseNormal {
		t.Fatalf("first stream closed %d %q", ce.Code, ce.Reason)
	}
	vs, err := s.Session(ctx, params["voice_session"])
	if err != nil || vs.State != SessionEnded || vs.Outcome != "no_answer" || len(vs.Turns) == 0 || !strings.HasPrefix(vs.Turns[0].Text, "Hello") || !vs.Turns[0].Interrupted {
		t.Fatalf("session = %+v, %v", vs, err)
	}
	// Ensure another tenant cannot read it.
	if _, err := s.Session(tenant.WithID(context.Background(), "t2"), params["voice_session"]); err == nil {
		t.Fatal("another tenant read the session")
	}
}

func TestServeAppBadInput(t *testing.T) {
	t.Parallel()
	ctx := tenant.WithID(context.Background(), "t1")
	s := newTestService(t, 10)
	for _, tc := range []struct {
		name string
		code int
		want string
		in   []frame
	}{
		{"OddBytes", CloseUnsupported, "odd byte count", []frame{{data: []byte{1, 2, 3}}}},
		{"HugeFrame", CloseTooBig, "20–32 ms", []frame{{data: make([]byte, MaxAppFrame+2)}}},
		{"Stop", CloseNormal, "", []frame{{data: make([]byte, 640)}, {text: true, data: []byte(`{"type":"stop"}`)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vs, err := s.CreateSession(ctx, "s1", "en")
			if err != nil {
				t.Fatal(err)
			}
			p := newPipe()
			for _, f := range tc.in {
				p.in <- f
			}
			s.ServeApp(ctx, p, vs.ID)
			if ce := <-p.closed; ce.Code != tc.code || !strings.Contains(ce.Reason, tc.want) {
				t.Fatalf("closed %d %q, want %d %q", ce.Code, ce.Reason, tc.code, tc.want)
			}
		})
	}
	t.Run("BadControl", func(t *testing.T) {
		t.Parallel()
		// Ensure text that is not a control message gets an error frame, not a closed stream.
		vs, _ := s.CreateSession(ctx, "s1", "en")
		p := newPipe()
		p.in <- frame{text: true, data: []byte("hello")}
		p.in <- frame{text: true, data: []byte(`{"type":"dance"}`)}
		p.in <- frame{text: true, data: []byte(`{"type":"stop"}`)}
		s.ServeApp(ctx, p, vs.ID)
		var errs int
		for len(p.out) > 0 {
			if f := <-p.out; f.text && strings.Contains(string(f.data), `"bad_control"`) {
				errs++
			}
		}
		if errs != 2 {
			t.Fatalf("%d error frames, want 2", errs)
		}
		// Ensure a used voice session cannot be streamed again.
		p = newPipe()
		s.ServeApp(ctx, p, vs.ID)
		if ce := <-p.closed; ce.Code != ClosePolicy {
			t.Fatalf("second stream closed %d %q", ce.Code, ce.Reason)
		}
	})
}
