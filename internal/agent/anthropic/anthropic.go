// Package anthropic runs tasks on the Claude Messages API with IT0's own agent loop: it streams each
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
	"slices"
	"time"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/it0/it0/internal/agent"
)

// errTruncated reports a reply stream that ended before message_stop.
var errTruncated = errors.New("the reply stream ended before message_stop")

// Engine is the Claude API engine. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	client sdk.Client
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
	return &Engine{cfg: cfg, log: log.With("component", "agent.anthropic", "model", cfg.Model), client: client}
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

// Run runs t's agent loop. See the package comment for how it ends.
//
// Approvals: when Toolbox.Call returns *agent.ApprovalRequired, Run emits approval_required and returns
// Outcome{Paused: true} with the assistant's tool_use turn open in State. The next run must bring a
// PendingResult for that call; tool calls of the same turn that had not run yet when the run paused are
// run then (each may pause again). Calls that can no longer run (the run failed or was cancelled) are
// answered with an error result so the transcript stays valid.
//
// Run returns an error without emitting only when t cannot run: its State does not decode, it has
// nothing to say, or a paused call has no PendingResult.
func (e *Engine) Run(ctx context.Context, t agent.Task, emit func(agent.Event)) (agent.Outcome, error) {
	st, err := decodeState(t.State)
	if err != nil {
		return agent.Outcome{}, err
	}
	var awaiting []string
	if st.Open != nil {
		awaiting = st.Open.Awaiting
	}
	if err := t.CheckResume("anthropic", st.Open != nil, awaiting); err != nil {
		return agent.Outcome{}, err
	}
	r := &run{e: e, t: t, st: st, emit: emit, price: agent.PriceFor(e.cfg.Prices, e.cfg.Model), tools: t.ToolsAllowed()}
	return r.loop(ctx), nil
}

// run is the state of one Run.
type run struct {
	e     *Engine
	t     agent.Task
	st    State
	emit  func(agent.Event)
	tools []agent.Tool
	price Price

	tokens int
	cost   float64
}

func (r *run) send(ev agent.Event) {
	ev.Time = time.Now().UTC()
	r.emit(ev)
}

// fail emits the final error event and returns the outcome, first answering open calls so the
// transcript stays valid.
func (r *run) fail(code, msg string) agent.Outcome {
	if r.st.Open != nil {
		r.closeOpen("not run: " + msg)
	}
	r.send(agent.Event{Type: agent.EventError, Code: code, Message: msg, TokensUsed: r.tokens, CostUSD: r.cost})
	return agent.Outcome{State: r.st.encode(), TokensUsed: r.tokens, CostUSD: r.cost}
}

func (r *run) loop(ctx context.Context) agent.Outcome {
	prompt := []Block(nil)
	if r.t.Prompt != "" {
		prompt = []Block{{Type: "text", Text: r.t.Prompt}}
	}
	if r.st.Open != nil {
		if paused, out, done := r.resolveOpen(ctx, prompt); paused || done {
			return out
		}
	} else {
		r.st.Messages = append(r.st.Messages, Message{Role: "user", Content: prompt})
	}
	maxTurns := cmp.Or(r.t.MaxTurns, r.e.cfg.MaxTurns)
	for turn := 1; ; turn++ {
		if ctx.Err() != nil {
			return r.fail(agent.CodeCancelled, "the run was cancelled")
		}
		msg, badInput, err := r.call(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return r.fail(agent.CodeCancelled, "the run was cancelled")
			}
			r.e.log.WarnContext(ctx, "anthropic request failed", "error", err)
			if errors.Is(err, errTruncated) {
				return r.fail(agent.CodeTruncated, err.Error())
			}
			return r.fail(agent.CodeEngine, apiMessage(err))
		}
		reply, bad := fromSDK(msg)
		for id := range bad {
			badInput[id] = true
		}
		r.st.Messages = append(r.st.Messages, reply)
		uses := reply.toolUses()
		if len(uses) > 0 {
			r.st.Open = &OpenTurn{}
		}
		if r.t.MaxBudgetUSD > 0 && r.cost >= r.t.MaxBudgetUSD {
			return r.fail(agent.CodeBudget, fmt.Sprintf("cost %.4f USD reached the budget of %.4f USD", r.cost, r.t.MaxBudgetUSD))
		}
		switch {
		case msg.StopReason == sdk.StopReasonMaxTokens:
			return r.fail(agent.CodeTruncated, fmt.Sprintf("the reply reached max_tokens (%d)", r.e.cfg.MaxTokens))
		case msg.StopReason == sdk.StopReasonRefusal:
			return r.fail(agent.CodeEngine, "the model refused to continue")
		case len(uses) > 0:
			// stop_reason tool_use, or a server that set another reason next to tool calls.
			if turn >= maxTurns {
				return r.fail(agent.CodeMaxTurns, fmt.Sprintf("reached the limit of %d turns", maxTurns))
			}
			for _, u := range uses {
				if badInput[u.ID] {
					r.answer(u, agent.ToolResult{Output: "error: the tool input was not valid JSON", IsError: true})
				}
			}
			if paused, out, done := r.resolveOpen(ctx, nil); paused || done {
				return out
			}
		case msg.StopReason == sdk.StopReasonPauseTurn:
			// A server-side tool loop paused; sending the conversation back continues it.
			if turn >= maxTurns {
				return r.fail(agent.CodeMaxTurns, fmt.Sprintf("reached the limit of %d turns", maxTurns))
			}
		default: // end_turn, stop_sequence, and whatever comes next
			summary := reply.text()
			r.send(agent.Event{Type: agent.EventCompleted, Summary: summary, TokensUsed: r.tokens, CostUSD: r.cost})
			return agent.Outcome{State: r.st.encode(), Summary: summary, TokensUsed: r.tokens, CostUSD: r.cost}
		}
	}
}

// call streams one reply, emitting text and thinking deltas and each tool_use once its input is
// complete. It returns the ids of tool_use blocks whose input did not parse.
func (r *run) call(ctx context.Context) (*sdk.Message, map[string]bool, error) {
	p := sdk.MessageNewParams{
		Model:     sdk.Model(r.e.cfg.Model),
		MaxTokens: int64(r.e.cfg.MaxTokens),
		Messages:  params(r.st.Messages),
		Tools:     toolParams(r.tools),
	}
	if r.t.SystemPrompt != "" {
		p.System = []sdk.TextBlockParam{{Text: r.t.SystemPrompt}}
	}
	if r.e.cfg.ThinkingBudget > 0 {
		p.Thinking = sdk.ThinkingConfigParamOfEnabled(int64(r.e.cfg.ThinkingBudget))
	}
	stream := r.e.client.Messages.NewStreaming(ctx, p)
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
					r.send(agent.Event{Type: agent.EventText, Text: ev.Delta.Text})
				}
			case "thinking_delta":
				if ev.Delta.Thinking != "" {
					r.send(agent.Event{Type: agent.EventThinking, Text: ev.Delta.Thinking})
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
				r.send(agent.Event{Type: agent.EventToolUse, Tool: cb.Name, ToolUseID: cb.ID, Input: input})
			}
		case "message_stop":
			stopped = true
		}
	}
	if err := stream.Err(); err != nil {
		r.account(msg.Usage)
		return nil, nil, err
	}
	r.account(msg.Usage)
	if !stopped {
		return nil, nil, errTruncated
	}
	return msg, badInput, nil
}

// account adds a reply's usage to the run's tokens and cost.
func (r *run) account(u sdk.Usage) {
	in, out := float64(u.InputTokens), float64(u.OutputTokens)
	cw, cr := float64(u.CacheCreationInputTokens), float64(u.CacheReadInputTokens)
	r.tokens += int(u.InputTokens + u.OutputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens)
	r.cost += (r.price.InputPerMTok*(in+1.25*cw+0.1*cr) + r.price.OutputPerMTok*out) / 1e6
}

// answer records the result of tool call u in the open turn and emits it.
func (r *run) answer(u Block, res agent.ToolResult) {
	r.st.Open.Results = append(r.st.Open.Results, Block{Type: "tool_result", ToolUseID: u.ID, Content: res.Output, IsError: res.IsError})
	r.send(agent.Event{Type: agent.EventToolResult, Tool: u.Name, ToolUseID: u.ID, Output: res.Output, IsError: res.IsError})
}

// resolveOpen answers every tool call of the open turn: from earlier results, from the task's pending
// results, or by running the tool. It then appends the results (and extra, the user's new words) as
// the next user message. paused reports a pause for approval; done reports that the run ended
// (cancelled, or a tool failed); out is the outcome in both cases.
func (r *run) resolveOpen(ctx context.Context, extra []Block) (paused bool, out agent.Outcome, done bool) {
	uses := r.st.Messages[len(r.st.Messages)-1].toolUses()
	answered := func(id string) bool {
		return slices.ContainsFunc(r.st.Open.Results, func(b Block) bool { return b.ToolUseID == id })
	}
	for _, u := range uses {
		if answered(u.ID) {
			continue
		}
		if i := slices.IndexFunc(r.t.PendingResults, func(p agent.PendingResult) bool { return p.ToolUseID == u.ID }); i >= 0 {
			r.st.Open.Awaiting = slices.DeleteFunc(r.st.Open.Awaiting, func(id string) bool { return id == u.ID })
			r.answer(u, r.t.PendingResults[i].Result)
			continue
		}
		if ctx.Err() != nil {
			return false, r.fail(agent.CodeCancelled, "the run was cancelled"), true
		}
		if !agent.Allowed(r.t.AllowedTools, u.Name) || !slices.ContainsFunc(r.tools, func(t agent.Tool) bool { return t.Name == u.Name }) {
			r.answer(u, agent.ToolResult{Output: fmt.Sprintf("error: tool %q is not available", u.Name), IsError: true})
			continue
		}
		res, err := r.t.Tools.Call(ctx, u.Name, u.Input)
		var ar *agent.ApprovalRequired
		switch {
		case errors.As(err, &ar):
			r.st.Open.Awaiting = append(r.st.Open.Awaiting, u.ID)
			level := ar.RiskLevel
			r.send(agent.Event{Type: agent.EventApprovalRequired, Tool: u.Name, ToolUseID: u.ID, Command: ar.Command, RiskLevel: &level, ApprovalID: ar.ApprovalID})
			return true, agent.Outcome{State: r.st.encode(), Paused: true, TokensUsed: r.tokens, CostUSD: r.cost}, false
		case err != nil && ctx.Err() != nil:
			return false, r.fail(agent.CodeCancelled, "the run was cancelled"), true
		case err != nil:
			r.e.log.WarnContext(ctx, "tool call failed", "tool", u.Name, "error", err)
			return false, r.fail(agent.CodeEngine, fmt.Sprintf("tool %s failed: %v", u.Name, err)), true
		}
		r.answer(u, res)
	}
	r.closeOpen("")
	if len(extra) > 0 {
		last := &r.st.Messages[len(r.st.Messages)-1]
		last.Content = append(last.Content, extra...)
	}
	return false, agent.Outcome{}, false
}

// closeOpen appends the open turn's results, in the order of its tool calls, as a user message. Calls
// still unanswered get an error result saying why (reason), without emitting.
func (r *run) closeOpen(reason string) {
	uses := r.st.Messages[len(r.st.Messages)-1].toolUses()
	msg := Message{Role: "user"}
	for _, u := range uses {
		i := slices.IndexFunc(r.st.Open.Results, func(b Block) bool { return b.ToolUseID == u.ID })
		if i >= 0 {
			msg.Content = append(msg.Content, r.st.Open.Results[i])
		} else {
			msg.Content = append(msg.Content, Block{Type: "tool_result", ToolUseID: u.ID, Content: reason, IsError: true})
		}
	}
	r.st.Messages = append(r.st.Messages, msg)
	r.st.Open = nil
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
