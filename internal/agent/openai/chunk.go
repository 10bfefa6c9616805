package openai

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/it0/it0/internal/agent"
)

// chunk is one streamed chat.completion.chunk (or an error object sent in its place).
type chunk struct {
	Choices []struct {
		Index        int     `json:"index"`
		Delta        delta   `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage    `json:"usage"`
	Error *apiError `json:"error"`
}

type delta struct {
	Content          *string         `json:"content"`
	ReasoningContent *string         `json:"reasoning_content"` // DeepSeek, Qwen
	Reasoning        *string         `json:"reasoning"`         // vLLM, OpenRouter
	ToolCalls        []toolCallDelta `json:"tool_calls"`
}

type toolCallDelta struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"` // a string fragment, or (some servers) an object
	} `json:"function"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// apiError is the error object servers send, in a body or mid-stream. Some send a bare string.
type apiError struct {
	Message string
	Type    string
}

func (e *apiError) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		e.Message = s
		return nil
	}
	var o struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	e.Message, e.Type = o.Message, o.Type
	return nil
}

func (e *apiError) text() string {
	msg := e.Message
	if msg == "" {
		msg = "unknown error"
	}
	if e.Type != "" {
		return e.Type + ": " + msg
	}
	return msg
}

// errorText extracts a readable message from an error body: {"error":{"message"}}, {"error":"…"},
// {"message"}, {"detail"}, or the start of the body itself.
func errorText(body []byte) string {
	var v struct {
		Error   *apiError       `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		switch {
		case v.Error != nil:
			return v.Error.text()
		case v.Message != "":
			return v.Message
		case len(v.Detail) > 0:
			var s string
			if json.Unmarshal(v.Detail, &s) == nil {
				return s
			}
			return string(v.Detail)
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return "no details"
	}
	return s
}

// callAcc accumulates one tool call across deltas.
type callAcc struct {
	index int
	id    string
	name  string
	args  strings.Builder
	obj   json.RawMessage // arguments sent as an object
}

func (c *callAcc) arguments() string {
	if c.obj != nil {
		return string(c.obj)
	}
	if strings.TrimSpace(c.args.String()) == "" {
		return "{}"
	}
	return c.args.String()
}

// reply accumulates one streamed reply.
type reply struct {
	text   strings.Builder
	calls  []*callAcc
	finish string
	usage  *usage
	done   bool // [DONE] seen
}

func newReply() *reply { return &reply{} }

// add folds one data payload into the reply and returns the text and thinking events it carries. It
// returns an *agent.ReplyError for an error object or a payload that is not JSON.
func (rep *reply) add(data []byte) ([]agent.Event, error) {
	var c chunk
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, &agent.ReplyError{Code: agent.CodeBadResponse, Message: fmt.Sprintf("a reply chunk is not JSON: %v", err)}
	}
	if c.Error != nil {
		return nil, &agent.ReplyError{Code: agent.CodeEngine, Message: c.Error.text()}
	}
	if c.Usage != nil {
		rep.usage = c.Usage
	}
	var evs []agent.Event
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue // we ask for one choice
		}
		evs = append(evs, rep.addDelta(ch.Delta)...)
		if f := deref(ch.FinishReason); f != "" {
			rep.finish = f
		}
	}
	return evs, nil
}

func (rep *reply) addDelta(d delta) []agent.Event {
	var evs []agent.Event
	for _, r := range []*string{d.ReasoningContent, d.Reasoning} {
		if s := deref(r); s != "" {
			evs = append(evs, agent.Event{Type: agent.EventThinking, Text: s})
		}
	}
	if s := deref(d.Content); s != "" {
		rep.text.WriteString(s)
		evs = append(evs, agent.Event{Type: agent.EventText, Text: s})
	}
	for _, tc := range d.ToolCalls {
		c := rep.callFor(tc)
		if c.name == "" {
			c.name = tc.Function.Name
		}
		args := tc.Function.Arguments
		var s string
		switch {
		case len(args) == 0 || string(args) == "null":
		case json.Unmarshal(args, &s) == nil:
			c.args.WriteString(s)
		default:
			c.obj = append(json.RawMessage(nil), args...)
		}
	}
	return evs
}

// callFor finds the call a delta continues. By index when there is one (unless it brings a new id for
// an index already used: a server numbering every call 0); else by id; else the last call.
func (rep *reply) callFor(tc toolCallDelta) *callAcc {
	if tc.Index != nil {
		for i := len(rep.calls) - 1; i >= 0; i-- {
			c := rep.calls[i]
			if c.index == *tc.Index {
				if tc.ID != "" && c.id != "" && tc.ID != c.id {
					break
				}
				if c.id == "" {
					c.id = tc.ID
				}
				return c
			}
		}
		return rep.newCall(*tc.Index, tc.ID)
	}
	if tc.ID != "" {
		for _, c := range rep.calls {
			if c.id == tc.ID {
				return c
			}
		}
		return rep.newCall(len(rep.calls), tc.ID)
	}
	if len(rep.calls) > 0 {
		return rep.calls[len(rep.calls)-1]
	}
	return rep.newCall(0, "")
}

func (rep *reply) newCall(index int, id string) *callAcc {
	c := &callAcc{index: index, id: id}
	rep.calls = append(rep.calls, c)
	return c
}
