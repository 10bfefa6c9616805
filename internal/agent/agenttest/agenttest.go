// Package agenttest has test helpers for agent engines: local servers that speak the Anthropic Messages and
// OpenAI chat-completions streaming wire formats and play a scripted conversation.
package agenttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Step is one model turn: some text, then (unless Command is empty) a run_command call on Server.
type Step struct{ Text, Server, Command string }

// OpsSteps is the conversation the engine tests play: check disk, restart nginx (needs an approval), try
// rm -rf / (refused), then finish.
var OpsSteps = []Step{
	{"Let me check the disk first.", "web-1", "df -h"},
	{"Disk is fine; nginx needs a restart.", "web-1", "systemctl restart nginx"},
	{"Now clean up everything.", "web-1", "rm -rf /"},
	{"Done: disk checked, nginx restarted, the wipe was refused.", "", ""},
}

// sse writes one Server-Sent Event.
func sse(w io.Writer, event string, data any) {
	b, _ := json.Marshal(data)
	if event != "" {
		fmt.Fprintf(w, "event: %s\n", event)
	}
	fmt.Fprintf(w, "data: %s\n\n", b)
}

// AnthropicServer answers POST /v1/messages in the Messages API's streaming wire format, choosing the step
// by how many tool results the conversation holds, and checking what a real server checks.
func AnthropicServer(t testing.TB, key string, steps []Step) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages" || r.Header.Get("x-api-key") != key || r.Header.Get("anthropic-version") != "2023-06-01" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"type":"error","error":{"type":"authentication_error","message":"bad request line or key"}}`)
			return
		}
		var req struct {
			Model    string                  `json:"model"`
			System   any                     `json:"system"`
			Stream   bool                    `json:"stream"`
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
		step := steps[min(results, len(steps)-1)]
		w.Header().Set("Content-Type", "text/event-stream")
		sse(w, "message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": fmt.Sprintf("msg_%d", results),
			"type": "message", "role": "assistant", "model": req.Model, "content": []any{}, "stop_reason": nil,
			"usage": map[string]int{"input_tokens": 100, "output_tokens": 1}}})
		sse(w, "content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]string{"type": "text", "text": ""}})
		sse(w, "ping", map[string]string{"type": "ping"})
		half := len(step.Text) / 2
		for _, part := range []string{step.Text[:half], step.Text[half:]} {
			sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]string{"type": "text_delta", "text": part}})
		}
		sse(w, "content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
		stop := "end_turn"
		if step.Command != "" {
			stop = "tool_use"
			sse(w, "content_block_start", map[string]any{"type": "content_block_start", "index": 1, "content_block": map[string]any{
				"type": "tool_use", "id": fmt.Sprintf("toolu_%d", results), "name": "run_command", "input": map[string]any{}}})
			args, _ := json.Marshal(map[string]string{"server": step.Server, "command": step.Command})
			for _, part := range []string{"", string(args[:7]), string(args[7:])} {
				sse(w, "content_block_delta", map[string]any{"type": "content_block_delta", "index": 1, "delta": map[string]string{"type": "input_json_delta", "partial_json": part}})
			}
			sse(w, "content_block_stop", map[string]any{"type": "content_block_stop", "index": 1})
		}
		sse(w, "message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
			"usage": map[string]int{"output_tokens": 20}})
		sse(w, "message_stop", map[string]string{"type": "message_stop"})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// OpenAIServer answers POST /v1/chat/completions in the OpenAI streaming wire format.
func OpenAIServer(t testing.TB, key string, steps []Step) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" {
			fmt.Fprint(w, `{"object":"list","data":[{"id":"qwen3","object":"model"}]}`)
			return
		}
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer "+key {
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
		step := steps[min(results, len(steps)-1)]
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(delta map[string]any, finish any) {
			sse(w, "", map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": req.Model,
				"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
		}
		fmt.Fprint(w, ": keep-alive\n\n")
		chunk(map[string]any{"role": "assistant", "content": step.Text}, nil)
		finish := "stop"
		if step.Command != "" {
			finish = "tool_calls"
			args, _ := json.Marshal(map[string]string{"server": step.Server, "command": step.Command})
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "id": fmt.Sprintf("call_%d", results), "type": "function",
				"function": map[string]string{"name": "run_command", "arguments": string(args[:9])}}}}, nil)
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "function": map[string]string{"arguments": string(args[9:])}}}}, nil)
		}
		chunk(map[string]any{}, finish)
		sse(w, "", map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": []any{},
			"usage": map[string]int{"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}
