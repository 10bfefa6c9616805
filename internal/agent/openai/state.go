package openai

import (
	"encoding/json"
	"errors"
	"fmt"
)

// State is what Outcome.State holds for this engine: the conversation in the Chat Completions wire
// shape (without the system message, which each run passes again), plus the tool calls of the last
// assistant message still open when a run paused for approval.
//
//	{"messages":[{"role":"user","content":"check disk"},
//	             {"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"run_command","arguments":"{…}"}}]}],
//	 "open":{"results":[…tool messages already run…],"awaiting":["call_1"]}}
//
// Reasoning text (reasoning_content) is not stored: DeepSeek rejects it in requests.
type State struct {
	Messages []Message `json:"messages"`
	Open     *OpenTurn `json:"open,omitempty"`
}

// OpenTurn is the unanswered part of the last assistant message.
type OpenTurn struct {
	// Results are "tool" messages already obtained for some of the calls.
	Results []Message `json:"results,omitempty"`
	// Awaiting lists tool call ids that wait for a human decision; the next run must bring a
	// PendingResult for each.
	Awaiting []string `json:"awaiting,omitempty"`
}

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

func decodeState(raw json.RawMessage) (State, error) {
	var st State
	if len(raw) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("openai: decode session state: %w", err)
	}
	if st.Open != nil && (len(st.Messages) == 0 || len(st.Messages[len(st.Messages)-1].ToolCalls) == 0) {
		return st, errors.New("openai: session state has open tool calls but no assistant message with calls")
	}
	return st, nil
}

func (st State) encode() json.RawMessage {
	b, err := json.Marshal(st)
	if err != nil {
		panic(err) // strings only
	}
	return b
}
