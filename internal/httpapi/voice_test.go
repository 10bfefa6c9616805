package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/commtest"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/voice"
	"github.com/it0/it0/internal/voice/espeak"
	"github.com/it0/it0/internal/voice/silero/silerotest"
	"github.com/it0/it0/internal/voice/sphinx"
	"github.com/it0/it0/internal/voice/voicetest"
)

// voiceFixture is the comm fixture with the app's voice gateway on the offline engines (espeak-ng speaks,
// pocketsphinx listens, Silero hears), its public URL the bundle's own server.
type voiceFixture struct {
	*commFixture
}

func newVoiceFixture(t *testing.T) *voiceFixture {
	t.Helper()
	offlineSpeech(t)
	// The escalation calls hear with Silero (the story test below keeps the energy VAD).
	rt := silerotest.Open(t)
	f := newCommFixture(t, storetest.OpenSQLite, func(k *appKnobs) {
		k.env["IT0_STT"], k.env["IT0_TTS"] = "pocketsphinx", "espeak"
		k.publicSelf = true
		k.voice = AppVoice{Frame: 2 * time.Millisecond, SilenceTimeout: time.Second, NewVAD: func() voice.VAD { return silerotest.NewVAD(t, rt) }}
	})
	return &voiceFixture{commFixture: f}
}

// offlineSpeech skips the test when espeak-ng or pocketsphinx is missing (and fails it when CI=true):
// the app is configured with them (IT0_TTS=espeak, IT0_STT=pocketsphinx) and would refuse to start.
func offlineSpeech(t *testing.T) {
	t.Helper()
	_, err := espeak.New(espeak.Config{})
	if err == nil {
		var stt *sphinx.STT
		if stt, err = sphinx.New(sphinx.Config{}); err == nil {
			stt.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs espeak-ng and pocketsphinx: %v", err)
		}
		t.Skipf("offline speech engines not installed: %v", err)
	}
}

// speechEnv configures the app's speech engines as OpenAI-compatible servers at base (speechServer).
func speechEnv(base string) map[string]string {
	return map[string]string{"IT0_STT_BASE_URL": base, "IT0_STT_MODEL": "whisper", "IT0_TTS_BASE_URL": base, "IT0_TTS_MODEL": "kokoro",
		"IT0_TTS_VOICE_EN": "af_heart", "IT0_TTS_VOICE_ZH": "zf_xiaobei", "IT0_VAD": "energy"}
}

// call is the escalation's phone call, answered with said: the test moves the clock to the escalation's
// first step (the call to the primary, two minutes on), reads the Media Stream the app's TwiML connects to,
// and plays that stream as Twilio would (playCall).
func (vf *voiceFixture) call(t *testing.T, approvalID, said string) (vsID string, media int) {
	t.Helper()
	vf.now.Set(vf.now.Now().Add(2 * time.Minute))
	vf.due(t)
	calls := vf.prov.Sent(comm.ChannelPhone)
	if len(calls) != 1 || calls[0].To != primaryPhone {
		t.Fatalf("escalation call of %s: %+v", approvalID, calls)
	}
	var twiml struct {
		Stream struct {
			URL    string `xml:"url,attr"`
			Params []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"Parameter"`
		} `xml:"Connect>Stream"`
	}
	if err := xml.Unmarshal([]byte(calls[0].Body), &twiml); err != nil {
		t.Fatalf("call TwiML: %v\n%s", err, calls[0].Body)
	}
	params := map[string]string{}
	for _, p := range twiml.Stream.Params {
		params[p.Name] = p.Value
	}
	return playCall(t, twiml.Stream.URL, params, commtest.TwilioCallSID, said)
}

// phoneCall is a call of approvalID (tenant tid) to phone prepared by the voice gateway itself (no Twilio
// placed it), answered with said.
func phoneCall(t *testing.T, vs *voice.Service, tid, approvalID, phone, said string) (vsID string, media int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, params, err := vs.PrepareCall(tenant.WithID(ctx, tid), approvalID, phone, "en")
	if err != nil {
		t.Fatal(err)
	}
	return playCall(t, u, params, "CA1", said)
}

// playCall plays what a Twilio Media Stream at u would carry for call callSID answered with said:
// connected, start with the call's parameters, then (once the agent starts speaking) said as μ-law 8 kHz
// in paced 20 ms frames, then line silence until IT0 ends the stream. It echoes marks, as Twilio does once
// audio has played.
func playCall(t *testing.T, u string, params map[string]string, callSID, said string) (vsID string, media int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vsID = params["voice_session"]
	if !strings.HasPrefix(u, "ws://") || vsID == "" || params["token"] == "" {
		t.Fatalf("stream %s %v", u, params)
	}
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send := func(v any) {
		b, _ := json.Marshal(v)
		c.Write(ctx, websocket.MessageText, b) // after IT0 hangs up, writes fail: the test reads the close
	}
	var mu sync.Mutex
	send(map[string]any{"event": "connected", "protocol": "Call", "version": "1.0.0"})
	send(map[string]any{"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": map[string]any{"accountSid": "AC1", "streamSid": "MZ1",
		"callSid": callSID, "tracks": []string{"inbound"}, "customParameters": params,
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
				// Answer after 3 s of the agent's voice, past its greeting ("Hello, this is I T zero…"):
				// an earlier answer barges in (as it should) and cuts the greeting the test reads.
				if media >= 150 {
					once.Do(func() { close(speaking) })
				}
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
			return vsID, media
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
		{"yes approve", approval.Approved, "approved"},
		{"no reject", approval.Rejected, "rejected"},
		{"the weather is nice today", approval.Pending, "no_answer"},
	} {
		t.Run(strings.ReplaceAll(tc.said, " ", "_"), func(t *testing.T) {
			t.Parallel()
			vf := newVoiceFixture(t)
			sid, id := vf.escalate(t, "critical: standing order SO-test")
			vsID, media := vf.call(t, id, tc.said)
			if media == 0 {
				t.Fatal("no audio from the agent")
			}
			a, err := vf.approvals.Get(vf.ctx(), id)
			if err != nil {
				t.Fatal(err)
			}
			if a.Status != tc.status {
				t.Fatalf("approval %s, want %s", a.Status, tc.status)
			}
			if tc.status != approval.Pending && a.DecidedBy != vf.adminID {
				t.Fatalf("decided by %q, want the contact's user %s", a.DecidedBy, vf.adminID)
			}
			// Ensure a decided call is hung up (Twilio would go on to the keypad script), an undecided one not.
			if hangs := vf.prov.Hangups(); tc.status != approval.Pending && (len(hangs) != 1 || hangs[0] != commtest.TwilioCallSID) ||
				tc.status == approval.Pending && len(hangs) != 0 {
				t.Fatalf("hang-ups %v", hangs)
			}
			// Ensure the voice session says how it went, with both sides' lines.
			r := vf.do("GET", "/api/v1/voice/sessions/"+vsID, vf.tok, nil)
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
			if tc.status != approval.Pending && !strings.Contains(ev.raw, `"voice_user"`) {
				t.Fatalf("no voice_user event: %s", ev.raw)
			}
			// Another tenant cannot see the session.
			_, other := vf.newTenant("other")
			if r := vf.do("GET", "/api/v1/voice/sessions/"+vsID, other, nil); r.status != 404 {
				t.Fatalf("other tenant: %d", r.status)
			}
		})
	}
}

// TestVoiceConsole: the console's voice stream on an agent session — the utterance becomes a user turn of
// the session, the agent's reply is spoken back, both are session events and audited; bad requests are
// refused before the upgrade.
func TestVoiceConsole(t *testing.T) {
	t.Parallel()
	base := voicetest.SpeechServer(t, "check the disk please")
	b := setupAppWith(t, storetest.OpenSQLite, appKnobs{engines: []agent.Engine{&scriptEngine{name: agent.EngineClaudeAPI}},
		env: speechEnv(base), voice: AppVoice{Frame: 2 * time.Millisecond}})
	tid, tok := b.newTenant("voice")
	r := b.do("POST", "/api/v1/agent/tasks", tok, map[string]any{"prompt": "hello"})
	if r.status != 201 {
		t.Fatalf("task: %d %s", r.status, r.raw)
	}
	sid := r.body["session_id"].(string)
	// The first run ends at once (the script has no steps): wait for it, re-checking at each event.
	ag := b.agentSvc.Load()
	sub := ag.Hub().Subscribe(sid)
	for deadline := time.After(10 * time.Second); ; {
		if s, err := ag.Session(tenant.WithID(context.Background(), tid), sid); err != nil || s.Status != agent.StatusRunning {
			break
		}
		select {
		case <-sub.C:
		case <-time.After(20 * time.Millisecond): // the status change publishes no event of its own
		case <-deadline:
			t.Fatal("the first run did not end")
		}
	}
	ag.Hub().Unsubscribe(sub)
	for _, tc := range []struct {
		body any
		code int
	}{{map[string]any{}, 400}, {map[string]any{"session_id": sid, "locale": "fr"}, 400}, {map[string]any{"session_id": "nope"}, 404}} {
		if r := b.do("POST", "/api/v1/voice/sessions", tok, tc.body); r.status != tc.code {
			t.Fatalf("%v: %d %s", tc.body, r.status, r.raw)
		}
	}
	r = b.do("POST", "/api/v1/voice/sessions", tok, map[string]any{"session_id": sid, "locale": "en"})
	if r.status != 201 {
		t.Fatalf("voice session: %d %s", r.status, r.raw)
	}
	vsID := r.body["id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws := strings.Replace(b.http.URL, "http", "ws", 1) + "/ws/voice?voice_session=" + vsID + "&token=" + tok
	if _, _, err := websocket.Dial(ctx, strings.Replace(ws, vsID, "vs_nope", 1), nil); err == nil {
		t.Fatal("a socket for an unknown voice session was accepted")
	}
	c, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	user, reply, audio := voicetest.Turn(ctx, t, c)
	if user != "check the disk please" || reply != "All done." || audio == 0 {
		t.Fatalf("user %q, reply %q, %d audio frames", user, reply, audio)
	}
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"stop"}`))
	for {
		_, _, err := c.Read(ctx) // frames still on their way, then the close
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("close: %v", err)
			}
			break
		}
	}
	ev := b.do("GET", "/api/v1/agent/sessions/"+sid+"/events?after=0", tok, nil)
	for _, want := range []string{`"type":"voice_user","text":"check the disk please"`, `"type":"voice_agent","text":"All done."`} {
		if !strings.Contains(ev.raw, want) {
			t.Fatalf("events lack %s: %s", want, ev.raw)
		}
	}
	if r := b.do("GET", "/api/v1/voice/sessions/"+vsID, tok, nil); r.body["state"] != voice.SessionEnded || len(r.body["turns"].([]any)) != 2 {
		t.Fatalf("voice session: %s", r.raw)
	}
	if r := b.do("GET", "/api/v1/audit/logs?action=voice.voice_user", tok, nil); !strings.Contains(r.raw, "check the disk please") {
		t.Fatalf("audit: %s", r.raw)
	}
}

// TestVoiceEscalationStory: a standing order's run goes beyond its boundary (an L1 command, max level 0),
// the escalation calls the on-call admin, the agent speaks, "yes approve" is heard, and the command runs
// on a real sshd and the run completes.
func TestVoiceEscalationStory(t *testing.T) {
	t.Parallel()
	offlineSpeech(t)
	dir := t.TempDir()
	old := time.Now().Add(-10 * 24 * time.Hour)
	for _, name := range []string{"old.log", "fresh.log"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("x\n"), 0o644)
		if name == "old.log" {
			os.Chtimes(p, old, old)
		}
	}
	cleanup := "find " + dir + " -name '*.log' -mtime +7 -delete"
	eng := &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: map[string][]scriptStep{
		"standing order SO-": {{agent.ToolRunCommand, `{"server":"web-1","command":` + jsonString(cleanup) + `}`}},
	}}
	f := newOrderFixture(t, eng, func(k *appKnobs) {
		k.env = map[string]string{"IT0_STT": "pocketsphinx", "IT0_TTS": "espeak", "IT0_VAD": "energy"}
		k.publicSelf = true
		k.voice = AppVoice{Frame: 2 * time.Millisecond, SilenceTimeout: time.Second}
	})
	me := f.do("GET", "/api/v1/auth/me", f.tok, nil).body
	adminID := me["user"].(map[string]any)["id"].(string)
	tid := me["tenant"].(map[string]any)["id"].(string)
	if r := f.do("POST", "/api/v1/comm/contacts", f.tok, map[string]any{"name": "Li", "audience": "primary", "user_id": adminID,
		"phone": primaryPhone, "locale": "en"}); r.status != 201 {
		t.Fatalf("contact: %d %s", r.status, r.raw)
	}
	r := f.do("POST", "/api/v1/ops/standing-orders", f.tok, map[string]any{"name": "log cleanup",
		"trigger": map[string]string{"type": "manual"}, "targets": map[string]any{"server_ids": []string{"web-1"}},
		"agent_instructions": map[string]any{"prompt": "delete application logs older than 7 days", "max_risk_level": 0}})
	if r.status != 201 {
		t.Fatalf("order: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	if r := f.do("POST", "/api/v1/ops/standing-orders/"+id+"/run", f.tok, nil); r.status != 201 {
		t.Fatalf("run: %d %s", r.status, r.raw)
	}
	var approvalID string
	for deadline := time.Now().Add(20 * time.Second); approvalID == ""; {
		if items, _ := f.do("GET", "/api/v1/agent/approvals?status=pending", f.tok, nil).body["items"].([]any); len(items) > 0 {
			approvalID = items[0].(map[string]any)["id"].(string)
		} else if time.Now().After(deadline) {
			t.Fatal("no approval beyond the boundary")
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "old.log")); err != nil {
		t.Fatal("the command ran before the approval")
	}
	phoneCall(t, f.voice, tid, approvalID, primaryPhone, "yes approve")
	for deadline := time.Now().Add(30 * time.Second); ; {
		e := f.do("GET", "/api/v1/ops/standing-orders/"+id+"/executions?limit=1", f.tok, nil).body["items"].([]any)[0].(map[string]any)
		if e["status"] == ops.ExecCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution: %v", e)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "old.log")); err == nil {
		t.Fatal("old.log survived the approved cleanup")
	}
	if _, err := os.Stat(filepath.Join(dir, "fresh.log")); err != nil {
		t.Fatal("fresh.log was deleted")
	}
}
