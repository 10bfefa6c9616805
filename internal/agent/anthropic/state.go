package anthropic

import (
	"encoding/json"
	"errors"

	sdk "github.com/anthropics/anthropic-sdk-go"

	"github.com/it0/it0/internal/agent"
)

// State is what Outcome.State holds for this engine (agent.Transcript): the conversation so far in the
// Messages API's own shape (so it can be read, replayed and audited), plus the tool calls of the last
// assistant turn that are still open when a run paused for approval.
//
//	{"messages":[{"role":"user","content":[{"type":"text","text":"check disk"}]},
//	             {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"run_command","input":{…}}]}],
//	 "open":{"results":[…tool_result blocks already run…],"awaiting":["toolu_1"]}}
//
// The system prompt and tools are not stored: each run passes them again.
type State = agent.Transcript[Message, Block]

// OpenTurn is the unanswered part of the last assistant turn: tool_result blocks already obtained, and
// the tool_use ids awaiting a decision.
type OpenTurn = agent.OpenTurn[Block]

// Message is one turn of the conversation.
type Message struct {
	Role    string  `json:"role"` // "user" or "assistant"
	Content []Block `json:"content"`
}

// Block is one content block, in the Messages API's wire shape.
type Block struct {
	Type      string          `json:"type"` // text, thinking, redacted_thinking, tool_use, tool_result
	Text      string          `json:"text,omitempty"`
	Thinking  string          `json:"thinking,omitempty"`
	Signature string          `json:"signature,omitempty"`
	Data      string          `json:"data,omitempty"` // redacted_thinking
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   string          `json:"content,omitempty"` // tool_result
	IsError   bool            `json:"is_error,omitempty"`
}

// Calls returns the tool_use blocks of m as calls.
func (dialect) Calls(m Message) []agent.Call {
	var out []agent.Call
	for _, u := range m.toolUses() {
		out = append(out, agent.Call{ID: u.ID, Name: u.Name, Input: u.Input})
	}
	return out
}

// Result returns the tool_result block answering c.
func (dialect) Result(c agent.Call, res agent.ToolResult) Block {
	return Block{Type: "tool_result", ToolUseID: c.ID, Content: res.Output, IsError: res.IsError}
}

// ResultID returns the tool_use id b answers.
func (dialect) ResultID(b Block) string { return b.ToolUseID }

// Append adds one user message holding the results, then the prompt as a text block.
func (dialect) Append(msgs []Message, results []Block, prompt string) []Message {
	m := Message{Role: "user", Content: results}
	if prompt != "" {
		m.Content = append(m.Content, Block{Type: "text", Text: prompt})
	}
	return append(msgs, m)
}

// CheckOpen requires an assistant turn last.
func (dialect) CheckOpen(msgs []Message) error {
	if len(msgs) == 0 || msgs[len(msgs)-1].Role != "assistant" {
		return errors.New("session state has open tool calls but no assistant turn")
	}
	return nil
}

// toolUses returns the tool_use blocks of m.
func (m Message) toolUses() []Block {
	var out []Block
	for _, b := range m.Content {
		if b.Type == "tool_use" {
			out = append(out, b)
		}
	}
	return out
}

// text joins the text blocks of m.
func (m Message) text() string {
	s := ""
	for _, b := range m.Content {
		if b.Type == "text" {
			s += b.Text
		}
	}
	return s
}

// params converts the transcript to the SDK's request messages.
func params(msgs []Message) []sdk.MessageParam {
	out := make([]sdk.MessageParam, 0, len(msgs))
	for _, m := range msgs {
		blocks := make([]sdk.ContentBlockParamUnion, 0, len(m.Content))
		for _, b := range m.Content {
			switch b.Type {
			case "text":
				blocks = append(blocks, sdk.NewTextBlock(b.Text))
			case "thinking":
				blocks = append(blocks, sdk.NewThinkingBlock(b.Signature, b.Thinking))
			case "redacted_thinking":
				blocks = append(blocks, sdk.NewRedactedThinkingBlock(b.Data))
			case "tool_use":
				blocks = append(blocks, sdk.NewToolUseBlock(b.ID, b.Input, b.Name))
			case "tool_result":
				blocks = append(blocks, sdk.NewToolResultBlock(b.ToolUseID, b.Content, b.IsError))
			}
		}
		if m.Role == "assistant" {
			out = append(out, sdk.NewAssistantMessage(blocks...))
		} else {
			out = append(out, sdk.NewUserMessage(blocks...))
		}
	}
	return out
}

// fromSDK converts a streamed reply to a transcript message. Tool inputs that are not valid JSON
// (a stream cut short) become {} so the transcript stays sendable; the caller refuses such calls.
func fromSDK(msg *sdk.Message) (Message, map[string]bool) {
	m := Message{Role: "assistant"}
	badInput := map[string]bool{}
	for _, c := range msg.Content {
		switch c.Type {
		case "text":
			m.Content = append(m.Content, Block{Type: "text", Text: c.Text})
		case "thinking":
			m.Content = append(m.Content, Block{Type: "thinking", Thinking: c.Thinking, Signature: c.Signature})
		case "redacted_thinking":
			m.Content = append(m.Content, Block{Type: "redacted_thinking", Data: c.Data})
		case "tool_use":
			input := json.RawMessage(c.Input)
			if len(input) == 0 {
				input = json.RawMessage("{}")
			}
			if !json.Valid(input) {
				badInput[c.ID] = true
				input = json.RawMessage("{}")
			}
			m.Content = append(m.Content, Block{Type: "tool_use", ID: c.ID, Name: c.Name, Input: input})
		}
	}
	return m, badInput
}
