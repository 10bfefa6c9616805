package openai

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/it0/it0/internal/agent"
)

// State is what Outcome.State holds for this engine (agent.Transcript): the conversation in the Chat
// Completions wire shape (without the system message, which each run passes again), plus the tool calls
// of the last assistant message still open when a run paused for approval.
//
//	{"messages":[{"role":"user","content":"check disk"},
//	             {"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"run_command","arguments":"{…}"}}]}],
//	 "open":{"results":[…tool messages already run…],"awaiting":["call_1"]}}
//
// Reasoning text (reasoning_content) is not stored: DeepSeek rejects it in requests.
type State = agent.Transcript[Message, Message]

// OpenTurn is the unanswered part of the last assistant message: "tool" messages already obtained for
// some of the calls, and the call ids awaiting a decision.
type OpenTurn = agent.OpenTurn[Message]

// Message is one chat message.
type Message struct {
	Role       string     `json:"role"` // system, user, assistant, tool
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// ToolCall is one function call of an assistant message.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"` // "function"
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and carries its arguments as a JSON string (as the model wrote it).
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Calls returns m's tool calls; those whose arguments are not valid JSON are not to be run.
func (dialect) Calls(m Message) []agent.Call {
	var out []agent.Call
	for _, tc := range m.ToolCalls {
		c := agent.Call{ID: tc.ID, Name: tc.Function.Name, Input: json.RawMessage(tc.Function.Arguments)}
		if !json.Valid(c.Input) {
			c.Input, c.Invalid = nil, invalidArgs
		}
		out = append(out, c)
	}
	return out
}

// Result returns the "tool" message answering c.
func (dialect) Result(c agent.Call, res agent.ToolResult) Message {
	content := res.Output
	if res.IsError && !strings.HasPrefix(content, "error") {
		// Chat Completions has no is_error flag: say it in the content.
		content = "error: " + content
	}
	return Message{Role: "tool", ToolCallID: c.ID, Content: content}
}

// ResultID returns the call id m answers.
func (dialect) ResultID(m Message) string { return m.ToolCallID }

// Append adds the "tool" messages, then the prompt as a user message.
func (dialect) Append(msgs, results []Message, prompt string) []Message {
	msgs = append(msgs, results...)
	if prompt != "" {
		msgs = append(msgs, Message{Role: "user", Content: prompt})
	}
	return msgs
}

// CheckOpen requires an assistant message with tool calls last.
func (dialect) CheckOpen(msgs []Message) error {
	if len(msgs) == 0 || len(msgs[len(msgs)-1].ToolCalls) == 0 {
		return errors.New("session state has open tool calls but no assistant message with calls")
	}
	return nil
}
