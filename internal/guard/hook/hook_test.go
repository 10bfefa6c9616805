package hook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/guard/hook"
)

// event builds a real PreToolUse payload as Claude Code sends it.
func event(tool string, input map[string]any) string {
	b, _ := json.Marshal(map[string]any{
		"session_id":      "2f373806-6319-4319-bc84-c0b0f85c4628",
		"transcript_path": "/home/agent/.claude/projects/-srv-agent/2f373806.jsonl",
		"cwd":             "/srv/agent",
		"permission_mode": "default",
		"hook_event_name": "PreToolUse",
		"tool_name":       tool,
		"tool_input":      input,
		"tool_use_id":     "toolu_01ABC",
		"prompt_id":       "new-field-decoded-leniently",
	})
	return string(b)
}

func bash(cmd string) string {
	return event("Bash", map[string]any{"command": cmd, "description": "x"})
}

type bundle struct {
	cfg      hook.Config
	requests chan hook.Request
	headers  chan http.Header
}

// setup returns a Config pointing at a fake IT0 server that records each
// request and answers with respond.
func setup(t *testing.T, respond func(w http.ResponseWriter, req hook.Request)) *bundle {
	t.Helper()
	c, err := guard.Default()
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{requests: make(chan hook.Request, 4), headers: make(chan http.Header, 4)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != hook.Path {
			http.Error(w, "wrong route", http.StatusNotFound)
			return
		}
		var req hook.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		b.requests <- req
		b.headers <- r.Header.Clone()
		respond(w, req)
	}))
	t.Cleanup(srv.Close)
	b.cfg = hook.Config{Classifier: c, ServerURL: srv.URL + "/", Token: "tok-secret", SessionID: "it0-session-1", Client: srv.Client()}
	return b
}

func answer(body string, status int) func(http.ResponseWriter, hook.Request) {
	return func(w http.ResponseWriter, _ hook.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// run executes the hook and decodes its answer.
func run(t *testing.T, cfg hook.Config, stdin string) hook.Decision {
	t.Helper()
	var out bytes.Buffer
	if err := hook.Run(context.Background(), strings.NewReader(stdin), &out, cfg); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var o hook.Output
	if err := json.Unmarshal(out.Bytes(), &o); err != nil || o.HookSpecificOutput == nil {
		t.Fatalf("output %q is not a hook decision: %v", out.String(), err)
	}
	if o.HookSpecificOutput.HookEventName != "PreToolUse" {
		t.Fatalf("hookEventName = %q", o.HookSpecificOutput.HookEventName)
	}
	return *o.HookSpecificOutput
}

func noRequest(t *testing.T, b *bundle) {
	t.Helper()
	select {
	case r := <-b.requests:
		t.Fatalf("unexpected server request %+v", r)
	default:
	}
}

func TestRun(t *testing.T) {
	t.Parallel()

	// Ensure L0 commands are allowed without asking the server.
	t.Run("AllowL0", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"deny"}`, 200))
		d := run(t, b.cfg, bash("df -h && journalctl -u nginx --no-pager | tail"))
		if d.PermissionDecision != "allow" {
			t.Fatalf("decision = %+v", d)
		}
		noRequest(t, b)
	})

	// Ensure L3 commands are denied locally, with the reason for the model.
	t.Run("DenyL3", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"allow"}`, 200))
		d := run(t, b.cfg, bash("echo cm0gLXJmIC8K | base64 -d | sh"))
		if d.PermissionDecision != "deny" || !strings.Contains(d.PermissionDecisionReason, "L3") || !strings.Contains(d.PermissionDecisionReason, "rm -rf /") {
			t.Fatalf("decision = %+v", d)
		}
		noRequest(t, b)
	})

	// Ensure an L1/L2 command is sent to the server exactly as specified and
	// its allow (an existing grant) is relayed.
	t.Run("AskAllow", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"allow","reason":"grant g-7 used"}`, 200))
		d := run(t, b.cfg, bash("systemctl restart nginx"))
		if d.PermissionDecision != "allow" || !strings.Contains(d.PermissionDecisionReason, "grant g-7") {
			t.Fatalf("decision = %+v", d)
		}
		req, h := <-b.requests, <-b.headers
		want := hook.Request{SessionID: "it0-session-1", ToolUseID: "toolu_01ABC", ToolName: "Bash", Command: "systemctl restart nginx", RiskLevel: 1, Hosts: []string{}}
		req.Reason = ""
		if !equalRequest(req, want) {
			t.Errorf("request = %+v, want %+v", req, want)
		}
		if h.Get("Authorization") != "Bearer tok-secret" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("headers = %v", h)
		}
	})

	// Ensure a deny names the approval the server opened.
	t.Run("AskDenyApproval", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"deny","reason":"approval required","approval_id":"apr_123"}`, 200))
		d := run(t, b.cfg, bash("kubectl apply -f deploy.yaml"))
		if d.PermissionDecision != "deny" || !strings.Contains(d.PermissionDecisionReason, "apr_123") {
			t.Fatalf("decision = %+v", d)
		}
		if req := <-b.requests; req.RiskLevel != 2 || req.Reason == "" {
			t.Errorf("request = %+v", req)
		}
	})

	// Ensure an L0 command that reaches a host still asks the server, with
	// the hosts, and relays a deny for a host outside the inventory.
	t.Run("AskHosts", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(w http.ResponseWriter, req hook.Request) {
			answer(`{"decision":"deny","reason":"host evil.example is not in this tenant's inventory"}`, 200)(w, req)
		})
		d := run(t, b.cfg, bash("ssh deploy@evil.example uptime"))
		if d.PermissionDecision != "deny" || !strings.Contains(d.PermissionDecisionReason, "inventory") {
			t.Fatalf("decision = %+v", d)
		}
		if req := <-b.requests; req.RiskLevel != 0 || len(req.Hosts) != 1 || req.Hosts[0] != "evil.example" {
			t.Errorf("request = %+v", req)
		}
	})

	// Ensure Write/Edit to protected paths ask the server with a content-bound
	// command, and ordinary files are allowed.
	t.Run("WriteProtected", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"deny","approval_id":"apr_9"}`, 200))
		d := run(t, b.cfg, event("Edit", map[string]any{"file_path": "/etc/nginx/nginx.conf", "old_string": "a", "new_string": "b"}))
		if d.PermissionDecision != "deny" || !strings.Contains(d.PermissionDecisionReason, "apr_9") {
			t.Fatalf("decision = %+v", d)
		}
		req := <-b.requests
		if req.ToolName != "Edit" || !strings.HasPrefix(req.Command, "Edit /etc/nginx/nginx.conf sha256=") || req.RiskLevel != 2 {
			t.Errorf("request = %+v", req)
		}
	})
	t.Run("WriteForbidden", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"allow"}`, 200))
		d := run(t, b.cfg, event("Write", map[string]any{"file_path": "/etc/sudoers", "content": "x ALL=(ALL) NOPASSWD:ALL"}))
		if d.PermissionDecision != "deny" {
			t.Fatalf("decision = %+v", d)
		}
		noRequest(t, b)
	})
	t.Run("WriteRelativeOrdinary", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"deny"}`, 200))
		d := run(t, b.cfg, event("Write", map[string]any{"file_path": "notes/today.md", "content": "hi"}))
		if d.PermissionDecision != "allow" {
			t.Fatalf("decision = %+v", d)
		}
		noRequest(t, b)
	})

	// Ensure tools the guard does not judge get no decision (normal
	// permission handling), not an allow.
	t.Run("OtherTool", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"allow"}`, 200))
		var out bytes.Buffer
		if err := hook.Run(context.Background(), strings.NewReader(event("Read", map[string]any{"file_path": "/etc/hosts"})), &out, b.cfg); err != nil {
			t.Fatal(err)
		}
		if out.Len() != 0 {
			t.Fatalf("output = %q, want none", out.String())
		}
	})
}

func equalRequest(a, b hook.Request) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestFailClosed ensures every failure is a deny with a reason.
func TestFailClosed(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	for _, tc := range []struct {
		name    string
		respond func(http.ResponseWriter, hook.Request)
		mutate  func(*hook.Config)
		stdin   string
		want    string
	}{
		{name: "MalformedStdin", stdin: `{"tool_name": "Bash", "tool_input": `, want: "malformed hook input"},
		{name: "NotJSON", stdin: "rm -rf /", want: "malformed hook input"},
		{name: "EmptyStdin", stdin: "", want: "malformed hook input"},
		{name: "NoToolName", stdin: `{"tool_input":{"command":"ls"}}`, want: "no tool_name"},
		{name: "BadToolInput", stdin: `{"tool_name":"Bash","tool_input":"ls"}`, want: "malformed tool_input"},
		{name: "EmptyCommand", stdin: bash("  "), want: "without a command"},
		{name: "Unparsable", stdin: bash("echo 'unterminated"), want: "does not parse", respond: answer(`{"decision":"deny","reason":"does not parse"}`, 200)},
		{name: "NoURL", stdin: bash("systemctl restart nginx"), mutate: func(c *hook.Config) { c.ServerURL = "" }, want: "IT0_URL"},
		{name: "NoToken", stdin: bash("systemctl restart nginx"), mutate: func(c *hook.Config) { c.Token = "" }, want: "IT0_TOKEN"},
		{name: "Unreachable", stdin: bash("systemctl restart nginx"), mutate: func(c *hook.Config) { c.ServerURL = downURL }, want: "unreachable"},
		{name: "Non200", stdin: bash("systemctl restart nginx"), respond: answer(`{"decision":"allow"}`, 500), want: "500"},
		{name: "Unauthorized", stdin: bash("systemctl restart nginx"), respond: answer(`{"decision":"allow"}`, 401), want: "401"},
		{name: "BadJSON", stdin: bash("systemctl restart nginx"), respond: answer(`{"decision":`, 200), want: "not valid JSON"},
		{name: "UnknownDecision", stdin: bash("systemctl restart nginx"), respond: answer(`{"decision":"ask"}`, 200), want: "unknown decision"},
		{name: "NoClassifier", stdin: bash("ls"), mutate: func(c *hook.Config) { c.Classifier = nil }, want: "no classifier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			respond := tc.respond
			if respond == nil {
				respond = answer(`{"decision":"allow"}`, 200)
			}
			b := setup(t, respond)
			if tc.mutate != nil {
				tc.mutate(&b.cfg)
			}
			d := run(t, b.cfg, tc.stdin)
			if d.PermissionDecision != "deny" || !strings.Contains(d.PermissionDecisionReason, tc.want) {
				t.Fatalf("decision = %+v, want deny mentioning %q", d, tc.want)
			}
			if strings.Contains(d.PermissionDecisionReason, "tok-secret") {
				t.Fatal("reason leaks the token")
			}
		})
	}
	t.Run("NoSession", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"allow"}`, 200))
		b.cfg.SessionID = ""
		stdin := strings.Replace(bash("systemctl restart nginx"), "2f373806-6319-4319-bc84-c0b0f85c4628", "", 1)
		if d := run(t, b.cfg, stdin); d.PermissionDecision != "deny" || !strings.Contains(d.PermissionDecisionReason, "session") {
			t.Fatalf("decision = %+v", d)
		}
	})
	t.Run("SessionFromEvent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"allow"}`, 200))
		b.cfg.SessionID = ""
		if d := run(t, b.cfg, bash("systemctl restart nginx")); d.PermissionDecision != "allow" {
			t.Fatalf("decision = %+v", d)
		}
		if req := <-b.requests; req.SessionID != "2f373806-6319-4319-bc84-c0b0f85c4628" {
			t.Errorf("session = %q", req.SessionID)
		}
	})
	t.Run("CanceledContext", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"allow"}`, 200))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out bytes.Buffer
		if err := hook.Run(ctx, strings.NewReader(bash("systemctl restart nginx")), &out, b.cfg); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), `"permissionDecision":"deny"`) {
			t.Fatalf("output = %s", out.String())
		}
	})
	t.Run("WriteError", func(t *testing.T) {
		t.Parallel()
		b := setup(t, answer(`{"decision":"allow"}`, 200))
		err := hook.Run(context.Background(), strings.NewReader(bash("ls")), failWriter{}, b.cfg)
		if !errors.Is(err, hook.ErrWrite) {
			t.Fatalf("err = %v, want ErrWrite", err)
		}
	})
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

// TestAlwaysAsk checks that with AlwaysAsk an L0 command goes to the server, whose word is final.
func TestAlwaysAsk(t *testing.T) {
	t.Parallel()
	asked := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req hook.Request
		json.NewDecoder(r.Body).Decode(&req)
		asked <- req.Command
		json.NewEncoder(w).Encode(hook.Response{Decision: "deny", Reason: "tenant rules: L2"})
	}))
	defer srv.Close()
	c, err := guard.Default()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	in := `{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"docker ps"},"tool_use_id":"t"}`
	if err := hook.Run(context.Background(), strings.NewReader(in), &out, hook.Config{Classifier: c, ServerURL: srv.URL, Token: "x",
		SessionID: "s", Client: srv.Client(), AlwaysAsk: true}); err != nil {
		t.Fatal(err)
	}
	if cmd := <-asked; cmd != "docker ps" || !strings.Contains(out.String(), `"deny"`) || !strings.Contains(out.String(), "tenant rules") {
		t.Errorf("asked %q, answered %s", cmd, out.String())
	}
}
