package anthropic_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/agent/anthropic"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const testKey = "sk-ant-test-0123456789"

func newEngine(s *agenttest.APIServer, cfg anthropic.Config) *anthropic.Engine {
	cfg.APIKey = testKey
	cfg.BaseURL = s.URL
	cfg.Model = "claude-sonnet-5-5"
	return anthropic.New(cfg)
}

// TestRunGolden runs each fixture once and compares events, outcome and requests with its golden file.
func TestRunGolden(t *testing.T) {
	t.Parallel()
	tests := []agenttest.GoldenCase{
		{Name: "simple", WantFinal: agent.EventCompleted, WantReqs: 1},
		{Name: "tool_use", WantFinal: agent.EventCompleted, WantReqs: 2},
		{Name: "error_mid_stream", WantFinal: agent.EventError, WantCode: agent.CodeEngine, WantReqs: 1},
		{Name: "rate_limited", WantFinal: agent.EventCompleted, WantReqs: 2},
		{Name: "overloaded", WantFinal: agent.EventError, WantCode: agent.CodeEngine, WantReqs: 3},
		{Name: "max_turns", Mutate: func(t *agent.Task) { t.MaxTurns = 1 }, WantFinal: agent.EventError, WantCode: agent.CodeMaxTurns, WantReqs: 1},
		{Name: "budget", Mutate: func(t *agent.Task) { t.MaxBudgetUSD = 0.5 }, WantFinal: agent.EventError, WantCode: agent.CodeBudget, WantReqs: 1},
		{Name: "truncated", WantFinal: agent.EventError, WantCode: agent.CodeTruncated, WantReqs: 1},
		{Name: "tool_not_allowed", Mutate: func(t *agent.Task) { t.AllowedTools = []string{"run_command"} }, WantFinal: agent.EventCompleted, WantReqs: 2},
	}
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			tc.Run(t, *update, func(s *agenttest.APIServer) agent.Engine { return newEngine(s, anthropic.Config{}) }, checkHeaders, checkPairing)
		})
	}
}

func checkHeaders(t *testing.T, r agenttest.Request) {
	t.Helper()
	if r.Path != "/v1/messages" {
		t.Errorf("path = %s", r.Path)
	}
	if got := r.Header.Get("x-api-key"); got != testKey {
		t.Errorf("x-api-key = %q", got)
	}
	if got := r.Header.Get("anthropic-version"); got != "2023-06-01" {
		t.Errorf("anthropic-version = %q", got)
	}
	if r.Body["stream"] != true || r.Body["model"] != "claude-sonnet-5-5" {
		t.Errorf("stream/model = %v/%v", r.Body["stream"], r.Body["model"])
	}
}

// checkPairing ensures a finished run's transcript answers every tool_use with a tool_result in the
// next message, as the API demands.
func checkPairing(t *testing.T, raw json.RawMessage) {
	t.Helper()
	var st anthropic.State
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("state: %v", err)
	}
	if st.Open != nil {
		return // paused: the open turn is answered on resume
	}
	for i, m := range st.Messages {
		for _, b := range m.Content {
			if b.Type != "tool_use" {
				continue
			}
			if i+1 >= len(st.Messages) {
				t.Fatalf("tool_use %s is the last message", b.ID)
			}
			found := false
			for _, r := range st.Messages[i+1].Content {
				found = found || (r.Type == "tool_result" && r.ToolUseID == b.ID)
			}
			if !found {
				t.Errorf("tool_use %s has no result in the next message", b.ID)
			}
		}
	}
}

// TestRunToolUseRequest ensures the second request carries the assistant turn verbatim (thinking with
// its signature, text, tool_use) followed by a user message starting with the paired tool_result.
func TestRunToolUseRequest(t *testing.T) {
	t.Parallel()
	srv := agenttest.NewAPIServer(t, agenttest.LoadFixture(t, "tool_use"))
	var calls []string
	tb := agenttest.OKToolbox(t)
	inner := tb.CallFunc
	tb.CallFunc = func(ctx context.Context, name string, input json.RawMessage) (agent.ToolResult, error) {
		calls = append(calls, name+" "+string(input))
		return inner(ctx, name, input)
	}
	agenttest.Collect(t, t.Context(), newEngine(srv, anthropic.Config{}), agenttest.Task(tb))
	if len(calls) != 1 || calls[0] != `run_command {"server": "web-1", "command": "df -h"}` {
		t.Errorf("calls = %q", calls)
	}
	reqs := srv.Recorded()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	first := reqs[0].Body
	if sys, _ := json.Marshal(first["system"]); !strings.Contains(string(sys), "You are IT0") {
		t.Errorf("system = %s", sys)
	}
	tools, _ := json.Marshal(first["tools"])
	if !strings.Contains(string(tools), `"name":"run_command"`) || !strings.Contains(string(tools), `"required":["server","command"]`) ||
		!strings.Contains(string(tools), `"additionalProperties":false`) {
		t.Errorf("tools = %s", tools)
	}
	msgs, _ := reqs[1].Body["messages"].([]any)
	if len(msgs) != 3 {
		t.Fatalf("%d messages in the second request", len(msgs))
	}
	asst, _ := json.Marshal(msgs[1])
	for _, want := range []string{`"signature":"EqQBCkYIBxgCKkBsig=="`, `"thinking":"Disk check needs df on web-1."`, `"type":"tool_use"`, `"id":"toolu_01A"`} {
		if !strings.Contains(string(asst), want) {
			t.Errorf("assistant turn lacks %s: %s", want, asst)
		}
	}
	user, _ := msgs[2].(map[string]any)
	content, _ := user["content"].([]any)
	first0, _ := content[0].(map[string]any)
	if user["role"] != "user" || first0["type"] != "tool_result" || first0["tool_use_id"] != "toolu_01A" {
		t.Errorf("results message = %v", user)
	}
}

// TestRunApprovalPauseResume ensures an approval pauses the run with the tool_use turn open, and the
// next run answers it from PendingResults, runs the turn's other call, and completes.
func TestRunApprovalPauseResume(t *testing.T) {
	t.Parallel()
	srv := agenttest.NewAPIServer(t, agenttest.LoadFixture(t, "approval"))
	var ran []string
	tb := agenttest.ApprovalToolbox(&ran, "ap_1", 2)
	e := newEngine(srv, anthropic.Config{})
	evs, out := agenttest.Collect(t, t.Context(), e, agenttest.Task(tb))
	if !out.Paused {
		t.Fatal("not paused")
	}
	last := evs[len(evs)-1]
	if last.Type != agent.EventApprovalRequired || last.ApprovalID != "ap_1" || *last.RiskLevel != 2 || last.Command != "systemctl restart nginx" || last.ToolUseID != "toolu_R" {
		t.Errorf("approval event = %+v", last)
	}
	if len(srv.Recorded()) != 1 || len(ran) != 1 {
		t.Fatalf("requests %d, calls %q", len(srv.Recorded()), ran)
	}
	agenttest.Golden(t, "approval_paused", *update, evs, out, srv.Recorded())

	resume := agenttest.Resume(tb, out, agent.PendingResult{ToolUseID: "toolu_R", Tool: "run_command", Result: agent.ToolResult{Output: "restarted"}})
	evs2, out2 := agenttest.Collect(t, t.Context(), e, resume)
	if out2.Paused || evs2[len(evs2)-1].Type != agent.EventCompleted {
		t.Fatalf("resume ended with %+v", evs2[len(evs2)-1])
	}
	if strings.Join(ran, "|") != "systemctl restart nginx|df -h" {
		t.Errorf("calls = %q (the approved command must not run again)", ran)
	}
	reqs := srv.Recorded()
	agenttest.Golden(t, "approval_resumed", *update, evs2, out2, reqs[1:])
	checkPairing(t, out2.State)
	msgs, _ := reqs[1].Body["messages"].([]any)
	results, _ := json.Marshal(msgs[len(msgs)-1])
	if !strings.Contains(string(results), `"tool_use_id":"toolu_R"`) || !strings.Contains(string(results), `"tool_use_id":"toolu_D"`) ||
		strings.Index(string(results), "toolu_R") > strings.Index(string(results), "toolu_D") {
		t.Errorf("results message = %s", results)
	}
}

// TestRunResumeErrors ensures runs that cannot continue are refused without emitting.
func TestRunResumeErrors(t *testing.T) {
	t.Parallel()
	paused := json.RawMessage(`{"messages":[{"role":"user","content":[{"type":"text","text":"x"}]},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"run_command","input":{}}]}],"open":{"awaiting":["t1"]}}`)
	tests := []struct {
		name   string
		mutate func(*agent.Task)
		want   string
	}{
		{"ErrBadState", func(t *agent.Task) { t.State = json.RawMessage(`{`) }, "decode session state"},
		{"ErrNoPrompt", func(t *agent.Task) { t.Prompt = "" }, "no prompt"},
		{"ErrPendingWithoutOpen", func(t *agent.Task) {
			t.PendingResults = []agent.PendingResult{{ToolUseID: "x"}}
		}, "no open tool calls"},
		{"ErrMissingDecision", func(t *agent.Task) { t.State = paused }, "no pending result for tool call t1"},
		{"ErrOpenWithoutAssistant", func(t *agent.Task) { t.State = json.RawMessage(`{"messages":[],"open":{}}`) }, "no assistant turn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tk := agenttest.Task(agenttest.OKToolbox(t))
			tc.mutate(&tk)
			agenttest.CheckRefused(t, newEngine(agenttest.NewAPIServer(t, nil), anthropic.Config{}), tk, tc.want)
		})
	}
}

// TestRunCancel ensures a cancel during a tool call ends the run with a cancelled error and a
// transcript whose open call is answered.
func TestRunCancel(t *testing.T) {
	t.Parallel()
	srv := agenttest.NewAPIServer(t, agenttest.LoadFixture(t, "tool_use"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	evs, out := agenttest.Collect(t, ctx, newEngine(srv, anthropic.Config{}), agenttest.Task(agenttest.CancelToolbox(cancel)))
	if last := evs[len(evs)-1]; last.Type != agent.EventError || last.Code != agent.CodeCancelled {
		t.Errorf("final = %+v", last)
	}
	checkPairing(t, out.State)
	if !strings.Contains(string(out.State), "not run: the run was cancelled") {
		t.Errorf("state = %s", out.State)
	}
}

// TestRunToolFailure ensures a Toolbox error that is not an approval ends the run.
func TestRunToolFailure(t *testing.T) {
	t.Parallel()
	srv := agenttest.NewAPIServer(t, agenttest.LoadFixture(t, "tool_use"))
	tb := &agenttest.Toolbox{ToolsFunc: agenttest.Tools, CallFunc: func(context.Context, string, json.RawMessage) (agent.ToolResult, error) {
		return agent.ToolResult{}, errors.New("inventory store unreachable")
	}}
	evs, out := agenttest.Collect(t, t.Context(), newEngine(srv, anthropic.Config{}), agenttest.Task(tb))
	last := evs[len(evs)-1]
	if last.Code != agent.CodeEngine || !strings.Contains(last.Message, "inventory store unreachable") {
		t.Errorf("final = %+v", last)
	}
	checkPairing(t, out.State)
}

// TestRunContinuesSession ensures a later prompt is appended to the stored transcript.
func TestRunContinuesSession(t *testing.T) {
	t.Parallel()
	srv := agenttest.NewAPIServer(t, append(agenttest.LoadFixture(t, "simple"), agenttest.LoadFixture(t, "simple")...))
	e := newEngine(srv, anthropic.Config{})
	_, out := agenttest.Collect(t, t.Context(), e, agenttest.Task(agenttest.OKToolbox(t)))
	next := agenttest.Task(agenttest.OKToolbox(t))
	next.Prompt = "and web-2?"
	next.State = out.State
	agenttest.Collect(t, t.Context(), e, next)
	msgs, _ := srv.Recorded()[1].Body["messages"].([]any)
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	last, _ := json.Marshal(msgs[2])
	if !strings.Contains(string(last), "and web-2?") {
		t.Errorf("last message = %s", last)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	err := anthropic.New(anthropic.Config{}).Health(t.Context())
	if !errors.Is(err, agent.ErrUnavailable) || !strings.Contains(err.Error(), "IT0_ANTHROPIC_API_KEY") {
		t.Errorf("Health without key = %v", err)
	}
	if err := anthropic.New(anthropic.Config{APIKey: "k"}).Health(t.Context()); err != nil {
		t.Errorf("Health with key = %v", err)
	}
	if n := anthropic.New(anthropic.Config{}).Name(); n != agent.EngineClaudeAPI {
		t.Errorf("Name = %s", n)
	}
}

// TestAPIKeyRedacted ensures the key never shows in logs, fmt or JSON.
func TestAPIKeyRedacted(t *testing.T) {
	t.Parallel()
	cfg := anthropic.Config{APIKey: testKey, Model: "m"}
	agenttest.CheckRedacted(t, testKey, cfg, cfg.APIKey)
	if cfg.APIKey.Reveal() != testKey {
		t.Fatal("Reveal")
	}
}

// FuzzStream feeds arbitrary response bodies through the engine's stream handling: no panic, exactly one
// final event, and every event marshals.
func FuzzStream(f *testing.F) {
	agenttest.SeedFromFixtures(f)
	f.Fuzz(func(t *testing.T, body string) {
		agenttest.CheckFuzzRun(t, anthropic.New(anthropic.Config{APIKey: "k", BaseURL: "http://fuzz.invalid/", MaxRetries: -1, MaxTurns: 2,
			HTTPClient: &http.Client{Transport: agenttest.BodyTransport(body)}}))
	})
}
