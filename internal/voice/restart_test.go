package voice_test

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/voice"
)

// restartAgent answers what an escalation call and an app session look up; the rest is unused here.
type restartAgent struct {
	voice.Agent
	approval *approval.Approval
}

func (f restartAgent) Approval(context.Context, string) (*approval.Approval, error) {
	return f.approval, nil
}
func (f restartAgent) Session(_ context.Context, id string) (*agent.Session, error) {
	return &agent.Session{ID: id, Title: "disk cleanup"}, nil
}
func (f restartAgent) Note(_ context.Context, _ string, e agent.Event) agent.Event { return e }

// beep speaks every sentence as 100 ms of tone; deaf hears nothing.
type beep struct{}

func (beep) Synthesize(context.Context, string, string) ([]int16, error) {
	out := make([]int16, voice.SampleRate/10)
	for i := range out {
		out[i] = int16(3000 * math.Sin(float64(i)/8))
	}
	return out, nil
}

type deaf struct{}

func (deaf) Transcribe(context.Context, []int16, string) (string, error) { return "", nil }

// pipe is a Media Streams WebSocket as the test plays the far end of it.
type pipe struct {
	in     chan []byte
	out    chan []byte
	closed chan string
}

func newPipe() *pipe {
	return &pipe{in: make(chan []byte, 16), out: make(chan []byte, 1024), closed: make(chan string, 1)}
}

func (p *pipe) Read(ctx context.Context) (bool, []byte, error) {
	select {
	case b := <-p.in:
		return true, b, nil
	case <-ctx.Done():
		return false, nil, ctx.Err()
	}
}

func (p *pipe) Write(_ context.Context, _ bool, b []byte) error {
	select {
	case p.out <- append([]byte(nil), b...):
	default:
	}
	return nil
}

func (p *pipe) Close(code int, reason string) error {
	select {
	case p.closed <- reason:
	default:
	}
	return nil
}

func (p *pipe) send(v any) {
	b, _ := json.Marshal(v)
	p.in <- b
}

// call plays a call's stream against svc: connected, start with params, then once the agent speaks, the
// hang-up (stop). It returns the reason the gateway closed with.
func call(t *testing.T, svc *voice.Service, params map[string]string, hangUp bool) string {
	t.Helper()
	p := newPipe()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { svc.ServeTwilio(ctx, p); close(done) }()
	p.send(map[string]any{"event": "connected", "protocol": "Call", "version": "1.0.0"})
	p.send(map[string]any{"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": map[string]any{"streamSid": "MZ1",
		"callSid": "CA1", "customParameters": params, "mediaFormat": map[string]any{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
	if hangUp {
		for spoke := false; !spoke; {
			select {
			case b := <-p.out:
				spoke = strings.Contains(string(b), `"event":"media"`)
			case <-ctx.Done():
				t.Fatal("the agent never spoke")
			}
		}
		p.send(map[string]any{"event": "stop", "sequenceNumber": "9", "streamSid": "MZ1"})
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the stream did not end")
	}
	return <-p.closed
}

// TestSessionsSurviveRestart: a call prepared for an escalation is answered by the next process, and every
// session's record (state, transport, turns, timings) is read after a restart; a stream cannot be replayed
// onto a session that already had one, even when the process that saw the token is gone.
func TestSessionsSurviveRestart(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	ten := storetest.NewTenant(t, db, "voicerestart")
	ctx := tenant.WithID(context.Background(), ten.ID)
	a := &approval.Approval{ID: "ap1", SessionID: "s1", Command: "rm -rf /var/log/old", RiskLevel: 1, Status: approval.Pending,
		ToolInput: json.RawMessage(`{"server":"web-1"}`)}
	// start is one process's gateway; each call is a restart.
	start := func() *voice.Service { return gateway(t, voice.Config{Store: db}, a, nil) }

	first := start()
	_, params, err := first.PrepareCall(ctx, "ap1", "+8613800001111", "en")
	if err != nil {
		t.Fatal(err)
	}
	vsID := params["voice_session"]
	app, err := first.CreateSession(ctx, "s1", "zh-CN")
	if err != nil {
		t.Fatal(err)
	}

	// Ensure the next process knows both sessions, and answers the prepared call.
	second := start()
	vs, err := second.Session(ctx, vsID)
	if err != nil || vs.State != voice.SessionWaiting || vs.Transport != voice.TransportTwilio || vs.ApprovalID != "ap1" || vs.AgentSessionID != "s1" {
		t.Fatalf("prepared call after a restart: %+v %v", vs, err)
	}
	if got, err := second.Session(ctx, app.ID); err != nil || got.Transport != voice.TransportApp || got.Language != "zh-CN" {
		t.Fatalf("app session after a restart: %+v %v", got, err)
	}
	if reason := call(t, second, params, true); reason != "" {
		t.Fatalf("call closed with %q", reason)
	}

	// Ensure the call's record is there after another restart: ended, what the agent said (cut by the hang-up).
	third := start()
	vs, err = third.Session(ctx, vsID)
	if err != nil {
		t.Fatal(err)
	}
	if vs.State != voice.SessionEnded || vs.Outcome != "no_answer" || vs.StartedAt == nil || vs.EndedAt == nil || len(vs.Turns) == 0 {
		t.Fatalf("ended call after a restart: %+v", vs)
	}
	if tu := vs.Turns[0]; tu.Role != "agent" || !strings.HasPrefix(tu.Text, "Hello") || tu.At.IsZero() {
		t.Fatalf("first turn %+v", tu)
	}
	// Ensure the same token, replayed to a process that never saw it used, finds the session taken.
	if reason := call(t, third, params, false); !strings.Contains(reason, "already had its stream") {
		t.Fatalf("replayed stream closed with %q", reason)
	}
	// Ensure another tenant cannot read it.
	other := storetest.NewTenant(t, db, "voiceother")
	if _, err := third.Session(tenant.WithID(context.Background(), other.ID), vsID); err == nil {
		t.Fatal("another tenant read the session")
	}
}

// TestInterruptedStreams: process A carries a call's stream when it dies. Another process ends the
// session as interrupted once A counts as stopped (not before, and A never ends its own live session
// this way); a second look changes nothing, and the end is audited.
func TestInterruptedStreams(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db := be.Open(t)
			ten := storetest.NewTenant(t, db, "voiceinterrupt")
			ctx := tenant.WithID(context.Background(), ten.ID)
			a := &approval.Approval{ID: "ap1", SessionID: "s1", Command: "systemctl restart nginx", RiskLevel: 2, Status: approval.Pending,
				ToolInput: json.RawMessage(`{"server":"web-1"}`)}
			var aAlive atomic.Bool
			aAlive.Store(true)
			audits := &auditSpy{}
			start := func(runner string) *voice.Service {
				return gateway(t, voice.Config{Store: db, Runner: runner,
					Alive: func(_ context.Context, r string) (bool, error) { return r == "A" && aAlive.Load(), nil }}, a, audits)
			}
			procA, procB := start("A"), start("B")
			_, params, err := procA.PrepareCall(ctx, "ap1", "+8613800001111", "en")
			if err != nil {
				t.Fatal(err)
			}
			vsID := params["voice_session"]
			// A's stream starts and stays open: A "dies" with it (its stream is never ended).
			p := newPipe()
			sctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			t.Cleanup(func() { cancel(); <-done })
			go func() { procA.ServeTwilio(sctx, p); close(done) }()
			p.send(map[string]any{"event": "connected", "protocol": "Call", "version": "1.0.0"})
			p.send(map[string]any{"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": map[string]any{"streamSid": "MZ1",
				"callSid": "CA1", "customParameters": params, "mediaFormat": map[string]any{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
			for spoke := false; !spoke; { // the stream is up: the agent speaks
				spoke = strings.Contains(string(<-p.out), `"event":"media"`)
			}
			if vs, err := db.VoiceSessionGet(ctx, vsID); err != nil || vs.State != voice.SessionActive || vs.Runner != "A" {
				t.Fatalf("the call's record while A carries it: %+v %v", vs, err)
			}
			for name, s := range map[string]*voice.Service{"A itself": procA, "B while A is alive": procB} {
				if n, err := s.InterruptedStreams(ctx); err != nil || n != 0 {
					t.Fatalf("%s ended %d sessions: %v", name, n, err)
				}
			}
			aAlive.Store(false)
			if n, err := procB.InterruptedStreams(ctx); err != nil || n != 1 {
				t.Fatalf("B ended %d sessions of the stopped A: %v", n, err)
			}
			if n, err := procB.InterruptedStreams(ctx); err != nil || n != 0 {
				t.Fatalf("a second look ended %d more: %v", n, err)
			}
			vs, err := db.VoiceSessionGet(ctx, vsID)
			if err != nil || vs.State != voice.SessionEnded || !strings.HasPrefix(vs.EndReason, "interrupted") || vs.EndedAt == nil {
				t.Fatalf("the call's record after A stopped: %+v %v", vs, err)
			}
			if got := audits.actions(); !slices.Contains(got, "voice.session_ended") {
				t.Errorf("audited %v, want voice.session_ended", got)
			}
		})
	}
}

// gateway is one process's voice gateway on cfg's store (and runner), speaking in beeps, hearing nothing,
// answering about approval a; al, when set, receives its audit records.
func gateway(t *testing.T, cfg voice.Config, a *approval.Approval, al voice.AuditLog) *voice.Service {
	t.Helper()
	cfg.STT, cfg.TTS, cfg.Secret, cfg.PublicURL = deaf{}, beep{}, []byte("0123456789abcdef0123"), "https://it0.example"
	cfg.Frame, cfg.SilenceTimeout = time.Millisecond, time.Hour
	s, err := voice.New(cfg, restartAgent{approval: a}, nil, nil, al)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// auditSpy keeps the actions it is asked to record.
type auditSpy struct {
	mu   sync.Mutex
	list []string
}

func (a *auditSpy) Record(_ context.Context, r audit.Record) (*audit.Entry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, r.Action)
	return &audit.Entry{}, nil
}

func (a *auditSpy) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.list)
}
