package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/inventory/sshtest"
)

// realClaude returns the real Claude Code CLI to test with: IT0_TEST_CLAUDE, else the newest install of
// scripts/install-claude-code.sh in ~/.cache/it0/claude-code. Without one the test skips, or fails under
// CI=true (.ci/run installs it).
func realClaude(t *testing.T) string {
	t.Helper()
	path := os.Getenv("IT0_TEST_CLAUDE")
	if path == "" {
		home, _ := os.UserHomeDir()
		found, _ := filepath.Glob(filepath.Join(home, ".cache", "it0", "claude-code", "*", "node_modules", ".bin", "claude"))
		if len(found) > 0 {
			path = found[len(found)-1]
		}
	}
	if st, err := os.Stat(path); path == "" || err != nil || st.Mode()&0o111 == 0 {
		msg := "the real Claude Code CLI is not installed (run scripts/install-claude-code.sh or set IT0_TEST_CLAUDE)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// TestRealClaudeCode drives the real Claude Code CLI (2.1.x, from npm) through IT0 against a local server
// that speaks the streaming Messages API, with a real sshd as the managed server. The fake model plays
// what a model would, by looking at what the CLI sends:
//
//  1. mcp__it0__run_command df -h (L0): its output must come back in the next request's tool_result;
//  2. mcp__it0__run_command touch <file> (L1): IT0 opens an approval and the session pauses;
//     after the approval the CLI is resumed, the model is told, and the command runs: the file exists;
//  3. Bash mkfs.ext4 on a device that does not exist (L3): IT0's PreToolUse hook refuses it, and the
//     refusal is a notice in the session;
//  4. a final answer: the session completes.
//
// What the CLI sends, recorded from 2.1.332: POST /v1/messages?beta=true with x-api-key and
// anthropic-version, stream true, "system" as an array of text blocks (IT0's prompt appended), "tools"
// with the built-ins and, with ENABLE_TOOL_SEARCH=false, IT0's mcp__it0__* tools in full (by default
// they are deferred: only their names appear, in a message, behind ToolSearch); "messages" whose user
// turns are arrays of blocks (system-reminder text, the prompt, tool_result blocks whose content is an
// array of text blocks) and may include role "system" messages.
//
// DeferredTools runs the same with the CLI deferring MCP tools (ENABLE_TOOL_SEARCH=true, as an operator
// may set it): the model is told in IT0's prompt to load them with ToolSearch, does, and the session
// shows ToolSearch's tool_reference result as text.
func TestRealClaudeCode(t *testing.T) {
	t.Parallel()
	claude := realClaude(t)
	t.Run("ToolsUpFront", func(t *testing.T) {
		t.Parallel()
		testRealClaudeCode(t, claude, "127.0.0.41", false)
	})
	t.Run("DeferredTools", func(t *testing.T) {
		t.Parallel()
		testRealClaudeCode(t, claude, "127.0.0.42", true)
	})
}

func testRealClaudeCode(t *testing.T, claude, addr string, deferred bool) {
	target := sshtest.Start(t, sshtest.Options{Addr: addr, Password: true})
	dir := t.TempDir()
	var rnd [6]byte
	rand.Read(rnd[:])
	touched := "/tmp/it0-cc-real-" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() { os.Remove(touched) })

	const key = "sk-ant-it0-test-key"
	model := &fakeModel{t: t, key: key, touch: "touch " + touched, l3: "mkfs.ext4 /dev/it0-cc-none"}
	toolSearch := ""
	if deferred {
		toolSearch = "export ENABLE_TOOL_SEARCH=true\n"
	}
	api := httptest.NewServer(model)
	t.Cleanup(api.Close)

	home := filepath.Join(dir, "home")
	os.MkdirAll(home, 0o700)
	wrapper := filepath.Join(dir, "claude")
	// The CLI talks only to the fake; its own traffic (updates, telemetry) is off. IT0_TEST_EXEC lets the
	// hook and the MCP server, which run this test binary, act as `it0`.
	script := fmt.Sprintf(`#!/bin/sh
unset ANTHROPIC_AUTH_TOKEN CLAUDE_CODE_OAUTH_TOKEN CLAUDE_CONFIG_DIR
export IT0_TEST_EXEC=1 HOME=%q ANTHROPIC_BASE_URL=%q ANTHROPIC_API_KEY=%q
export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1
%sexec %q "$@"
`, home, api.URL, key, toolSearch, claude)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password", "IT0_CLAUDE_PATH": wrapper, "IT0_DEFAULT_ENGINE": "claude_code_cli"}
	p, err := serveInProcess(t, filepath.Join(dir, "data"), env)
	if err != nil {
		t.Fatal(err)
	}
	tok := p.api(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	p.addPasswordServer(t, tok, target)
	sid := p.api(t, "POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "Check the disk on web-1, then touch the marker file."})["session_id"].(string)

	events := func(after int64, until agent.EventType) []agent.Event {
		t.Helper()
		return p.events(t, tok, sid, after, until, 3*time.Minute, func() string { return "\nmodel saw: " + model.summary() })
	}

	// 1 and 2: df -h runs, touch waits for a human.
	evs := events(0, agent.EventApprovalRequired)
	ap := evs[len(evs)-1]
	if ap.Type != agent.EventApprovalRequired || ap.Command != model.touch || ap.RiskLevel == nil || *ap.RiskLevel != 1 {
		t.Fatalf("first run did not pause on the L1 command: %+v\nmodel saw: %s", evs, model.summary())
	}
	if out := model.resultOf("df"); !strings.Contains(out, "Filesystem") {
		t.Errorf("df -h output did not reach the model; its tool_result was %q", out)
	}
	if upFront := model.sawTools(); upFront == deferred {
		t.Errorf("mcp__it0__run_command in the first request's tools: %v, want %v", upFront, !deferred)
	}
	if deferred {
		if out := model.resultOf("search"); !strings.Contains(out, "mcp__it0__run_command") {
			t.Errorf("ToolSearch's result as the CLI sent it = %q", out)
		}
		loaded := false
		for _, e := range evs {
			loaded = loaded || e.Type == agent.EventToolResult && e.Tool == "ToolSearch" && strings.Contains(e.Output, "[tool loaded: mcp__it0__run_command]")
		}
		if !loaded {
			t.Errorf("no readable ToolSearch result in the session: %+v", evs)
		}
	}
	if !model.sawGuide() {
		t.Errorf("IT0's system prompt (with the ToolSearch guide) did not reach the model")
	}
	if _, err := os.Stat(touched); err == nil {
		t.Fatal("the L1 command ran before its approval")
	}
	if s := p.api(t, "GET", "/api/v1/agent/sessions/"+sid, tok, nil); s["status"] != "awaiting_approval" {
		t.Fatalf("status %v, want awaiting_approval", s["status"])
	}

	// The approval resumes the CLI; the command runs, then the hook refuses the L3 one.
	p.api(t, "POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", tok, map[string]string{"reason": "go"})
	evs = events(ap.Seq, agent.EventCompleted)
	last := evs[len(evs)-1]
	if last.Type != agent.EventCompleted || !strings.Contains(last.Summary, "All done") {
		t.Fatalf("resumed run ended with %+v\nevents: %+v\nmodel saw: %s", last, evs, model.summary())
	}
	if _, err := os.Stat(touched); err != nil {
		t.Errorf("the approved L1 command did not run on web-1: %v", err)
	}
	if out := model.resultOf("l3"); !strings.Contains(out, "L3") {
		t.Errorf("the L3 Bash command's tool_result = %q, want the hook's refusal", out)
	}
	refused := false
	for _, e := range evs {
		if e.Type == agent.EventNotice && e.Code == agent.CodePermissionDenied && e.Tool == "Bash" {
			refused = true
		}
		if e.Type == agent.EventNotice && strings.Contains(e.Message, "permissions.allow") {
			t.Errorf("the CLI warned about IT0's permission rules: %s", e.Message)
		}
	}
	if !refused {
		t.Errorf("no permission_denied notice for the refused Bash call in %+v", evs)
	}
	if a := p.api(t, "GET", "/api/v1/agent/approvals/"+ap.ApprovalID, tok, nil); a["used_at"] == nil {
		t.Errorf("grant not marked used: %v", a)
	}
	t.Logf("model saw: %s", model.summary())
}

// fakeModel is a Messages API server that plays the model of TestRealClaudeCode, choosing each answer
// from the conversation the CLI sends.
type fakeModel struct {
	t         *testing.T
	key       string
	touch, l3 string

	mu       sync.Mutex
	results  map[string]string // tool_result text by our tool_use id ("df", "touch", "l3"…)
	tools    [][]string        // tool names of each request
	guide    bool              // a system prompt carried IT0's ToolSearch guide
	answered []string          // what we answered, in order
}

var grantedRE = regexp.MustCompile(`was granted: run exactly this command again now, once: (.+)`)

func (m *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Header.Get("x-api-key") != m.key || r.Header.Get("anthropic-version") != "2023-06-01":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
		return
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages/count_tokens":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":100}`)
		return
	case r.Method != http.MethodPost || r.URL.Path != "/v1/messages":
		m.t.Logf("fake model: unexpected %s %s", r.Method, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"type":"error","error":{"type":"not_found_error","message":"not found"}}`)
		return
	}
	var req struct {
		Model  string          `json:"model"`
		Stream bool            `json:"stream"`
		System json.RawMessage `json:"system"`
		Tools  []struct {
			Name string `json:"name"`
		} `json:"tools"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"type":"error","error":{"type":"invalid_request_error","message":%q}}`, fmt.Sprint("bad body: ", err))
		return
	}
	var names []string
	for _, tl := range req.Tools {
		names = append(names, tl.Name)
	}

	// The last thing that happened: a tool result (by our id) or IT0's resume prompt.
	type block struct {
		Type      string          `json:"type"`
		Text      string          `json:"text"`
		ToolUseID string          `json:"tool_use_id"`
		Content   json.RawMessage `json:"content"`
		IsError   bool            `json:"is_error"`
	}
	lastResult, resumePrompt := "", ""
	results := map[string]string{}
	for _, msg := range req.Messages {
		if msg.Role == "assistant" {
			continue
		}
		var blocks []block
		if json.Unmarshal(msg.Content, &blocks) != nil {
			var s string
			json.Unmarshal(msg.Content, &s)
			blocks = []block{{Type: "text", Text: s}}
		}
		for _, b := range blocks {
			switch {
			case b.Type == "tool_result":
				id := strings.TrimPrefix(b.ToolUseID, "toolu_it0_")
				results[id] = blockText(b.Content)
				lastResult, resumePrompt = id, ""
			case b.Type == "text" && strings.Contains(b.Text, "[IT0]") || grantedRE.MatchString(b.Text):
				resumePrompt, lastResult = b.Text, ""
			}
		}
	}
	m.mu.Lock()
	m.tools = append(m.tools, names)
	m.guide = m.guide || strings.Contains(string(req.System), "select:mcp__it0__run_command")
	if m.results == nil {
		m.results = map[string]string{}
	}
	for id, out := range results {
		m.results[id] = out
	}
	m.mu.Unlock()

	var text, toolID, toolName string
	var input any
	runCommand := func(id, cmd string) {
		toolID, toolName, input = id, "mcp__it0__run_command", map[string]string{"server": "web-1", "command": cmd}
	}
	switch {
	case resumePrompt != "":
		if g := grantedRE.FindStringSubmatch(resumePrompt); g != nil {
			// IT0 asks Claude Code to run the approved command again (its grant lets it through once).
			text = "Approved; running it."
			runCommand("touch_again", strings.TrimSpace(g[1]))
		} else {
			text = "The approved command ran."
			toolID, toolName, input = "l3", "Bash", map[string]string{"command": m.l3, "description": "Format the spare disk"}
		}
	case lastResult == "" && !slices.Contains(names, "mcp__it0__run_command") && slices.Contains(names, "ToolSearch"):
		// IT0's tools are deferred: load them as IT0's prompt says.
		text = "Loading IT0's tools."
		toolID, toolName, input = "search", "ToolSearch", map[string]string{"query": "select:mcp__it0__run_command,mcp__it0__list_servers"}
	case lastResult == "" || lastResult == "search":
		text = "Checking the disk first."
		runCommand("df", "df -h")
	case lastResult == "df":
		text = "Disk is fine. Creating the marker."
		runCommand("touch", m.touch)
	case lastResult == "touch":
		text = "Waiting for the approval." // the CLI is stopped around here
	case lastResult == "touch_again":
		text = "Now formatting the spare disk."
		toolID, toolName, input = "l3", "Bash", map[string]string{"command": m.l3, "description": "Format the spare disk"}
	case lastResult == "l3":
		text = "All done: disk checked, marker created, the format was refused."
	default:
		text = "Nothing more to do."
	}
	m.mu.Lock()
	m.answered = append(m.answered, fmt.Sprintf("%s→%s %s", cmpStr(lastResult, "prompt"), cmpStr(toolName, "text"), compactAny(input)))
	m.mu.Unlock()
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": "msg_it0_plain", "type": "message", "role": "assistant", "model": req.Model,
			"content": []map[string]string{{"type": "text", "text": text}}, "stop_reason": "end_turn", "stop_sequence": nil,
			"usage": map[string]int{"input_tokens": 10, "output_tokens": 5}})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	ev := func(name string, data any) {
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
	}
	ev("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": fmt.Sprintf("msg_it0_%d", len(req.Messages)),
		"type": "message", "role": "assistant", "model": req.Model, "content": []any{}, "stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]int{"input_tokens": 100, "output_tokens": 1}}})
	ev("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]string{"type": "text", "text": ""}})
	ev("ping", map[string]string{"type": "ping"})
	ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]string{"type": "text_delta", "text": text}})
	ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	stop := "end_turn"
	if toolID != "" {
		stop = "tool_use"
		args, _ := json.Marshal(input)
		ev("content_block_start", map[string]any{"type": "content_block_start", "index": 1, "content_block": map[string]any{
			"type": "tool_use", "id": "toolu_it0_" + toolID, "name": toolName, "input": map[string]any{}}})
		for _, part := range []string{"", string(args[:5]), string(args[5:])} {
			ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 1, "delta": map[string]string{"type": "input_json_delta", "partial_json": part}})
		}
		ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 1})
	}
	ev("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]int{"output_tokens": 20}})
	ev("message_stop", map[string]string{"type": "message_stop"})
}

// resultOf returns the text of the tool_result the CLI sent for our tool call id.
func (m *fakeModel) resultOf(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.results[id]
}

// sawTools reports whether the first request carried IT0's run_command tool itself (not deferred).
func (m *fakeModel) sawTools() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tools) > 0 && slices.Contains(m.tools[0], "mcp__it0__run_command")
}

// sawGuide reports whether a request's system prompt carried IT0's guide to its tools.
func (m *fakeModel) sawGuide() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.guide
}

// summary lists what the fake answered, for failure messages.
func (m *fakeModel) summary() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("answers %q; tool results %q", m.answered, m.results)
}

// blockText flattens tool_result content (a string or an array of text or tool_reference blocks) into text.
func blockText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []struct {
		Type, Text string
		ToolName   string `json:"tool_name"` // tool_reference (ToolSearch's result)
	}
	json.Unmarshal(raw, &blocks)
	var parts []string
	for _, b := range blocks {
		parts = append(parts, b.Text+b.ToolName)
	}
	return strings.Join(parts, "\n")
}

func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func compactAny(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}
