package anthropic

import (
	"encoding/json"
	"fmt"

	sdk "github.com/anthropics/anthropic-sdk-go"
)

// State is what Outcome.State holds for this engine: the conversation so far in the Messages API's own
// shape (so it can be read, replayed and audited), plus the tool calls of the last assistant turn that
// are still open when a run paused for approval.
//
//	{"messages":[{"role":"user","content":[{"type":"text","text":"check disk"}]},
//	             {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"run_command","input":{…}}]}],
//	 "open":{"results":[…tool_result blocks already run…],"awaiting":["toolu_1"]}}
//
// The system prompt and tools are not stored: each run passes them again.
type State struct {
	Messages []Message `json:"messages"`
	// Open is set when the last message is an assistant turn whose tool calls are not all answered.
	Open *OpenTurn `json:"open,omitempty"`
}

// OpenTurn is the unanswered part of the last assistant turn.
type OpenTurn struct {
	// Results answer some of the turn's tool calls already (those run before the pause).
	Results []Block `json:"results,omitempty"`
	// Awaiting lists the tool_use ids that wait for a human decision; the next run must bring a
	// PendingResult for each.
	Awaiting []string `json:"awaiting,omitempty"`
}

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

func decodeState(raw json.RawMessage) (State, error) {
	var st State
	if len(raw) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("anthropic: decode session state: %w", err)
	}
	if st.Open != nil && (len(st.Messages) == 0 || st.Messages[len(st.Messages)-1].Role != "assistant") {
		return st, fmt.Errorf("anthropic: session state has open tool calls but no assistant turn")
	}
	return st, nil
}

func (st State) encode() json.RawMessage {
	b, err := json.Marshal(st)
	if err != nil {
		panic(err) // strings and valid raw JSON only
	}
	return b
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
