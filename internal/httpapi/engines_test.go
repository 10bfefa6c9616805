package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/anthropic"
	"github.com/it0/it0/internal/agent/openai"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/store/storetest"
)

// The model's side of the ops conversation every engine test plays: check disk, restart nginx (needs an
// approval), try rm -rf / (refused), then finish.
var modelSteps = []struct{ text, command string }{
	{"Let me check the disk first.", "df -h"},
	{"Disk is fine; nginx needs a restart.", "systemctl restart nginx"},
	{"Now clean up everything.", "rm -rf /"},
	{"Done: disk checked, nginx restarted, the wipe was refused.", ""},
}

// sse writes one Server-Sent Event.
func sse(w io.Writer, event string, data any) {
	b, _ := json.Marshal(data)
	if event != "" {
		fmt.Fprintf(w, "event: %s\n", event)
	}
	fmt.Fprintf(w, "data: %s\n\n", b)
}

// anthropicServer answers POST /v1/messages in the Messages API's streaming wire format, choosing the step
// by how many tool results the conversation holds, and checking what a real server checks.
func anthropicServer(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages" || r.Header.Get("x-api-key") != "test-key" || r.Header.Get("anthropic-version") != "2023-06-01" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"type":"error","error":{"type":"authentication_error","message":"bad request line or key"}}`)
			return
		}
		var req struct {
			Model    string `json:"model"`
			System   any    `json:"system"`
			Stream   bool   `json:"stream"`
			Tools    []struct{ Name string } `json:"tools"`
			Messages []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Stream || req.System == nil || len(req.Tools) == 0 {
			t.Errorf("bad Anthropic request: %v %+v", err, req)
		}
		results := 0
		for _, m := range req.Messages {
			results += strings.Count(string(m.Content), `"type":"tool_result"`)
		}
		step := modelSteps[min(results, len(modelSteps)-1)]
		w.Header().Set("Content-Type", "text/event-stream")
		sse(w, "message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": fmt.Sprintf("msg_%d", results),
			"type": "message", "role": "assistant", "model": req.Model, "content": []any{}, "stop_reason": nil,
			"usage": map[string]int{"input_tokens": 100, "output_tokens": 1}}})
		sse(w, "content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]string{"type": "text", "text": ""}})
		sse(w, "ping", map[string]string{"type": "ping"})
		half := len(step.text) / 2
		for _, part := range []string{step.text[:half], step.text[half:]} {
			sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]string{"type": "text_delta", "text": part}})
		}
		sse(w, "content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
		stop := "end_turn"
		if step.command != "" {
			stop = "tool_use"
			sse(w, "content_block_start", map[string]any{"type": "content_block_start", "index": 1, "content_block": map[string]any{
				"type": "tool_use", "id": fmt.Sprintf("toolu_%d", results), "name": "run_command", "input": map[string]any{}}})
			args, _ := json.Marshal(map[string]string{"server": "web-1", "command": step.command})
			for _, part := range []string{"", string(args[:7]), string(args[7:])} {
				sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": 1, "delta": map[string]string{"type": "input_json_delta", "partial_json": part}})
			}
			sse(w, "content_block_stop", map[string]any{"type": "content_block_stop", "index": 1})
		}
		sse(w, "message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
			"usage": map[string]int{"output_tokens": 20}})
		sse(w, "message_stop", map[string]string{"type": "message_stop"})
	}))
}

// openaiServer answers POST /v1/chat/completions in the OpenAI streaming wire format.
func openaiServer(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			fmt.Fprint(w, `{"object":"list","data":[{"id":"qwen3","object":"model"}]}`)
			return
		}
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer test-key" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"message":"bad path or key","type":"invalid_request_error"}}`)
			return
		}
		var req struct {
			Model    string `json:"model"`
			Stream   bool   `json:"stream"`
			Tools    []any  `json:"tools"`
			Messages []struct {
				Role string `json:"role"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Stream || len(req.Tools) == 0 || req.Messages[0].Role != "system" {
			t.Errorf("bad OpenAI request: %v %+v", err, req)
		}
		results := 0
		for _, m := range req.Messages {
			if m.Role == "tool" {
				results++
			}
		}
		step := modelSteps[min(results, len(modelSteps)-1)]
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(delta map[string]any, finish any) {
			sse(w, "", map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": req.Model,
				"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
		}
		fmt.Fprint(w, ": keep-alive\n\n")
		chunk(map[string]any{"role": "assistant", "content": step.text}, nil)
		finish := "stop"
		if step.command != "" {
			finish = "tool_calls"
			args, _ := json.Marshal(map[string]string{"server": "web-1", "command": step.command})
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "id": fmt.Sprintf("call_%d", results), "type": "function",
				"function": map[string]string{"name": "run_command", "arguments": string(args[:9])}}}}, nil)
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "function": map[string]string{"arguments": string(args[9:])}}}}, nil)
		}
		chunk(map[string]any{}, finish)
		sse(w, "", map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": []any{},
			"usage": map[string]int{"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
}

// TestEnginesEndToEnd runs the same conversation on each API engine through a session against a real
// sshd: df -h runs, systemctl restart nginx waits for an approval and then runs once, rm -rf / is refused,
// and the WebSocket client sees the events in order.
func TestEnginesEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		engine func(url string) agent.Engine
		server func(*testing.T) *httptest.Server
	}{
		{"claude_api", func(url string) agent.Engine {
			return anthropic.New(anthropic.Config{APIKey: "test-key", BaseURL: url, Model: "claude-test"})
		}, anthropicServer},
		{"openai_compatible", func(url string) agent.Engine {
			return openai.New(openai.Config{APIKey: "test-key", BaseURL: url + "/v1", Model: "qwen3"})
		}, openaiServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			model := tc.server(t)
			defer model.Close()
			target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.12", Password: true})
			b := setupWith(t, storetest.OpenSQLite, tc.engine(model.URL))
			_, tok := b.newTenant("e2e")
			f := &invFixture{testBundle: b, tok: tok}
			r := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "pw", "type": "ssh_password", "secret": target.Password.Reveal()})
			f.credID = r.body["id"].(string)
			f.server("web-1", target, map[string]any{"ssh_user": target.PasswordUser})
			af := &agentFixture{invFixture: f, target: target}

			r = b.do("POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "检查磁盘并处理 nginx", "engine": tc.name})
			if r.status != 201 {
				t.Fatalf("start: %d %s", r.status, r.raw)
			}
			sid := r.body["session_id"].(string)
			evs := af.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired || e.Type == agent.EventError })
			if got := toolTypes(evs); got != "tool_use,tool_result,tool_use,approval_required" {
				t.Fatalf("before approval: %s (all: %s)", got, types(evs))
			}
			if res := evs[indexOf(evs, agent.EventToolResult)]; !strings.Contains(res.Output, "Filesystem") {
				t.Errorf("df -h result: %+v", res)
			}
			ap := evs[len(evs)-1]
			if r := b.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", tok, nil); r.status != 200 {
				t.Fatalf("approve: %d %s", r.status, r.raw)
			}
			evs = af.watch(t, sid, ap.Seq, func(e agent.Event) bool { return e.Type == agent.EventCompleted || e.Type == agent.EventError })
			if got := toolTypes(evs); got != "tool_result,tool_use,tool_result,completed" {
				t.Fatalf("after approval: %s (all: %s)", got, types(evs))
			}
			var blocked agent.Event
			for _, e := range evs {
				if e.Type == agent.EventToolResult {
					blocked = e
				}
			}
			if !blocked.IsError || !strings.Contains(blocked.Output, "BLOCKED") {
				t.Errorf("rm -rf / result: %+v", blocked)
			}
			done := evs[len(evs)-1]
			if !strings.Contains(done.Summary, "Done") || done.TokensUsed == 0 {
				t.Errorf("completed: %+v", done)
			}
			recs := b.do("GET", "/api/v1/inventory/command-records?limit=100", tok, nil).raw
			if n := strings.Count(recs, `"command":"systemctl restart nginx"`); n != 1 {
				t.Errorf("restart recorded %d times, want once", n)
			}
			if strings.Count(recs, `"command":"rm -rf /","risk_level":3,"status":"blocked"`) != 1 {
				t.Errorf("rm -rf / not recorded as blocked: %s", recs)
			}
		})
	}
}

// toolTypes lists the event types other than streamed text and thinking.
func toolTypes(evs []agent.Event) string {
	var s []string
	for _, e := range evs {
		if e.Type != agent.EventText && e.Type != agent.EventThinking {
			s = append(s, string(e.Type))
		}
	}
	return strings.Join(s, ",")
}

func indexOf(evs []agent.Event, typ agent.EventType) int {
	for i, e := range evs {
		if e.Type == typ {
			return i
		}
	}
	return -1
}
