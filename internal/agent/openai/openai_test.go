package openai_test

import (
	"bufio"
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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/openai"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const testKey = "sk-test-0123456789"

// fakeToolbox is a hand-written Toolbox whose behaviour each test sets.
type fakeToolbox struct {
	ToolsFunc func() []agent.Tool
	CallFunc  func(ctx context.Context, name string, input json.RawMessage) (agent.ToolResult, error)
}

var _ agent.Toolbox = (*fakeToolbox)(nil)

func (f *fakeToolbox) Tools() []agent.Tool { return f.ToolsFunc() }

func (f *fakeToolbox) Call(ctx context.Context, name string, input json.RawMessage) (agent.ToolResult, error) {
	return f.CallFunc(ctx, name, input)
}

func testTools() []agent.Tool {
	return []agent.Tool{
		{Name: "run_command", Description: "Run a shell command on a managed server", InputSchema: json.RawMessage(`{"type":"object","properties":{"server":{"type":"string"},"command":{"type":"string"}},"required":["server","command"],"additionalProperties":false}`)},
		{Name: "list_servers", Description: "List servers", InputSchema: json.RawMessage(`{"type":"object","properties":{}}`)},
	}
}

// response is one canned HTTP response of a fixture.
type response struct {
	status int
	header http.Header
	body   string
}

// loadFixture reads testdata/<name>.sse: responses in the API's wire format, each after a line
// "### <status> [<header>: <value>]…".
func loadFixture(t testing.TB, name string) []response {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".sse"))
	if err != nil {
		t.Fatal(err)
	}
	var out []response
	for _, part := range strings.Split(string(data), "### ")[1:] {
		head, body, _ := strings.Cut(part, "\n")
		fields := strings.SplitN(head, " ", 2)
		status, err := strconv.Atoi(fields[0])
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		if len(fields) > 1 {
			k, v, _ := strings.Cut(fields[1], ": ")
			h.Set(k, v)
		}
		out = append(out, response{status: status, header: h, body: body})
	}
	return out
}

// request is what the fake API saw.
type request struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

// apiServer replays responses in order and records requests.
type apiServer struct {
	t         testing.TB
	mu        sync.Mutex
	responses []response
	requests  []request
	*httptest.Server
}

func newAPIServer(t testing.TB, responses []response) *apiServer {
	s := &apiServer{t: t, responses: responses}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		s.t.Errorf("request body is not JSON: %v", err)
	}
	s.mu.Lock()
	s.requests = append(s.requests, request{Path: r.URL.Path, Header: r.Header.Clone(), Body: m})
	if len(s.responses) == 0 {
		s.mu.Unlock()
		s.t.Errorf("unexpected request %d", len(s.requests))
		http.Error(w, `{"error":{"message":"no more fixtures"}}`, http.StatusBadRequest)
		return
	}
	resp := s.responses[0]
	s.responses = s.responses[1:]
	s.mu.Unlock()
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	if w.Header().Get("Content-Type") == "" && resp.status == http.StatusOK {
		w.Header().Set("Content-Type", "text/event-stream")
	} else if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(resp.status)
	io.WriteString(w, resp.body)
}

func (s *apiServer) recorded() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.requests...)
}

func (s *apiServer) left() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.responses)
}

func newEngine(s *apiServer, cfg openai.Config) *openai.Engine {
	cfg.APIKey = testKey
	cfg.BaseURL = s.URL + "/v1/"
	cfg.Model = "qwen3:8b"
	cfg.RetryBaseDelay = time.Millisecond
	return openai.New(cfg)
}

// collect runs t and returns its events with times cleared.
func collect(t *testing.T, ctx context.Context, e *openai.Engine, task agent.Task) ([]agent.Event, agent.Outcome) {
	t.Helper()
	var evs []agent.Event
	out, err := e.Run(ctx, task, func(ev agent.Event) {
		if ev.Time.IsZero() {
			t.Errorf("%s event without time", ev.Type)
		}
		ev.Time = time.Time{}
		evs = append(evs, ev)
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	for _, ev := range evs[:len(evs)-1] {
		if ev.Type == agent.EventCompleted || ev.Type == agent.EventError || ev.Type == agent.EventApprovalRequired {
			t.Errorf("final-type event %s before the end", ev.Type)
		}
	}
	return evs, out
}

// golden compares one run's events, outcome and request bodies with testdata/<name>.golden.
func golden(t *testing.T, name string, evs []agent.Event, out agent.Outcome, reqs []request) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range reqs {
		if err := enc.Encode(map[string]any{"request": r.Body}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Encode(map[string]any{"outcome": out}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", path, buf.Bytes(), want)
	}
}

func okToolbox(t *testing.T) *fakeToolbox {
	return &fakeToolbox{
		ToolsFunc: testTools,
		CallFunc: func(_ context.Context, name string, input json.RawMessage) (agent.ToolResult, error) {
			var in struct{ Server, Command string }
			if err := json.Unmarshal(input, &in); err != nil {
				t.Errorf("tool input %s: %v", input, err)
			}
			return agent.ToolResult{Output: fmt.Sprintf("ran %q on %s: /dev/sda1 40G 33G 83%%", in.Command, in.Server)}, nil
		},
	}
}

func task(tb agent.Toolbox) agent.Task {
	return agent.Task{SessionID: "s1", Prompt: "check disk on web-1", SystemPrompt: "You are IT0, an ops agent.", Tools: tb}
}

// TestRunGolden runs each fixture once and compares events, outcome and requests with its golden file.
func TestRunGolden(t *testing.T) {
	t.Parallel()
	prices := []openai.Price{{ModelPrefix: "qwen", InputPerMTok: 0.5, OutputPerMTok: 1.5}}
	tests := []struct {
		name      string
		cfg       openai.Config
		mutate    func(*agent.Task)
		wantFinal agent.EventType
		wantCode  string
		wantReqs  int
	}{
		{name: "simple", wantFinal: agent.EventCompleted, wantReqs: 1},
		{name: "tool_use", cfg: openai.Config{Prices: prices}, wantFinal: agent.EventCompleted, wantReqs: 2},
		{name: "reasoning", wantFinal: agent.EventCompleted, wantReqs: 1},
		{name: "bad_args", wantFinal: agent.EventCompleted, wantReqs: 3},
		{name: "quirks", wantFinal: agent.EventCompleted, wantReqs: 2},
		{name: "error_mid_stream", wantFinal: agent.EventError, wantCode: agent.CodeEngine, wantReqs: 1},
		{name: "rate_limited", wantFinal: agent.EventCompleted, wantReqs: 2},
		{name: "server_error", wantFinal: agent.EventError, wantCode: agent.CodeEngine, wantReqs: 3},
		{name: "bad_request", wantFinal: agent.EventError, wantCode: agent.CodeEngine, wantReqs: 1},
		{name: "truncated", wantFinal: agent.EventError, wantCode: agent.CodeTruncated, wantReqs: 1},
		{name: "length", wantFinal: agent.EventError, wantCode: agent.CodeTruncated, wantReqs: 1},
		{name: "not_streamed", wantFinal: agent.EventCompleted, wantReqs: 1},
		{name: "max_turns", mutate: func(t *agent.Task) { t.MaxTurns = 1 }, wantFinal: agent.EventError, wantCode: agent.CodeMaxTurns, wantReqs: 1},
		{name: "budget", cfg: openai.Config{Prices: prices}, mutate: func(t *agent.Task) { t.MaxBudgetUSD = 0.1 }, wantFinal: agent.EventError, wantCode: agent.CodeBudget, wantReqs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newAPIServer(t, loadFixture(t, tc.name))
			tk := task(okToolbox(t))
			if tc.mutate != nil {
				tc.mutate(&tk)
			}
			evs, out := collect(t, t.Context(), newEngine(srv, tc.cfg), tk)
			last := evs[len(evs)-1]
			if last.Type != tc.wantFinal || last.Code != tc.wantCode {
				t.Errorf("final = %s/%s %q, want %s/%s", last.Type, last.Code, last.Message, tc.wantFinal, tc.wantCode)
			}
			reqs := srv.recorded()
			if len(reqs) != tc.wantReqs {
				t.Errorf("%d requests, want %d", len(reqs), tc.wantReqs)
			}
			for _, r := range reqs {
				checkRequest(t, r)
			}
			checkPairing(t, out.State)
			golden(t, tc.name, evs, out, reqs)
		})
	}
}

func checkRequest(t *testing.T, r request) {
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
	srv := newAPIServer(t, loadFixture(t, "approval"))
	var ran []string
	tb := &fakeToolbox{ToolsFunc: testTools, CallFunc: func(_ context.Context, name string, input json.RawMessage) (agent.ToolResult, error) {
		var in struct{ Command string }
		_ = json.Unmarshal(input, &in)
		ran = append(ran, in.Command)
		if strings.HasPrefix(in.Command, "systemctl") {
			return agent.ToolResult{}, fmt.Errorf("guard: %w", &agent.ApprovalRequired{ApprovalID: "ap_9", Command: in.Command, RiskLevel: 1})
		}
		return agent.ToolResult{Output: "/dev/sda1 41%"}, nil
	}}
	e := newEngine(srv, openai.Config{})
	evs, out := collect(t, t.Context(), e, task(tb))
	last := evs[len(evs)-1]
	if !out.Paused || last.Type != agent.EventApprovalRequired || last.ApprovalID != "ap_9" || *last.RiskLevel != 1 || last.ToolUseID != "call_R" {
		t.Fatalf("paused %v, last %+v", out.Paused, last)
	}
	golden(t, "approval_paused", evs, out, srv.recorded())

	resume := task(tb)
	resume.Prompt = ""
	resume.State = out.State
	resume.PendingResults = []agent.PendingResult{{ToolUseID: "call_R", Tool: "run_command", Result: agent.ToolResult{Output: "rejected by admin: not during business hours", IsError: true}}}
	evs2, out2 := collect(t, t.Context(), e, resume)
	if out2.Paused || evs2[len(evs2)-1].Type != agent.EventCompleted {
		t.Fatalf("resume ended with %+v", evs2[len(evs2)-1])
	}
	if strings.Join(ran, "|") != "systemctl restart nginx|df -h" {
		t.Errorf("calls = %q", ran)
	}
	reqs := srv.recorded()
	golden(t, "approval_resumed", evs2, out2, reqs[1:])
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
			srv := newAPIServer(t, nil)
			tk := task(okToolbox(t))
			tc.mutate(&tk)
			_, err := newEngine(srv, openai.Config{}).Run(t.Context(), tk, func(ev agent.Event) { t.Errorf("emitted %+v", ev) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRunCancelDuringRetry ensures a cancel while waiting to retry ends the run promptly as cancelled.
func TestRunCancelDuringRetry(t *testing.T) {
	t.Parallel()
	srv := newAPIServer(t, []response{{status: 429, header: http.Header{"Retry-After": {"30"}}, body: `{"error":{"message":"slow down"}}`}})
	ctx, cancel := context.WithCancel(t.Context())
	e := openai.New(openai.Config{BaseURL: srv.URL + "/v1", Model: "qwen3:8b", HTTPClient: &http.Client{Transport: notifyTransport{cancel: cancel}}})
	evs, _ := collect(t, ctx, e, task(okToolbox(t)))
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
	srv := newAPIServer(t, loadFixture(t, "tool_use"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tb := &fakeToolbox{ToolsFunc: testTools, CallFunc: func(ctx context.Context, _ string, _ json.RawMessage) (agent.ToolResult, error) {
		cancel()
		return agent.ToolResult{}, ctx.Err()
	}}
	evs, out := collect(t, ctx, newEngine(srv, openai.Config{}), task(tb))
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
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "key", cfg.APIKey, "cfg", cfg)
	b, _ := json.Marshal(cfg)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.APIKey) + string(b)
	if strings.Contains(out, testKey) {
		t.Fatalf("key leaked: %s", out)
	}
	// An error event after a failed request carries no key either.
	var logs bytes.Buffer
	srv := newAPIServer(t, loadFixture(t, "bad_request"))
	e := openai.New(openai.Config{BaseURL: srv.URL + "/v1", Model: "m", APIKey: testKey, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	evs, _ := collect(t, t.Context(), e, task(okToolbox(t)))
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
	seedFromFixtures(f)
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
	seedFromFixtures(f)
	f.Fuzz(func(t *testing.T, body string) {
		e := openai.New(openai.Config{BaseURL: "http://fuzz.invalid/v1", Model: "m", MaxRetries: -1, MaxTurns: 2,
			HTTPClient: &http.Client{Transport: bodyTransport(body)}})
		tb := &fakeToolbox{ToolsFunc: testTools, CallFunc: func(context.Context, string, json.RawMessage) (agent.ToolResult, error) {
			return agent.ToolResult{Output: "ok"}, nil
		}}
		finals := 0
		_, err := e.Run(t.Context(), task(tb), func(ev agent.Event) {
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("event does not marshal: %v", err)
			}
			if ev.Type == agent.EventCompleted || ev.Type == agent.EventError || ev.Type == agent.EventApprovalRequired {
				finals++
			}
		})
		if err != nil || finals != 1 {
			t.Fatalf("err %v, %d final events", err, finals)
		}
	})
}

func seedFromFixtures(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.sse"))
	for _, file := range files {
		for _, r := range loadFixture(f, strings.TrimSuffix(filepath.Base(file), ".sse")) {
			f.Add(r.body)
		}
	}
}

type bodyTransport string

func (b bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(bufio.NewReader(strings.NewReader(string(b)))), Request: r,
	}, nil
}
