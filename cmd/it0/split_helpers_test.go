package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/voice/voicetest"
)

// deployment is IT0 as the end-to-end flow sees it: the process a client talks to (api), the one that
// runs agent sessions (agent), and every process by the targets it runs.
type deployment struct {
	env   []string
	api   *child
	agent *child
	voice *child
	procs map[string]*child // by target ("all" in single-process mode)
}

// splitTargets are the six processes of a split deployment, api first: it bootstraps the admin alone.
var splitTargets = []string{"api", "agent", "ops", "monitor", "comm", "voice"}

// startSingle starts one `it0 serve` running every target on PostgreSQL and Redis.
func startSingle(t *testing.T, env ...string) *deployment {
	t.Helper()
	rs := bustest.StartRedis(t)
	env = backendEnv(t, "postgres", append(env, "IT0_BOOTSTRAP_ADMIN_PASSWORD=first-password", "IT0_LOG_LEVEL=info", "IT0_REDIS_URL="+rs.URL())...)
	c := startServe(t, env, "--data-dir", t.TempDir())
	d := &deployment{env: env, api: c, agent: c, voice: c, procs: map[string]*child{"all": c}}
	d.logOnFailure(t)
	return d
}

// startSplit starts the six processes of a split deployment on one PostgreSQL database and one Redis.
func startSplit(t *testing.T, env ...string) *deployment {
	t.Helper()
	rs := bustest.StartRedis(t)
	env = backendEnv(t, "postgres", append(env, "IT0_BOOTSTRAP_ADMIN_PASSWORD=first-password", "IT0_LOG_LEVEL=info", "IT0_REDIS_URL="+rs.URL())...)
	d := &deployment{env: env, procs: map[string]*child{}}
	for _, target := range splitTargets {
		d.procs[target] = startServe(t, env, "--data-dir", t.TempDir(), "--target", target)
	}
	d.api, d.agent, d.voice = d.procs["api"], d.procs["agent"], d.procs["voice"]
	d.logOnFailure(t)
	return d
}

func (d *deployment) logOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			for name, p := range d.procs {
				t.Logf("process %s log:\n%s", name, p.out.String())
			}
		}
	})
}

var (
	replicaRE = regexp.MustCompile(`"msg":"listening".*"replica":"([^"]+)"`)
	kindsRE   = regexp.MustCompile(`"msg":"job runner started","kinds":"([^"]*)"`)
)

// replica is the replica name process c logged when it started listening.
func replica(t *testing.T, c *child) string {
	t.Helper()
	m := replicaRE.FindStringSubmatch(c.out.String())
	if m == nil {
		t.Fatalf("no replica name in the log:\n%s", c.out.String())
	}
	return m[1]
}

// jobKinds are the job kinds process c's runner claims ("" when it started no runner).
func jobKinds(c *child) []string {
	m := kindsRE.FindStringSubmatch(c.out.String())
	if m == nil || m[1] == "" {
		return nil
	}
	return strings.Split(m[1], ",")
}

// mustOn calls process c and fails the test unless the status is want.
func mustOn(t *testing.T, c *child, want int, method, path, token string, body any) map[string]any {
	t.Helper()
	st, m := c.call(t, method, path, token, body)
	if st != want {
		t.Fatalf("%s %s: %d %v", method, path, st, m)
	}
	return m
}

// speechEnv configures every process's voice engines on the speech server at url (the energy VAD: no
// model files needed).
func speechEnv(url string) []string {
	return []string{"IT0_STT_BASE_URL=" + url, "IT0_STT_MODEL=whisper", "IT0_TTS_BASE_URL=" + url, "IT0_TTS_MODEL=kokoro",
		"IT0_TTS_VOICE_EN=af_heart", "IT0_TTS_VOICE_ZH=zf_xiaobei", "IT0_VAD=energy"}
}

// voiceTurn speaks one utterance on voice session vsID through process c's /ws/voice and returns what the
// gateway heard and what the agent answered, with the number of audio frames spoken back.
func voiceTurn(t *testing.T, c *child, tok, vsID string) (user, reply string, audio int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/ws/voice?voice_session=%s&token=%s", c.addr, vsID, tok), nil)
	if err != nil {
		t.Fatalf("dial /ws/voice: %v", err)
	}
	defer conn.CloseNow()
	user, reply, audio = voicetest.Turn(ctx, t, conn)
	conn.Write(ctx, websocket.MessageText, []byte(`{"type":"stop"}`))
	return user, reply, audio
}

// must calls the api process and fails the test unless the status is want.
func (d *deployment) must(t *testing.T, want int, method, path, token string, body any) map[string]any {
	t.Helper()
	st, m := d.api.call(t, method, path, token, body)
	if st != want {
		t.Fatalf("%s %s: %d %v", method, path, st, m)
	}
	return m
}

// Markers that steer the flow's model: a conversation with orderMarker plays orderSteps, one with
// hangMarker never gets an answer (the cancel test), any other plays mainSteps.
const (
	orderMarker = "ORDER-RUN"
	hangMarker  = "HANG-ME"
	// mainOutput is what the L0 command prints, and appears nowhere in the command itself: a request
	// carrying it proves the command's output reached the model.
	mainOutput = "split-output"
)

var (
	mainSteps = []agenttest.Step{
		{Text: "Looking first.", Server: "web-1", Command: `printf 'split-%s\n' output`},
		{Text: "Restarting nginx.", Server: "web-1", Command: "systemctl restart nginx"},
		{Text: "Done: looked and restarted nginx.", Server: "", Command: ""}}
	orderSteps = []agenttest.Step{
		{Text: "Checking the disk.", Server: "web-1", Command: "df -h"},
		{Text: "Done: the disk is fine.", Server: "", Command: ""}}
)

// flowModel is the Anthropic test server of the flow: it routes each conversation by its markers and keeps
// every request body.
type flowModel struct {
	srv  *httptest.Server
	hung chan struct{}

	mu     sync.Mutex
	bodies []string
}

func startFlowModel(t *testing.T, key string) *flowModel {
	t.Helper()
	proxy := func(steps []agenttest.Step) *httputil.ReverseProxy {
		u, _ := url.Parse(agenttest.AnthropicServer(t, key, steps).URL)
		return httputil.NewSingleHostReverseProxy(u)
	}
	main, order := proxy(mainSteps), proxy(orderSteps)
	m := &flowModel{hung: make(chan struct{}, 8)}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		m.bodies = append(m.bodies, string(body))
		m.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		switch {
		case bytes.Contains(body, []byte(hangMarker)):
			m.hung <- struct{}{}
			<-r.Context().Done() // until the run is cancelled
		case bytes.Contains(body, []byte(orderMarker)):
			order.ServeHTTP(w, r)
		default:
			main.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// saw reports whether a request to the model contained s.
func (m *flowModel) saw(s string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.bodies {
		if strings.Contains(b, s) {
			return true
		}
	}
	return false
}

// liveFollower reads a session's events from a WebSocket as they come.
type liveFollower struct {
	types chan string
	err   chan error
}

// followLive follows session sid on process c's /ws/agent, from its first event, and sends each event's
// type on types (in seq order; a gap or a repeat is an error) until the socket ends or ctx does.
func followLive(ctx context.Context, c *child, tok, sid string) *liveFollower {
	f := &liveFollower{types: make(chan string, 256), err: make(chan error, 1)}
	go func() {
		f.err <- func() error {
			conn, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/ws/agent?session=%s&after=0&token=%s", c.addr, sid, tok), nil)
			if err != nil {
				return err
			}
			defer conn.CloseNow()
			var seq int64
			for {
				_, b, err := conn.Read(ctx)
				if err != nil {
					return err
				}
				for _, line := range strings.Split(string(b), "\n") {
					var e wsEvent
					if err := json.Unmarshal([]byte(line), &e); err != nil {
						return fmt.Errorf("bad event line %q: %w", line, err)
					}
					if e.Seq != seq+1 {
						return fmt.Errorf("event %s has seq %d after %d", e.Type, e.Seq, seq)
					}
					seq = e.Seq
					f.types <- e.Type
				}
			}
		}()
	}()
	return f
}

// until waits for an event of type want and returns the types seen before it.
func (f *liveFollower) until(t *testing.T, want string, within time.Duration) []string {
	t.Helper()
	var seen []string
	deadline := time.After(within)
	for {
		select {
		case typ := <-f.types:
			if typ == want {
				return seen
			}
			seen = append(seen, typ)
		case err := <-f.err:
			t.Fatalf("follower ended waiting for %s (saw %v): %v", want, seen, err)
		case <-deadline:
			t.Fatalf("no %s event in %s (saw %v)", want, within, seen)
		}
	}
}

// addServer registers target as web-1 through the api process.
func (d *deployment) addServer(t *testing.T, tok string, target *sshtest.Server) string {
	t.Helper()
	cred := d.must(t, 201, "POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "key", "type": "ssh_key", "secret": target.UserKey.Reveal()})
	return d.must(t, 201, "POST", "/api/v1/inventory/servers", tok, map[string]any{"name": "web-1", "host": target.Addr, "port": target.Port,
		"ssh_user": target.User, "credential_id": cred["id"], "host_key": target.HostKey})["id"].(string)
}

// runnerOf is the replica named as the runner of session sid.
func (d *deployment) runnerOf(t *testing.T, tenantID, sid string) string {
	t.Helper()
	return strings.TrimSpace(psql(t, d.env, fmt.Sprintf(`SELECT runner FROM it0_t_%s.agent_sessions WHERE id = '%s'`, strings.ReplaceAll(tenantID, "-", "_"), sid)))
}
