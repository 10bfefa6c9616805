// Package anthropic runs tasks on the Claude Messages API with IT0's own agent loop (agent.Loop, which
// this package drives with the Messages API's wire format): it streams each
// reply, calls the task's tools for the model's tool_use blocks, feeds the results back, and stops on
// end_turn, the turn limit, the cost budget, cancellation, an API failure, or a tool call that needs
// approval (the run pauses and the next run answers the open call).
package anthropic

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/it0/it0/internal/agent"
)

// errTruncated reports a reply stream that ended before message_stop.
var errTruncated = errors.New("the reply stream ended before message_stop")

// Engine is the Claude API engine. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	client sdk.Client
	loop   *agent.Loop[Message, Block]
}

var _ agent.Engine = (*Engine)(nil)

// New returns an engine for cfg, with defaults filled in. The SDK's own environment lookups
// (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, profiles) are disabled: only cfg counts.
func New(cfg Config) *Engine {
	cfg.Model = cmp.Or(cfg.Model, DefaultModel)
	cfg.BaseURL = cmp.Or(cfg.BaseURL, DefaultBaseURL)
	cfg.MaxTokens = cmp.Or(cfg.MaxTokens, DefaultMaxTokens)
	cfg.MaxTurns = cmp.Or(cfg.MaxTurns, DefaultMaxTurns)
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if len(cfg.Prices) == 0 {
		cfg.Prices = DefaultPrices()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := sdk.NewClient(
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(cfg.APIKey.Reveal()),
		option.WithBaseURL(cfg.BaseURL),
		option.WithHTTPClient(cfg.HTTPClient),
		option.WithMaxRetries(cfg.MaxRetries),
	)
	e := &Engine{cfg: cfg, client: client}
	e.loop = &agent.Loop[Message, Block]{
		Name:     "anthropic",
		Dialect:  dialect{e: e, price: agent.PriceFor(cfg.Prices, cfg.Model)},
		MaxTurns: cfg.MaxTurns,
		Log:      log.With("component", "agent.anthropic", "model", cfg.Model),
	}
	return e
}

// Name returns agent.EngineClaudeAPI.
func (e *Engine) Name() string { return agent.EngineClaudeAPI }

// Health reports whether an API key is configured; its error wraps agent.ErrUnavailable and names
// IT0_ANTHROPIC_API_KEY. It sends no request (a request costs money and rate limit).
func (e *Engine) Health(context.Context) error {
	if e.cfg.APIKey == "" {
		return fmt.Errorf("%w: no Anthropic API key (set IT0_ANTHROPIC_API_KEY)", agent.ErrUnavailable)
	}
	return nil
}

// Run runs t's agent loop (agent.Loop). See the package comment for how it ends.
func (e *Engine) Run(ctx context.Context, t agent.Task, emit func(agent.Event)) (agent.Outcome, error) {
	return e.loop.Run(ctx, t, emit)
}

// dialect is the Messages API's side of agent.Loop.
type dialect struct {
	e     *Engine
	price Price
}

var _ agent.Dialect[Message, Block] = dialect{}

// Send streams one reply, emitting text and thinking deltas and each tool_use once its input is
// complete.
func (d dialect) Send(ctx context.Context, req agent.Request[Message], emit func(agent.Event)) (agent.Reply[Message], error) {
	var rep agent.Reply[Message]
	msg, badInput, err := d.stream(ctx, req, emit, &rep)
	if err != nil {
		if errors.Is(err, errTruncated) {
			return rep, &agent.ReplyError{Code: agent.CodeTruncated, Message: err.Error()}
		}
		return rep, &agent.ReplyError{Code: agent.CodeEngine, Message: apiMessage(err)}
	}
	reply, bad := fromSDK(msg)
	for id := range bad {
		badInput[id] = true
	}
	rep.Message, rep.Text = reply, reply.text()
	for _, u := range reply.toolUses() {
		c := agent.Call{ID: u.ID, Name: u.Name, Input: u.Input}
		if badInput[u.ID] {
			c.Invalid = "error: the tool input was not valid JSON"
		}
		rep.Calls = append(rep.Calls, c)
	}
	switch msg.StopReason {
	case sdk.StopReasonMaxTokens:
		rep.Halt = &agent.ReplyError{Code: agent.CodeTruncated, Message: fmt.Sprintf("the reply reached max_tokens (%d)", d.e.cfg.MaxTokens)}
	case sdk.StopReasonRefusal:
		rep.Halt = &agent.ReplyError{Code: agent.CodeEngine, Message: "the model refused to continue"}
	case sdk.StopReasonPauseTurn:
		// A server-side tool loop paused; sending the conversation back continues it.
		rep.Continue = true
	}
	return rep, nil
}

// stream sends req and accumulates the streamed reply, adding its usage to rep. It returns the ids of
// tool_use blocks whose input did not parse.
func (d dialect) stream(ctx context.Context, req agent.Request[Message], emit func(agent.Event), rep *agent.Reply[Message]) (*sdk.Message, map[string]bool, error) {
	p := sdk.MessageNewParams{
		Model:     sdk.Model(d.e.cfg.Model),
		MaxTokens: int64(d.e.cfg.MaxTokens),
		Messages:  params(req.Messages),
		Tools:     toolParams(req.Tools),
	}
	if req.System != "" {
		p.System = []sdk.TextBlockParam{{Text: req.System}}
	}
	if d.e.cfg.ThinkingBudget > 0 {
		p.Thinking = sdk.ThinkingConfigParamOfEnabled(int64(d.e.cfg.ThinkingBudget))
	}
	stream := d.e.client.Messages.NewStreaming(ctx, p)
	defer stream.Close()
	msg := &sdk.Message{}
	badInput := map[string]bool{}
	stopped := false
	for stream.Next() {
		ev := stream.Current()
		if err := msg.Accumulate(ev); err != nil {
			return nil, nil, fmt.Errorf("bad stream: %w", err)
		}
		switch ev.Type {
		case "content_block_delta":
			switch ev.Delta.Type {
			case "text_delta":
				if ev.Delta.Text != "" {
					emit(agent.Event{Type: agent.EventText, Text: ev.Delta.Text})
				}
			case "thinking_delta":
				if ev.Delta.Thinking != "" {
					emit(agent.Event{Type: agent.EventThinking, Text: ev.Delta.Thinking})
				}
			}
		case "content_block_stop":
			cb := msg.Content[ev.Index] // Accumulate checked the index
			if cb.Type == "tool_use" {
				input := json.RawMessage(cmp.Or(string(cb.Input), "{}"))
				if !json.Valid(input) {
					badInput[cb.ID] = true
					input, _ = json.Marshal(string(cb.Input))
				}
				emit(agent.Event{Type: agent.EventToolUse, Tool: cb.Name, ToolUseID: cb.ID, Input: input})
			}
		case "message_stop":
			stopped = true
		}
	}
	d.account(rep, msg.Usage)
	if err := stream.Err(); err != nil {
		return nil, nil, err
	}
	if !stopped {
		return nil, nil, errTruncated
	}
	return msg, badInput, nil
}

// account adds a reply's usage to rep's tokens and cost.
func (d dialect) account(rep *agent.Reply[Message], u sdk.Usage) {
	in, out := float64(u.InputTokens), float64(u.OutputTokens)
	cw, cr := float64(u.CacheCreationInputTokens), float64(u.CacheReadInputTokens)
	rep.Tokens += int(u.InputTokens + u.OutputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens)
	rep.CostUSD += (d.price.InputPerMTok*(in+1.25*cw+0.1*cr) + d.price.OutputPerMTok*out) / 1e6
}

// toolParams converts IT0's tools to the API's. A schema that does not decode still yields an
// object schema, so one bad tool does not break the run.
func toolParams(tools []agent.Tool) []sdk.ToolUnionParam {
	out := make([]sdk.ToolUnionParam, 0, len(tools))
	for _, t := range tools {
		var schema map[string]any
		_ = json.Unmarshal(t.InputSchema, &schema)
		in := sdk.ToolInputSchemaParam{Properties: schema["properties"], ExtraFields: map[string]any{}}
		if req, ok := schema["required"].([]any); ok {
			for _, r := range req {
				if s, ok := r.(string); ok {
					in.Required = append(in.Required, s)
				}
			}
		}
		for k, v := range schema {
			if k != "properties" && k != "required" && k != "type" {
				in.ExtraFields[k] = v
			}
		}
		out = append(out, sdk.ToolUnionParam{OfTool: &sdk.ToolParam{Name: t.Name, Description: sdk.String(t.Description), InputSchema: in}})
	}
	return out
}

// apiMessage returns the API's own error message ("overloaded_error: Overloaded") when err carries
// one, else err's text. Neither contains the key: the SDK's error text names only method, URL and body.
func apiMessage(err error) string {
	var apiErr *sdk.Error
	if errors.As(err, &apiErr) {
		var body struct {
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal([]byte(apiErr.RawJSON()), &body) == nil && body.Error.Message != "" {
			msg := body.Error.Type + ": " + body.Error.Message
			if apiErr.StatusCode != 0 && apiErr.StatusCode != http.StatusOK {
				msg = fmt.Sprintf("HTTP %d %s", apiErr.StatusCode, msg)
			}
			return msg
		}
	}
	return err.Error()
}
