// Package openai runs tasks on any OpenAI-compatible Chat Completions server (Ollama, vLLM, llama.cpp,
// DeepSeek, Qwen…) with IT0's own agent loop over `POST {base}/chat/completions` with `stream: true`.
// The loop itself is agent.Loop; this package is its Chat Completions wire format. It uses plain
// net/http and its own event-stream reader rather than an SDK: the wire format is small, and
// "compatible" servers differ in ways an SDK for OpenAI's own API does not tolerate (missing indexes
// or ids on tool calls, arguments sent as objects, reasoning_content, errors as plain strings).
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
	"strconv"
	"strings"
	"time"

	"github.com/it0/it0/internal/agent"
)

// Engine is the OpenAI-compatible engine. It is safe for concurrent use.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	loop *agent.Loop[Message, Message]
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
	e := &Engine{cfg: cfg, log: log.With("component", "agent.openai", "model", cfg.Model)}
	e.loop = &agent.Loop[Message, Message]{
		Name:     "openai",
		Dialect:  dialect{e: e, price: agent.PriceFor(cfg.Prices, cfg.Model)},
		MaxTurns: cfg.MaxTurns,
		Log:      e.log,
	}
	return e
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

// Run runs t's agent loop (agent.Loop): stream a reply, run its tool calls, feed the results back as
// "tool" messages, until finish_reason stop (completed), the turn limit, the budget, cancellation, a
// failure, or a tool call that needs approval (see agent.Loop.Run). Arguments that are not valid JSON
// are not run: the model gets an error result saying so.
//
// Run returns an error without emitting only when t cannot run (bad State, no prompt, a paused call
// without PendingResult, or the engine is not configured).
func (e *Engine) Run(ctx context.Context, t agent.Task, emit func(agent.Event)) (agent.Outcome, error) {
	if e.cfg.BaseURL == "" || e.cfg.Model == "" {
		return agent.Outcome{}, fmt.Errorf("openai: %w", e.Health(ctx))
	}
	return e.loop.Run(ctx, t, emit)
}

// dialect is the Chat Completions side of agent.Loop.
type dialect struct {
	e     *Engine
	price Price
}

var _ agent.Dialect[Message, Message] = dialect{}

// invalidArgs answers a call whose arguments are not valid JSON.
const invalidArgs = "error: the arguments are not valid JSON; call the tool again with a JSON object"

// Send streams one reply and turns it into the transcript's assistant message.
func (d dialect) Send(ctx context.Context, req agent.Request[Message], emit func(agent.Event)) (agent.Reply[Message], error) {
	var out agent.Reply[Message]
	rep, err := d.call(ctx, req, emit, &out)
	if err != nil {
		return out, err
	}
	msg := Message{Role: "assistant", Content: rep.text.String()}
	for _, c := range rep.calls {
		tc := ToolCall{ID: c.id, Type: "function", Function: FunctionCall{Name: c.name, Arguments: c.arguments()}}
		call := agent.Call{ID: tc.ID, Name: tc.Function.Name, Input: json.RawMessage(tc.Function.Arguments)}
		if !json.Valid([]byte(tc.Function.Arguments)) {
			// Stored as {}: some servers (Ollama) parse the arguments of earlier turns and reject
			// the whole request otherwise. The model learns of its mistake from the result.
			tc.Function.Arguments = "{}"
			call.Input, call.Invalid = nil, invalidArgs
		}
		msg.ToolCalls = append(msg.ToolCalls, tc)
		out.Calls = append(out.Calls, call)
	}
	out.Message, out.Text = msg, msg.Content
	switch rep.finish {
	case "length":
		out.Halt = &agent.ReplyError{Code: agent.CodeTruncated, Message: "the reply reached the token limit (finish_reason length)"}
	case "content_filter":
		out.Halt = &agent.ReplyError{Code: agent.CodeEngine, Message: "the server's content filter stopped the reply"}
	}
	return out, nil
}

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

// call sends one request (with retries) and streams the reply, adding its usage to out.
func (d dialect) call(ctx context.Context, in agent.Request[Message], emit func(agent.Event), out *agent.Reply[Message]) (*reply, error) {
	req := chatRequest{
		Model:         d.e.cfg.Model,
		Stream:        true,
		StreamOptions: map[string]any{"include_usage": true},
		MaxTokens:     d.e.cfg.MaxTokens,
	}
	if in.System != "" {
		req.Messages = append(req.Messages, Message{Role: "system", Content: in.System})
	}
	req.Messages = append(req.Messages, in.Messages...)
	for _, t := range in.Tools {
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
	resp, err := d.e.post(ctx, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rep := newReply()
	defer func() { d.account(out, rep.usage) }()
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		// A server that ignored stream:true answers with one completion object.
		data, err := io.ReadAll(io.LimitReader(resp.Body, int64(d.e.cfg.MaxEventBytes)))
		if err != nil {
			return nil, fmt.Errorf("read reply: %w", err)
		}
		return rep, whole(rep, data, len(in.Messages), emit)
	}
	sr := newSSEReader(resp.Body, d.e.cfg.MaxEventBytes)
	for {
		ev, err := sr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errEventTooLong) {
			return nil, &agent.ReplyError{Code: agent.CodeBadResponse, Message: err.Error()}
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
			emit(e)
		}
	}
	if rep.finish == "" {
		return nil, &agent.ReplyError{Code: agent.CodeTruncated, Message: "the reply stream ended without a finish_reason"}
	}
	emitToolUses(rep, len(in.Messages), emit)
	return rep, nil
}

// whole handles a non-streamed completion body; turn is the number of messages before it.
func whole(rep *reply, data []byte, turn int, emit func(agent.Event)) error {
	var c struct {
		Choices []struct {
			Message      delta   `json:"message"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *usage    `json:"usage"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return &agent.ReplyError{Code: agent.CodeBadResponse, Message: "the reply is not JSON: " + err.Error()}
	}
	if c.Error != nil {
		return &agent.ReplyError{Code: agent.CodeEngine, Message: c.Error.text()}
	}
	rep.usage = c.Usage
	if len(c.Choices) == 0 {
		return &agent.ReplyError{Code: agent.CodeBadResponse, Message: "the reply has no choices"}
	}
	ch := c.Choices[0]
	for i := range ch.Message.ToolCalls {
		if ch.Message.ToolCalls[i].Index == nil {
			ch.Message.ToolCalls[i].Index = &i
		}
	}
	for _, ev := range rep.addDelta(ch.Message) {
		emit(ev)
	}
	rep.finish = cmp.Or(deref(ch.FinishReason), "stop")
	emitToolUses(rep, turn, emit)
	return nil
}

// emitToolUses emits the reply's calls, naming those without an id after turn (the number of messages
// before the reply) and their index.
func emitToolUses(rep *reply, turn int, emit func(agent.Event)) {
	for i, c := range rep.calls {
		if c.id == "" {
			c.id = fmt.Sprintf("call_%d_%d", turn, i) // some local servers send no ids
		}
		input := json.RawMessage(c.arguments())
		if !json.Valid(input) {
			input, _ = json.Marshal(c.arguments()) // shown as a string; Run refuses to call it
		}
		emit(agent.Event{Type: agent.EventToolUse, Tool: c.name, ToolUseID: c.id, Input: input})
	}
}

// account adds a reply's usage to out's tokens and cost.
func (d dialect) account(out *agent.Reply[Message], u *usage) {
	if u == nil {
		return
	}
	out.Tokens += u.PromptTokens + u.CompletionTokens
	out.CostUSD += (d.price.InputPerMTok*float64(u.PromptTokens) + d.price.OutputPerMTok*float64(u.CompletionTokens)) / 1e6
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
			failure = &agent.ReplyError{Code: agent.CodeEngine, Message: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, errorText(data))}
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
