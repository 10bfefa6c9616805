package agenttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
)

// Toolbox is a hand-written agent.Toolbox whose behaviour each test sets.
type Toolbox struct {
	ToolsFunc func() []agent.Tool
	CallFunc  func(ctx context.Context, name string, input json.RawMessage) (agent.ToolResult, error)
}

var _ agent.Toolbox = (*Toolbox)(nil)

// Tools calls ToolsFunc.
func (f *Toolbox) Tools() []agent.Tool { return f.ToolsFunc() }

// Call calls CallFunc.
func (f *Toolbox) Call(ctx context.Context, name string, input json.RawMessage) (agent.ToolResult, error) {
	return f.CallFunc(ctx, name, input)
}

// Tools returns the tools the engine tests offer: run_command (with a strict schema) and list_servers.
func Tools() []agent.Tool {
	return []agent.Tool{
		{Name: "run_command", Description: "Run a shell command on a managed server", InputSchema: json.RawMessage(`{"type":"object","properties":{"server":{"type":"string"},"command":{"type":"string"}},"required":["server","command"],"additionalProperties":false}`)},
		{Name: "list_servers", Description: "List servers", InputSchema: json.RawMessage(`{"type":"object","properties":{}}`)},
	}
}

// OKToolbox returns a Toolbox whose calls succeed, reporting the command and server of run_command
// input (which must decode).
func OKToolbox(t *testing.T) *Toolbox {
	return &Toolbox{
		ToolsFunc: Tools,
		CallFunc: func(_ context.Context, name string, input json.RawMessage) (agent.ToolResult, error) {
			var in struct{ Server, Command string }
			if err := json.Unmarshal(input, &in); err != nil {
				t.Errorf("tool input %s: %v", input, err)
			}
			return agent.ToolResult{Output: fmt.Sprintf("ran %q on %s: /dev/sda1 40G 33G 83%%", in.Command, in.Server)}, nil
		},
	}
}

// Task returns the task the engine tests run: check disk on web-1, with a system prompt and tb.
func Task(tb agent.Toolbox) agent.Task {
	return agent.Task{SessionID: "s1", Prompt: "check disk on web-1", SystemPrompt: "You are IT0, an ops agent.", Tools: tb}
}

// Response is one canned HTTP response of a fixture.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// LoadFixture reads testdata/<name>.sse: responses in the API's wire format, each after a line
// "### <status> [<header>: <value>]".
func LoadFixture(t testing.TB, name string) []Response {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".sse"))
	if err != nil {
		t.Fatal(err)
	}
	var out []Response
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
		out = append(out, Response{Status: status, Header: h, Body: body})
	}
	return out
}

// SeedFromFixtures adds the body of every response of every testdata/*.sse fixture to f's corpus.
func SeedFromFixtures(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.sse"))
	for _, file := range files {
		for _, r := range LoadFixture(f, strings.TrimSuffix(filepath.Base(file), ".sse")) {
			f.Add(r.Body)
		}
	}
}

// Request is what an APIServer saw.
type Request struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

// APIServer replays responses in order and records the requests, whose bodies must be JSON. A 200
// response without a Content-Type is sent as text/event-stream, others as application/json. A request
// beyond the responses fails the test and gets a 400 (which no engine retries).
type APIServer struct {
	t         testing.TB
	mu        sync.Mutex
	responses []Response
	requests  []Request
	*httptest.Server
}

// NewAPIServer starts an APIServer on loopback, closed when the test ends.
func NewAPIServer(t testing.TB, responses []Response) *APIServer {
	s := &APIServer{t: t, responses: responses}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *APIServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		s.t.Errorf("request body is not JSON: %v", err)
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: m})
	if len(s.responses) == 0 {
		s.mu.Unlock()
		s.t.Errorf("unexpected request %d", len(s.requests))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"no more fixtures"}}`)
		return
	}
	resp := s.responses[0]
	s.responses = s.responses[1:]
	s.mu.Unlock()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	if w.Header().Get("Content-Type") == "" {
		if resp.Status == http.StatusOK {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
	}
	w.WriteHeader(resp.Status)
	io.WriteString(w, resp.Body)
}

// Recorded returns the requests seen so far.
func (s *APIServer) Recorded() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Collect runs task on e and returns its events with times cleared. It fails the test when Run
// returns an error, an event has no time, no event came, or a final-type event came before the last.
func Collect(t *testing.T, ctx context.Context, e agent.Engine, task agent.Task) ([]agent.Event, agent.Outcome) {
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
		if final(ev) {
			t.Errorf("final-type event %s before the end", ev.Type)
		}
	}
	return evs, out
}

func final(ev agent.Event) bool {
	return ev.Type == agent.EventCompleted || ev.Type == agent.EventError || ev.Type == agent.EventApprovalRequired
}

// Golden compares one run's request bodies, events and outcome, as JSON lines, with
// testdata/<name>.golden; with update it rewrites the file instead.
func Golden(t *testing.T, name string, update bool, evs []agent.Event, out agent.Outcome, reqs []Request) {
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
	if update {
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

// BodyTransport answers every request with 200 and itself as an event stream.
type BodyTransport string

// RoundTrip implements http.RoundTripper.
func (b BodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(bufio.NewReader(strings.NewReader(string(b)))), Request: r,
	}, nil
}

// CheckFuzzRun runs Task on e with tools that succeed and fails the test unless Run returns no error,
// every event marshals, and exactly one final event (completed, error, approval_required) came. It is
// the body of the engines' FuzzStream: e answers with the fuzzed bytes (BodyTransport).
func CheckFuzzRun(t *testing.T, e agent.Engine) {
	tb := &Toolbox{ToolsFunc: Tools, CallFunc: func(context.Context, string, json.RawMessage) (agent.ToolResult, error) {
		return agent.ToolResult{Output: "ok"}, nil
	}}
	finals := 0
	_, err := e.Run(t.Context(), Task(tb), func(ev agent.Event) {
		if _, err := json.Marshal(ev); err != nil {
			t.Fatalf("event does not marshal: %v", err)
		}
		if final(ev) {
			finals++
		}
	})
	if err != nil || finals != 1 {
		t.Fatalf("err %v, %d final events", err, finals)
	}
}

// GoldenCase is one row of an engine's TestRunGolden.
type GoldenCase struct {
	// Name names the fixture testdata/<Name>.sse and the golden file testdata/<Name>.golden.
	Name string
	// Mutate changes Task(OKToolbox(t)) before the run; nil for no change.
	Mutate    func(*agent.Task)
	WantFinal agent.EventType
	WantCode  string
	WantReqs  int
}

// Run serves tc's fixture, runs the task on the engine newEngine returns for that server, and checks
// the final event, the number of requests, each request (checkRequest), the outcome's state
// (checkState), and the golden file (rewritten with update).
func (tc GoldenCase) Run(t *testing.T, update bool, newEngine func(*APIServer) agent.Engine,
	checkRequest func(*testing.T, Request), checkState func(*testing.T, json.RawMessage)) {
	t.Helper()
	srv := NewAPIServer(t, LoadFixture(t, tc.Name))
	tk := Task(OKToolbox(t))
	if tc.Mutate != nil {
		tc.Mutate(&tk)
	}
	evs, out := Collect(t, t.Context(), newEngine(srv), tk)
	last := evs[len(evs)-1]
	if last.Type != tc.WantFinal || last.Code != tc.WantCode {
		t.Errorf("final = %s/%s %q, want %s/%s", last.Type, last.Code, last.Message, tc.WantFinal, tc.WantCode)
	}
	reqs := srv.Recorded()
	if len(reqs) != tc.WantReqs {
		t.Errorf("%d requests, want %d", len(reqs), tc.WantReqs)
	}
	for _, r := range reqs {
		checkRequest(t, r)
	}
	checkState(t, out.State)
	Golden(t, tc.Name, update, evs, out, reqs)
}

// CheckRefused runs task on e and fails the test unless Run returns an error containing want without
// emitting any event.
func CheckRefused(t *testing.T, e agent.Engine, task agent.Task, want string) {
	t.Helper()
	_, err := e.Run(t.Context(), task, func(ev agent.Event) { t.Errorf("emitted %+v", ev) })
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// ApprovalToolbox returns a Toolbox that appends each run_command's command to *ran, asks for approval
// approvalID at level for systemctl commands, and answers the others with a disk line.
func ApprovalToolbox(ran *[]string, approvalID string, level int) *Toolbox {
	return &Toolbox{ToolsFunc: Tools, CallFunc: func(_ context.Context, name string, input json.RawMessage) (agent.ToolResult, error) {
		var in struct{ Command string }
		_ = json.Unmarshal(input, &in)
		*ran = append(*ran, in.Command)
		if strings.HasPrefix(in.Command, "systemctl") {
			return agent.ToolResult{}, fmt.Errorf("guard: %w", &agent.ApprovalRequired{ApprovalID: approvalID, Command: in.Command, RiskLevel: level})
		}
		return agent.ToolResult{Output: "/dev/sda1 41%"}, nil
	}}
}

// Resume returns the task that continues a paused run (out) with the decisions pending.
func Resume(tb agent.Toolbox, out agent.Outcome, pending ...agent.PendingResult) agent.Task {
	t := Task(tb)
	t.Prompt = ""
	t.State = out.State
	t.PendingResults = pending
	return t
}

// CancelToolbox returns a Toolbox whose calls cancel the run (cancel) and fail with its error.
func CancelToolbox(cancel context.CancelFunc) *Toolbox {
	return &Toolbox{ToolsFunc: Tools, CallFunc: func(ctx context.Context, _ string, _ json.RawMessage) (agent.ToolResult, error) {
		cancel()
		<-ctx.Done()
		return agent.ToolResult{}, ctx.Err()
	}}
}

// CheckRedacted fails the test when secret shows in cfg or key logged with slog, formatted with fmt
// (%v, %+v, %#v, %s) or marshalled to JSON.
func CheckRedacted(t *testing.T, secret string, cfg, key any) {
	t.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "key", key, "cfg", cfg)
	b, _ := json.Marshal(cfg)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, key) + string(b)
	if strings.Contains(out, secret) {
		t.Fatalf("key leaked: %s", out)
	}
}
