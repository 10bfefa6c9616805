// Package openai runs tasks on any OpenAI-compatible Chat Completions server (Ollama, vLLM, llama.cpp,
// DeepSeek, Qwen…) with IT0's own agent loop over `POST {base}/chat/completions` with `stream: true`.
// It uses plain net/http and its own event-stream reader rather than an SDK: the wire format is small,
// and "compatible" servers differ in ways an SDK for OpenAI's own API does not tolerate (missing
// indexes or ids on tool calls, arguments sent as objects, reasoning_content, errors as plain strings).
package openai

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/it0/it0/internal/agent"
)

// Engine is the OpenAI-compatible engine. It is safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger
}

var _ agent.Engine = (*Engine)(nil)

// New returns an engine for cfg, with defaults filled in.
func New(cfg Config) *Engine {
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	cfg.MaxTurns = cmp.Or(cfg.MaxTurns, DefaultMaxTurns)
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	cfg.RetryBaseDelay = cmp.Or(cfg.RetryBaseDelay, DefaultRetryBaseDelay)
	cfg.MaxEventBytes = cmp.Or(cfg.MaxEventBytes, DefaultMaxEventBytes)
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
	return &Engine{cfg: cfg, log: log.With("component", "agent.openai", "model", cfg.Model)}
}

// Name returns agent.EngineOpenAI.
func (e *Engine) Name() string { return agent.EngineOpenAI }

// Health checks the configuration (IT0_OPENAI_BASE_URL, IT0_OPENAI_MODEL) and that the server answers
// GET {base}/models within a few seconds without rejecting the key. A server without that endpoint
// (404) counts as healthy. Errors wrap agent.ErrUnavailable and name what to configure.
func (e *Engine) Health(ctx context.Context) error {
	var missing []string
	if e.cfg.BaseURL == "" {
		missing = append(missing, "IT0_OPENAI_BASE_URL")
	}
	if e.cfg.Model == "" {
		missing = append(missing, "IT0_OPENAI_MODEL")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: OpenAI-compatible engine not configured (set %s)", agent.ErrUnavailable, strings.Join(missing, " and "))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.cfg.BaseURL+"/models", nil)
	if err != nil {
		return fmt.Errorf("%w: bad IT0_OPENAI_BASE_URL: %v", agent.ErrUnavailable, err)
	}
	e.authorize(req)
	resp, err := e.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: cannot reach the server at IT0_OPENAI_BASE_URL: %v", agent.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: the server rejected the key (check IT0_OPENAI_API_KEY): HTTP %d", agent.ErrUnavailable, resp.StatusCode)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: the server at IT0_OPENAI_BASE_URL answered HTTP %d", agent.ErrUnavailable, resp.StatusCode)
	}
	return nil
}

func (e *Engine) authorize(req *http.Request) {
	if e.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.cfg.APIKey.Reveal())
	}
}

// Run runs t's agent loop: stream a reply, run its tool calls, feed the results back as "tool"
// messages, until finish_reason stop (completed), the turn limit, the budget, cancellation or a
// failure. Approvals work as in the anthropic engine: Toolbox.Call returning *agent.ApprovalRequired
// pauses the run with the assistant's calls open in State; the next run answers the paused call from
// PendingResults and runs the calls of that message that had not run yet. Calls that can no longer run
// get an error result so the transcript stays valid. Arguments that are not valid JSON are not run: the
// model gets an error result saying so.
//
// Run returns an error without emitting only when t cannot run (bad State, no prompt, a paused call
// without PendingResult, or the engine is not configured).
func (e *Engine) Run(ctx context.Context, t agent.Task, emit func(agent.Event)) (agent.Outcome, error) {
	if e.cfg.BaseURL == "" || e.cfg.Model == "" {
		return agent.Outcome{}, fmt.Errorf("openai: %w", e.Health(ctx))
	}
	st, err := decodeState(t.State)
	if err != nil {
		return agent.Outcome{}, err
	}
	var awaiting []string
	if st.Open != nil {
		awaiting = st.Open.Awaiting
	}
	if err := t.CheckResume("openai", st.Open != nil, awaiting); err != nil {
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

// fail emits the final error event and returns the outcome, first answering open calls.
func (r *run) fail(code, msg string) agent.Outcome {
	if r.st.Open != nil {
		r.closeOpen("not run: " + msg)
	}
	r.send(agent.Event{Type: agent.EventError, Code: code, Message: msg, TokensUsed: r.tokens, CostUSD: r.cost})
	return agent.Outcome{State: r.st.encode(), TokensUsed: r.tokens, CostUSD: r.cost}
}

func (r *run) loop(ctx context.Context) agent.Outcome {
	if r.st.Open != nil {
		if paused, out, done := r.resolveOpen(ctx); paused || done {
			return out
		}
	}
	if r.t.Prompt != "" {
		r.st.Messages = append(r.st.Messages, Message{Role: "user", Content: r.t.Prompt})
	}
	maxTurns := cmp.Or(r.t.MaxTurns, r.e.cfg.MaxTurns)
	for turn := 1; ; turn++ {
		if ctx.Err() != nil {
			return r.fail(agent.CodeCancelled, "the run was cancelled")
		}
		rep, err := r.call(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return r.fail(agent.CodeCancelled, "the run was cancelled")
			}
			r.e.log.WarnContext(ctx, "chat completion failed", "error", err)
			var re *replyError
			if errors.As(err, &re) {
				return r.fail(re.code, re.msg)
			}
			return r.fail(agent.CodeEngine, err.Error())
		}
		msg := Message{Role: "assistant", Content: rep.text.String()}
		var badArgs []ToolCall
		for _, c := range rep.calls {
			tc := ToolCall{ID: c.id, Type: "function", Function: FunctionCall{Name: c.name, Arguments: c.arguments()}}
			if !json.Valid([]byte(tc.Function.Arguments)) {
				// Stored as {}: some servers (Ollama) parse the arguments of earlier turns and reject
				// the whole request otherwise. The model learns of its mistake from the result.
				tc.Function.Arguments = "{}"
				badArgs = append(badArgs, tc)
			}
			msg.ToolCalls = append(msg.ToolCalls, tc)
		}
		r.st.Messages = append(r.st.Messages, msg)
		if len(msg.ToolCalls) > 0 {
			r.st.Open = &OpenTurn{}
			for _, tc := range badArgs {
				r.answer(tc, agent.ToolResult{Output: "error: the arguments are not valid JSON; call the tool again with a JSON object", IsError: true})
			}
		}
		if r.t.MaxBudgetUSD > 0 && r.cost >= r.t.MaxBudgetUSD {
			return r.fail(agent.CodeBudget, fmt.Sprintf("cost %.4f USD reached the budget of %.4f USD", r.cost, r.t.MaxBudgetUSD))
		}
		switch {
		case rep.finish == "length":
			return r.fail(agent.CodeTruncated, "the reply reached the token limit (finish_reason length)")
		case rep.finish == "content_filter":
			return r.fail(agent.CodeEngine, "the server's content filter stopped the reply")
		case len(msg.ToolCalls) > 0:
			// finish_reason tool_calls, or a server that says "stop" next to tool calls.
			if turn >= maxTurns {
				return r.fail(agent.CodeMaxTurns, fmt.Sprintf("reached the limit of %d turns", maxTurns))
			}
			if paused, out, done := r.resolveOpen(ctx); paused || done {
				return out
			}
		default:
			summary := msg.Content
			r.send(agent.Event{Type: agent.EventCompleted, Summary: summary, TokensUsed: r.tokens, CostUSD: r.cost})
			return agent.Outcome{State: r.st.encode(), Summary: summary, TokensUsed: r.tokens, CostUSD: r.cost}
		}
	}
}

// answer records the result of call c in the open turn and emits it.
func (r *run) answer(c ToolCall, res agent.ToolResult) {
	content := res.Output
	if res.IsError && !strings.HasPrefix(content, "error") {
		// Chat Completions has no is_error flag: say it in the content.
		content = "error: " + content
	}
	r.st.Open.Results = append(r.st.Open.Results, Message{Role: "tool", ToolCallID: c.ID, Content: content})
	r.send(agent.Event{Type: agent.EventToolResult, Tool: c.Function.Name, ToolUseID: c.ID, Output: res.Output, IsError: res.IsError})
}

// resolveOpen answers every call of the open assistant message from earlier results, the task's
// pending results, or by running the tool, then appends the "tool" messages in call order.
func (r *run) resolveOpen(ctx context.Context) (paused bool, out agent.Outcome, done bool) {
	calls := r.st.Messages[len(r.st.Messages)-1].ToolCalls
	answered := func(id string) bool {
		return slices.ContainsFunc(r.st.Open.Results, func(m Message) bool { return m.ToolCallID == id })
	}
	for _, c := range calls {
		if answered(c.ID) {
			continue
		}
		if i := slices.IndexFunc(r.t.PendingResults, func(p agent.PendingResult) bool { return p.ToolUseID == c.ID }); i >= 0 {
			r.st.Open.Awaiting = slices.DeleteFunc(r.st.Open.Awaiting, func(id string) bool { return id == c.ID })
			r.answer(c, r.t.PendingResults[i].Result)
			continue
		}
		if ctx.Err() != nil {
			return false, r.fail(agent.CodeCancelled, "the run was cancelled"), true
		}
		if !slices.ContainsFunc(r.tools, func(t agent.Tool) bool { return t.Name == c.Function.Name }) {
			r.answer(c, agent.ToolResult{Output: fmt.Sprintf("error: tool %q is not available", c.Function.Name), IsError: true})
			continue
		}
		input := json.RawMessage(c.Function.Arguments)
		if !json.Valid(input) {
			r.answer(c, agent.ToolResult{Output: "error: the arguments are not valid JSON; call the tool again with a JSON object", IsError: true})
			continue
		}
		res, err := r.t.Tools.Call(ctx, c.Function.Name, input)
		var ar *agent.ApprovalRequired
		switch {
		case errors.As(err, &ar):
			r.st.Open.Awaiting = append(r.st.Open.Awaiting, c.ID)
			level := ar.RiskLevel
			r.send(agent.Event{Type: agent.EventApprovalRequired, Tool: c.Function.Name, ToolUseID: c.ID, Command: ar.Command, RiskLevel: &level, ApprovalID: ar.ApprovalID})
			return true, agent.Outcome{State: r.st.encode(), Paused: true, TokensUsed: r.tokens, CostUSD: r.cost}, false
		case err != nil && ctx.Err() != nil:
			return false, r.fail(agent.CodeCancelled, "the run was cancelled"), true
		case err != nil:
			r.e.log.WarnContext(ctx, "tool call failed", "tool", c.Function.Name, "error", err)
			return false, r.fail(agent.CodeEngine, fmt.Sprintf("tool %s failed: %v", c.Function.Name, err)), true
		}
		r.answer(c, res)
	}
	r.closeOpen("")
	return false, agent.Outcome{}, false
}

// closeOpen appends the open turn's results in call order; unanswered calls get reason as an error.
func (r *run) closeOpen(reason string) {
	for _, c := range r.st.Messages[len(r.st.Messages)-1].ToolCalls {
		i := slices.IndexFunc(r.st.Open.Results, func(m Message) bool { return m.ToolCallID == c.ID })
		if i >= 0 {
			r.st.Messages = append(r.st.Messages, r.st.Open.Results[i])
		} else {
			r.st.Messages = append(r.st.Messages, Message{Role: "tool", ToolCallID: c.ID, Content: "error: " + reason})
		}
	}
	r.st.Open = nil
}

// replyError is a failure with its own event code (truncated, bad_response, engine_error).
type replyError struct {
	code, msg string
}

func (e *replyError) Error() string { return e.msg }

type chatRequest struct {
	Model         string         `json:"model"`
	Messages      []Message      `json:"messages"`
	Tools         []toolDef      `json:"tools,omitempty"`
	ToolChoice    string         `json:"tool_choice,omitempty"`
	Stream        bool           `json:"stream"`
	StreamOptions map[string]any `json:"stream_options"`
	MaxTokens     int            `json:"max_tokens,omitempty"`
}

type toolDef struct {
	Type     string      `json:"type"`
	Function functionDef `json:"function"`
}

type functionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// call sends one request (with retries) and streams the reply.
func (r *run) call(ctx context.Context) (*reply, error) {
	req := chatRequest{
		Model:         r.e.cfg.Model,
		Stream:        true,
		StreamOptions: map[string]any{"include_usage": true},
		MaxTokens:     r.e.cfg.MaxTokens,
	}
	if r.t.SystemPrompt != "" {
		req.Messages = append(req.Messages, Message{Role: "system", Content: r.t.SystemPrompt})
	}
	req.Messages = append(req.Messages, r.st.Messages...)
	for _, t := range r.tools {
		params := t.InputSchema
		if !json.Valid(params) || len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		req.Tools = append(req.Tools, toolDef{Type: "function", Function: functionDef{Name: t.Name, Description: t.Description, Parameters: params}})
	}
	if len(req.Tools) > 0 {
		req.ToolChoice = "auto"
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	resp, err := r.e.post(ctx, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rep := newReply()
	defer func() { r.account(rep.usage) }()
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		// A server that ignored stream:true answers with one completion object.
		data, err := io.ReadAll(io.LimitReader(resp.Body, int64(r.e.cfg.MaxEventBytes)))
		if err != nil {
			return nil, fmt.Errorf("read reply: %w", err)
		}
		return rep, r.whole(rep, data)
	}
	sr := newSSEReader(resp.Body, r.e.cfg.MaxEventBytes)
	for {
		ev, err := sr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errEventTooLong) {
			return nil, &replyError{code: agent.CodeBadResponse, msg: err.Error()}
		}
		if err != nil {
			return nil, fmt.Errorf("read reply stream: %w", err)
		}
		data := bytes.TrimSpace(ev.Data)
		if string(data) == "[DONE]" {
			rep.done = true
			break
		}
		evs, err := rep.add(data)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			r.send(e)
		}
	}
	if rep.finish == "" {
		return nil, &replyError{code: agent.CodeTruncated, msg: "the reply stream ended without a finish_reason"}
	}
	r.emitToolUses(rep)
	return rep, nil
}

// whole handles a non-streamed completion body.
func (r *run) whole(rep *reply, data []byte) error {
	var c struct {
		Choices []struct {
			Message      delta   `json:"message"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *usage    `json:"usage"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return &replyError{code: agent.CodeBadResponse, msg: "the reply is not JSON: " + err.Error()}
	}
	if c.Error != nil {
		return &replyError{code: agent.CodeEngine, msg: c.Error.text()}
	}
	rep.usage = c.Usage
	if len(c.Choices) == 0 {
		return &replyError{code: agent.CodeBadResponse, msg: "the reply has no choices"}
	}
	ch := c.Choices[0]
	for i := range ch.Message.ToolCalls {
		if ch.Message.ToolCalls[i].Index == nil {
			ch.Message.ToolCalls[i].Index = &i
		}
	}
	for _, ev := range rep.addDelta(ch.Message) {
		r.send(ev)
	}
	rep.finish = cmp.Or(deref(ch.FinishReason), "stop")
	r.emitToolUses(rep)
	return nil
}

func (r *run) emitToolUses(rep *reply) {
	for i, c := range rep.calls {
		if c.id == "" {
			c.id = fmt.Sprintf("call_%d_%d", len(r.st.Messages), i) // some local servers send no ids
		}
		input := json.RawMessage(c.arguments())
		if !json.Valid(input) {
			input, _ = json.Marshal(c.arguments()) // shown as a string; Run refuses to call it
		}
		r.send(agent.Event{Type: agent.EventToolUse, Tool: c.name, ToolUseID: c.id, Input: input})
	}
}

func (r *run) account(u *usage) {
	if u == nil {
		return
	}
	r.tokens += u.PromptTokens + u.CompletionTokens
	r.cost += (r.price.InputPerMTok*float64(u.PromptTokens) + r.price.OutputPerMTok*float64(u.CompletionTokens)) / 1e6
}

// post sends body, retrying 429, 5xx and network failures with backoff that honours Retry-After.
func (e *Engine) post(ctx context.Context, body []byte) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.BaseURL+"/chat/completions", bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		e.authorize(req)
		resp, err := e.cfg.HTTPClient.Do(req)
		var failure error
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			failure = fmt.Errorf("request failed: %w", err)
		case resp.StatusCode/100 == 2:
			return resp, nil
		default:
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			failure = &replyError{code: agent.CodeEngine, msg: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, errorText(data))}
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
				return nil, failure
			}
			wait = retryAfter(resp.Header)
		}
		if attempt >= e.cfg.MaxRetries {
			return nil, failure
		}
		if wait <= 0 {
			wait = time.Duration(float64(e.cfg.RetryBaseDelay) * math.Pow(2, float64(attempt)))
		}
		wait = min(wait, maxRetryDelay)
		e.log.InfoContext(ctx, "retrying chat completion", "attempt", attempt+1, "wait", wait, "error", failure)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

// retryAfter reads retry-after-ms or Retry-After (seconds or an HTTP date); 0 if absent.
func retryAfter(h http.Header) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			return time.Duration(s * float64(time.Second))
		}
		if t, err := http.ParseTime(v); err == nil {
			return time.Until(t)
		}
	}
	return 0
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
