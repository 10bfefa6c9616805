package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/agent/openai"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const testKey = "sk-test-0123456789"

func newEngine(s *agenttest.APIServer, cfg openai.Config) *openai.Engine {
	cfg.APIKey = testKey
	cfg.BaseURL = s.URL + "/v1/"
	cfg.Model = "qwen3:8b"
	cfg.RetryBaseDelay = time.Millisecond
	return openai.New(cfg)
}

// TestRunGolden runs each fixture once and compares events, outcome and requests with its golden file.
func TestRunGolden(t *testing.T) {
	t.Parallel()
	prices := []openai.Price{{ModelPrefix: "qwen", InputPerMTok: 0.5, OutputPerMTok: 1.5}}
	cfgs := map[string]openai.Config{"tool_use": {Prices: prices}, "budget": {Prices: prices}}
	tests := []agenttest.GoldenCase{
		{Name: "simple", WantFinal: agent.EventCompleted, WantReqs: 1},
		{Name: "tool_use", WantFinal: agent.EventCompleted, WantReqs: 2},
		{Name: "reasoning", WantFinal: agent.EventCompleted, WantReqs: 1},
		{Name: "bad_args", WantFinal: agent.EventCompleted, WantReqs: 3},
		{Name: "quirks", WantFinal: agent.EventCompleted, WantReqs: 2},
		{Name: "error_mid_stream", WantFinal: agent.EventError, WantCode: agent.CodeEngine, WantReqs: 1},
		{Name: "rate_limited", WantFinal: agent.EventCompleted, WantReqs: 2},
		{Name: "server_error", WantFinal: agent.EventError, WantCode: agent.CodeEngine, WantReqs: 3},
		{Name: "bad_request", WantFinal: agent.EventError, WantCode: agent.CodeEngine, WantReqs: 1},
		{Name: "truncated", WantFinal: agent.EventError, WantCode: agent.CodeTruncated, WantReqs: 1},
		{Name: "length", WantFinal: agent.EventError, WantCode: agent.CodeTruncated, WantReqs: 1},
		{Name: "not_streamed", WantFinal: agent.EventCompleted, WantReqs: 1},
		{Name: "max_turns", Mutate: func(t *agent.Task) { t.MaxTurns = 1 }, WantFinal: agent.EventError, WantCode: agent.CodeMaxTurns, WantReqs: 1},
		{Name: "budget", Mutate: func(t *agent.Task) { t.MaxBudgetUSD = 0.1 }, WantFinal: agent.EventError, WantCode: agent.CodeBudget, WantReqs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			tc.Run(t, *update, func(s *agenttest.APIServer) agent.Engine { return newEngine(s, cfgs[tc.Name]) }, checkRequest, checkPairing)
		})
	}
}

func checkRequest(t *testing.T, r agenttest.Request) {
	t.Helper()
	if r.Path != "/v1/chat/completions" {
		t.Errorf("path = %s", r.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("Authorization = %q", got)
	}
	opts, _ := r.Body["stream_options"].(map[string]any)
	if r.Body["stream"] != true || r.Body["model"] != "qwen3:8b" || opts["include_usage"] != true || r.Body["tool_choice"] != "auto" {
		t.Errorf("body = %v", r.Body)
	}
	msgs, _ := r.Body["messages"].([]any)
	first, _ := msgs[0].(map[string]any)
	if first["role"] != "system" {
		t.Errorf("first message = %v", first)
	}
	tools, _ := json.Marshal(r.Body["tools"])
	if !strings.Contains(string(tools), `{"function":{"description":"Run a shell command on a managed server","name":"run_command","parameters":{"additionalProperties":false,"properties":{"command":{"type":"string"},"server":{"type":"string"}},"required":["server","command"],"type":"object"}},"type":"function"}`) {
		t.Errorf("tools = %s", tools)
	}
}

// checkPairing ensures every tool call of a finished run is answered by a tool message before the
// next assistant or user message.
func checkPairing(t *testing.T, raw json.RawMessage) {
	t.Helper()
	var st openai.State
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("state: %v", err)
	}
	if st.Open != nil {
		return
	}
	for i, m := range st.Messages {
		for _, c := range m.ToolCalls {
			found := false
			for _, n := range st.Messages[i+1:] {
				if n.Role != "tool" {
					break
				}
				found = found || n.ToolCallID == c.ID
			}
			if !found {
				t.Errorf("tool call %s has no tool message", c.ID)
			}
		}
	}
}

// TestRunApprovalPauseResume ensures an approval pauses the run, and the next run answers the paused
// call from PendingResults, runs the message's other call, and completes.
func TestRunApprovalPauseResume(t *testing.T) {
	t.Parallel()
	srv := agenttest.NewAPIServer(t, agenttest.LoadFixture(t, "approval"))
	var ran []string
	tb := agenttest.ApprovalToolbox(&ran, "ap_9", 1)
	e := newEngine(srv, openai.Config{})
	evs, out := agenttest.Collect(t, t.Context(), e, agenttest.Task(tb))
	last := evs[len(evs)-1]
	if !out.Paused || last.Type != agent.EventApprovalRequired || last.ApprovalID != "ap_9" || *last.RiskLevel != 1 || last.ToolUseID != "call_R" {
		t.Fatalf("paused %v, last %+v", out.Paused, last)
	}
	agenttest.Golden(t, "approval_paused", *update, evs, out, srv.Recorded())

	resume := agenttest.Resume(tb, out, agent.PendingResult{ToolUseID: "call_R", Tool: "run_command", Result: agent.ToolResult{Output: "rejected by admin: not during business hours", IsError: true}})
	evs2, out2 := agenttest.Collect(t, t.Context(), e, resume)
	if out2.Paused || evs2[len(evs2)-1].Type != agent.EventCompleted {
		t.Fatalf("resume ended with %+v", evs2[len(evs2)-1])
	}
	if strings.Join(ran, "|") != "systemctl restart nginx|df -h" {
		t.Errorf("calls = %q", ran)
	}
	reqs := srv.Recorded()
	agenttest.Golden(t, "approval_resumed", *update, evs2, out2, reqs[1:])
	checkPairing(t, out2.State)
	msgs, _ := json.Marshal(reqs[1].Body["messages"])
	if !strings.Contains(string(msgs), `"content":"error: rejected by admin: not during business hours","role":"tool","tool_call_id":"call_R"`) {
		t.Errorf("messages = %s", msgs)
	}
}

func TestRunResumeErrors(t *testing.T) {
	t.Parallel()
	paused := json.RawMessage(`{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"run_command","arguments":"{}"}}]}],"open":{"awaiting":["c1"]}}`)
	tests := []struct {
		name   string
		cfg    func(*openai.Config)
		mutate func(*agent.Task)
		want   string
	}{
		{"ErrBadState", nil, func(t *agent.Task) { t.State = json.RawMessage(`[`) }, "decode session state"},
		{"ErrNoPrompt", nil, func(t *agent.Task) { t.Prompt = "" }, "no prompt"},
		{"ErrPendingWithoutOpen", nil, func(t *agent.Task) { t.PendingResults = []agent.PendingResult{{ToolUseID: "x"}} }, "no open tool calls"},
		{"ErrMissingDecision", nil, func(t *agent.Task) { t.State = paused }, "no pending result for tool call c1"},
		{"ErrOpenWithoutCalls", nil, func(t *agent.Task) {
			t.State = json.RawMessage(`{"messages":[{"role":"user","content":"x"}],"open":{}}`)
		}, "no assistant message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tk := agenttest.Task(agenttest.OKToolbox(t))
			tc.mutate(&tk)
			agenttest.CheckRefused(t, newEngine(agenttest.NewAPIServer(t, nil), openai.Config{}), tk, tc.want)
		})
	}
}

// TestRunCancelDuringRetry ensures a cancel while waiting to retry ends the run promptly as cancelled.
func TestRunCancelDuringRetry(t *testing.T) {
	t.Parallel()
	srv := agenttest.NewAPIServer(t, []agenttest.Response{{Status: 429, Header: http.Header{"Retry-After": {"30"}}, Body: `{"error":{"message":"slow down"}}`}})
	ctx, cancel := context.WithCancel(t.Context())
	e := openai.New(openai.Config{BaseURL: srv.URL + "/v1", Model: "qwen3:8b", HTTPClient: &http.Client{Transport: notifyTransport{cancel: cancel}}})
	evs, _ := agenttest.Collect(t, ctx, e, agenttest.Task(agenttest.OKToolbox(t)))
	if last := evs[len(evs)-1]; last.Code != agent.CodeCancelled {
		t.Fatalf("final = %+v", last)
	}
}

// notifyTransport cancels once the first response has arrived, i.e. while the engine waits to retry.
type notifyTransport struct{ cancel context.CancelFunc }

func (n notifyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	n.cancel()
	return resp, err
}

// TestRunCancelInTool ensures a cancel during a tool call ends the run as cancelled with answered calls.
func TestRunCancelInTool(t *testing.T) {
	t.Parallel()
	srv := agenttest.NewAPIServer(t, agenttest.LoadFixture(t, "tool_use"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	evs, out := agenttest.Collect(t, ctx, newEngine(srv, openai.Config{}), agenttest.Task(agenttest.CancelToolbox(cancel)))
	if last := evs[len(evs)-1]; last.Code != agent.CodeCancelled {
		t.Errorf("final = %+v", last)
	}
	checkPairing(t, out.State)
}

func TestHealth(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") == "Bearer wrong" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"object":"list","data":[{"id":"qwen3:8b","object":"model"}]}`)
	}))
	t.Cleanup(up.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	tests := []struct {
		name string
		cfg  openai.Config
		want string // "" = healthy
	}{
		{"OK", openai.Config{BaseURL: up.URL + "/v1", Model: "qwen3:8b"}, ""},
		{"OKWithoutModelsEndpoint", openai.Config{BaseURL: up.URL + "/other", Model: "m"}, ""},
		{"ErrNotConfigured", openai.Config{}, "IT0_OPENAI_BASE_URL and IT0_OPENAI_MODEL"},
		{"ErrNoModel", openai.Config{BaseURL: up.URL + "/v1"}, "IT0_OPENAI_MODEL"},
		{"ErrKeyRejected", openai.Config{BaseURL: up.URL + "/v1", Model: "m", APIKey: "wrong"}, "IT0_OPENAI_API_KEY"},
		{"ErrUnreachable", openai.Config{BaseURL: down.URL + "/v1", Model: "m"}, "cannot reach"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := openai.New(tc.cfg).Health(t.Context())
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, agent.ErrUnavailable) || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Fatalf("Health = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Fatal("key in error")
			}
		})
	}
	if n := openai.New(openai.Config{}).Name(); n != agent.EngineOpenAI {
		t.Errorf("Name = %s", n)
	}
}

// TestAPIKeyRedacted ensures the key never shows in logs, fmt, JSON, or error events.
func TestAPIKeyRedacted(t *testing.T) {
	t.Parallel()
	cfg := openai.Config{APIKey: testKey, Model: "m"}
	agenttest.CheckRedacted(t, testKey, cfg, cfg.APIKey)
	// An error event after a failed request carries no key either.
	var logs bytes.Buffer
	srv := agenttest.NewAPIServer(t, agenttest.LoadFixture(t, "bad_request"))
	e := openai.New(openai.Config{BaseURL: srv.URL + "/v1", Model: "m", APIKey: testKey, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	evs, _ := agenttest.Collect(t, t.Context(), e, agenttest.Task(agenttest.OKToolbox(t)))
	if ev, _ := json.Marshal(evs); strings.Contains(string(ev)+logs.String(), testKey) {
		t.Fatal("key in events or logs")
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"Basic", "data: a\n\ndata: b\n\n", []string{"a", "b"}},
		{"CommentsAndEvents", ": keep-alive\n\nevent: x\ndata: a\n\n", []string{"x:a"}},
		{"MultiLineData", "data: a\ndata: b\n\n", []string{"a\nb"}},
		{"CRLF", "data: a\r\n\r\ndata: b\r\r", []string{"a", "b"}},
		{"NoSpace", "data:a\n\n", []string{"a"}},
		{"NoTrailingBlank", "data: a", []string{"a"}},
		{"EmptyData", "data:\n\n", []string{""}},
		{"UnknownField", "id: 7\nretry: 10\ndata: a\n\n", []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := openai.ReadSSEForTest(strings.NewReader(tc.in), 1<<10)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzSSE feeds arbitrary bytes to the event-stream reader: no panic, no event over the limit.
func FuzzSSE(f *testing.F) {
	agenttest.SeedFromFixtures(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, ev := range openai.ReadSSEForTest(strings.NewReader(body), 256) {
			if len(ev) > len(body) {
				t.Fatalf("event longer than input")
			}
		}
	})
}

// FuzzStream feeds arbitrary response bodies through the engine: no panic, exactly one final event,
// and every event marshals.
func FuzzStream(f *testing.F) {
	agenttest.SeedFromFixtures(f)
	f.Fuzz(func(t *testing.T, body string) {
		agenttest.CheckFuzzRun(t, openai.New(openai.Config{BaseURL: "http://fuzz.invalid/v1", Model: "m", MaxRetries: -1, MaxTurns: 2,
			HTTPClient: &http.Client{Transport: agenttest.BodyTransport(body)}}))
	})
}
