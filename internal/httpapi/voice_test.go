package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/voice"
	"github.com/it0/it0/internal/voice/espeak"
	"github.com/it0/it0/internal/voice/sphinx"
)

// voiceFixture is the comm fixture with the voice gateway on the offline engines (espeak-ng speaks,
// pocketsphinx listens), served by its own API server whose public URL is itself.
type voiceFixture struct {
	*commFixture
	voice *voice.Service
	url   string
}

func newVoiceFixture(t *testing.T) *voiceFixture {
	t.Helper()
	tts, err := espeak.New(espeak.Config{})
	var stt *sphinx.STT
	if err == nil {
		stt, err = sphinx.New(sphinx.Config{})
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs espeak-ng and pocketsphinx: %v", err)
		}
		t.Skipf("offline speech engines not installed: %v", err)
	}
	t.Cleanup(func() { stt.Close() })
	f := newCommFixture(t, storetest.OpenSQLite)
	vf := &voiceFixture{commFixture: f}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	vs, err := voice.New(voice.Config{STT: stt, TTS: tts, Secret: testSecret, PublicURL: url, Logger: f.logger,
		Frame: 2 * time.Millisecond, SilenceTimeout: time.Second}, f.agentSvc.Load(), f.comm.cur.Load(), nil, f.audit)
	if err != nil {
		t.Fatal(err)
	}
	d := f.srv.Deps
	d.Registry, d.Voice = nil, vs
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: New(d).Handler()}}
	hs.Start()
	t.Cleanup(hs.Close)
	f.http = hs // the bundle's requests go to the server with voice
	vf.voice, vf.url = vs, url
	return vf
}

// call plays what a Twilio Media Stream would carry for a call answered with said: connected, start with
// the call's parameters, then (once the agent starts speaking) said as μ-law 8 kHz in paced 20 ms frames,
// then line silence until IT0 ends the stream. It echoes marks, as Twilio does once audio has played.
func (vf *voiceFixture) call(t *testing.T, approvalID, said string) (media, clears int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	u, params, err := vf.voice.PrepareCall(tenant.WithID(ctx, vf.tid), "vs_"+approvalID, approvalID, primaryPhone, "en")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "ws://") || params["voice_session"] != "vs_"+approvalID || params["token"] == "" {
		t.Fatalf("stream %s %v", u, params)
	}
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Errorf("write: %v", err)
		}
	}
	var mu sync.Mutex
	send(map[string]any{"event": "connected", "protocol": "Call", "version": "1.0.0"})
	send(map[string]any{"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": map[string]any{"accountSid": "AC1", "streamSid": "MZ1",
		"callSid": "CA1", "tracks": []string{"inbound"}, "customParameters": params,
		"mediaFormat": map[string]any{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
	speaking := make(chan struct{})
	closed := make(chan websocket.StatusCode, 1)
	go func() {
		once := sync.Once{}
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				closed <- websocket.CloseStatus(err)
				return
			}
			var m struct {
				Event string
				Mark  struct{ Name string }
			}
			json.Unmarshal(b, &m)
			mu.Lock()
			switch m.Event {
			case "media":
				media++
				once.Do(func() { close(speaking) })
			case "clear":
				clears++
			case "mark":
				send(map[string]any{"event": "mark", "streamSid": "MZ1", "mark": map[string]string{"name": m.Mark.Name}})
			}
			mu.Unlock()
		}
	}()
	select {
	case <-speaking:
	case <-ctx.Done():
		t.Fatal("the agent never spoke")
	}
	// What the person says, as the phone network carries it.
	tts, _ := espeak.New(espeak.Config{})
	pcm, err := tts.Synthesize(ctx, said, "en")
	if err != nil {
		t.Fatal(err)
	}
	ulaw := voice.MulawEncode(nil, voice.Resample(pcm, voice.SampleRate, voice.PhoneSampleRate))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	seq := 2
	for i := 0; ; i += 160 {
		frame := make([]byte, 160)
		for j := range frame {
			frame[j] = 0xff // μ-law silence
		}
		if i < len(ulaw) {
			copy(frame, ulaw[i:])
		}
		select {
		case code := <-closed:
			if code != websocket.StatusNormalClosure {
				t.Fatalf("stream closed with %v", code)
			}
			mu.Lock()
			defer mu.Unlock()
			return media, clears
		case <-ctx.Done():
			t.Fatal("the call never ended")
		case <-tick.C:
		}
		seq++
		send(map[string]any{"event": "media", "sequenceNumber": strconv.Itoa(seq), "streamSid": "MZ1",
			"media": map[string]string{"track": "inbound", "chunk": strconv.Itoa(seq), "timestamp": strconv.Itoa(i / 8), "payload": base64.StdEncoding.EncodeToString(frame)}})
	}
}

// TestVoiceEscalationCall: the escalation call's agent speaks first; the spoken answer, synthesised and
// sent as a Twilio Media Stream, is heard by pocketsphinx and decides the approval as the contact's user —
// or, when it is unrelated, decides nothing after asking once more.
func TestVoiceEscalationCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		said, status, outcome string
	}{
		{"yes approve", agent.ApprovalApproved, "approved"},
		{"no reject", agent.ApprovalRejected, "rejected"},
		{"the weather is nice today", agent.ApprovalPending, "no_answer"},
	} {
		t.Run(strings.ReplaceAll(tc.said, " ", "_"), func(t *testing.T) {
			t.Parallel()
			vf := newVoiceFixture(t)
			sid, id := vf.escalate(t, "critical: standing order SO-test")
			media, _ := vf.call(t, id, tc.said)
			if media == 0 {
				t.Fatal("no audio from the agent")
			}
			a, err := vf.agentSvc.Load().Approval(vf.ctx(), id)
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != tc.status {
				t.Fatalf("approval %s, want %s", a.Status, tc.status)
			}
			if tc.status != agent.ApprovalPending && a.DecidedBy != vf.adminID {
				t.Fatalf("decided by %q, want the contact's user %s", a.DecidedBy, vf.adminID)
			}
			// Ensure the voice session says how it went, with both sides' lines.
			r := vf.do("GET", "/api/v1/voice/sessions/vs_"+id, vf.tok, nil)
			if r.status != 200 || r.body["outcome"] != tc.outcome || r.body["state"] != voice.SessionEnded || r.body["transport"] != "twilio" {
				t.Fatalf("voice session: %d %s", r.status, r.raw)
			}
			turns := r.body["turns"].([]any)
			if first := turns[0].(map[string]any); first["role"] != "agent" || !strings.Contains(first["text"].(string), "I T zero") {
				t.Fatalf("first turn %v", first)
			}
			// Ensure the transcripts are session events of the run.
			ev := vf.do("GET", "/api/v1/agent/sessions/"+sid+"/events?after=0", vf.tok, nil)
			if !strings.Contains(ev.raw, `"voice_agent"`) {
				t.Fatalf("no voice_agent event: %s", ev.raw)
			}
			if tc.status != agent.ApprovalPending && !strings.Contains(ev.raw, `"voice_user"`) {
				t.Fatalf("no voice_user event: %s", ev.raw)
			}
			// Another tenant cannot see the session.
			_, other := vf.newTenant("other")
			if r := vf.do("GET", "/api/v1/voice/sessions/vs_"+id, other, nil); r.status != 404 {
				t.Fatalf("other tenant: %d", r.status)
			}
		})
	}
}
