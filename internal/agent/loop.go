package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Transcript is an API engine's Outcome.State: the conversation in the API's own wire shape (M is one
// message, R one tool result while its turn is open), so it can be read, replayed and audited, plus the
// tool calls of the last assistant message that are still open when a run paused for approval.
//
//	{"messages":[…], "open":{"results":[…results already obtained…],"awaiting":["call id"]}}
//
// The system prompt and tools are not stored: each run passes them again.
type Transcript[M, R any] struct {
	Messages []M `json:"messages"`
	// Open is set when the last message is an assistant turn whose tool calls are not all answered.
	Open *OpenTurn[R] `json:"open,omitempty"`
}

// OpenTurn is the unanswered part of the last assistant message.
type OpenTurn[R any] struct {
	// Results answer some of the turn's tool calls already (those run before the pause).
	Results []R `json:"results,omitempty"`
	// Awaiting lists the tool call ids that wait for a human decision; the next run must bring a
	// PendingResult for each.
	Awaiting []string `json:"awaiting,omitempty"`
}

// Call is one tool call of an assistant message, whatever the wire format.
type Call struct {
	ID    string
	Name  string
	Input json.RawMessage
	// Invalid, when set, is the error result the call gets instead of running: its input did not
	// parse.
	Invalid string
}

// Request is what a Dialect sends for one turn.
type Request[M any] struct {
	System   string // the task's system prompt; "" for none
	Tools    []Tool // the tools the task allows
	Messages []M    // the conversation so far
}

// Reply is one model reply as the Loop sees it.
type Reply[M any] struct {
	// Message is the assistant message as it goes into the transcript.
	Message M
	// Calls are its tool calls, in order.
	Calls []Call
	// Text is its answer text: the run's summary when the reply ends the run.
	Text string
	// Halt, when set, ends the run with its code and message whatever else the reply holds (a reply
	// cut at the token limit, a refusal).
	Halt *ReplyError
	// Continue asks for another turn although the reply has no tool calls (Anthropic's pause_turn).
	Continue bool
	// Tokens and CostUSD are what the reply cost; they count also when Send fails.
	Tokens  int
	CostUSD float64
}

// ReplyError is a failed reply with its own error event code (CodeTruncated, CodeBadResponse,
// CodeEngine…). Its message goes into the error event as is: it must not contain secrets.
type ReplyError struct {
	Code    string
	Message string
}

func (e *ReplyError) Error() string { return e.Message }

// Dialect is what the Loop needs from an API engine: its wire format. M is a transcript message, R a
// tool result held while its turn is open (see Transcript).
type Dialect[M, R any] interface {
	// Send streams the model's reply to req, emitting text and thinking deltas and each tool_use event
	// through emit as they come. An error ends the run: a *ReplyError (errors.As) gives its event code,
	// any other error is CodeEngine with the error's text. Usage counts in the Reply also on error.
	Send(ctx context.Context, req Request[M], emit func(Event)) (Reply[M], error)
	// Calls returns the tool calls of a stored assistant message, in order.
	Calls(m M) []Call
	// Result makes the transcript's answer to call c.
	Result(c Call, res ToolResult) R
	// ResultID returns the tool call id that r answers.
	ResultID(r R) string
	// Append adds the next user turn to msgs: results answering every tool call of the last message,
	// in call order (none after a reply without calls), then prompt ("" for none).
	Append(msgs []M, results []R, prompt string) []M
	// CheckOpen reports why msgs cannot have open tool calls (no assistant turn last), or nil.
	CheckOpen(msgs []M) error
}

// Loop is IT0's agent loop for API engines: it sends the conversation, runs the reply's tool calls
// through the task's Toolbox, feeds the results back, and repeats until the model ends its turn, the
// turn limit, the cost budget, cancellation, a failure, or a tool call that needs approval (the run
// pauses and the next run answers the open call). Only the wire format is the engine's (Dialect).
type Loop[M, R any] struct {
	// Name prefixes the errors Run returns ("anthropic").
	Name    string
	Dialect Dialect[M, R]
	// MaxTurns bounds the model calls of a run whose task sets none.
	MaxTurns int
	// Log receives diagnostics (failed requests and tool calls).
	Log *slog.Logger
}

// Run runs t, continuing the Transcript in t.State. It implements Engine.Run for the engine.
//
// Approvals: when Toolbox.Call returns *ApprovalRequired, Run emits approval_required and returns
// Outcome{Paused: true} with the assistant's tool calls open in State. The next run must bring a
// PendingResult for that call; tool calls of the same turn that had not run yet when the run paused
// are run then (each may pause again). Calls that can no longer run (the run failed or was cancelled)
// are answered with an error result so the transcript stays valid.
//
// Run returns an error without emitting only when t cannot run: its State does not decode, it has
// nothing to say, or a paused call has no PendingResult.
func (l *Loop[M, R]) Run(ctx context.Context, t Task, emit func(Event)) (Outcome, error) {
	var st Transcript[M, R]
	if len(t.State) > 0 {
		if err := json.Unmarshal(t.State, &st); err != nil {
			return Outcome{}, fmt.Errorf("%s: decode session state: %w", l.Name, err)
		}
		if st.Open != nil {
			if err := l.Dialect.CheckOpen(st.Messages); err != nil {
				return Outcome{}, fmt.Errorf("%s: %w", l.Name, err)
			}
		}
	}
	var awaiting []string
	if st.Open != nil {
		awaiting = st.Open.Awaiting
	}
	if err := t.CheckResume(l.Name, st.Open != nil, awaiting); err != nil {
		return Outcome{}, err
	}
	r := &run[M, R]{l: l, d: l.Dialect, t: t, st: st, emit: emit, tools: t.ToolsAllowed()}
	return r.loop(ctx), nil
}

// run is the state of one Run.
type run[M, R any] struct {
	l     *Loop[M, R]
	d     Dialect[M, R]
	t     Task
	st    Transcript[M, R]
	emit  func(Event)
	tools []Tool

	tokens int
	cost   float64
}

func (r *run[M, R]) send(ev Event) {
	ev.Time = time.Now().UTC()
	r.emit(ev)
}

func (r *run[M, R]) state() json.RawMessage {
	b, err := json.Marshal(r.st)
	if err != nil {
		panic(err) // the dialects' messages hold strings and valid raw JSON only
	}
	return b
}

// fail emits the final error event and returns the outcome, first answering open calls so the
// transcript stays valid.
func (r *run[M, R]) fail(code, msg string) Outcome {
	if r.st.Open != nil {
		r.closeOpen("not run: "+msg, "")
	}
	r.send(Event{Type: EventError, Code: code, Message: msg, TokensUsed: r.tokens, CostUSD: r.cost})
	return Outcome{State: r.state(), TokensUsed: r.tokens, CostUSD: r.cost}
}

func (r *run[M, R]) cancelled() Outcome { return r.fail(CodeCancelled, "the run was cancelled") }

func (r *run[M, R]) loop(ctx context.Context) Outcome {
	if r.st.Open != nil {
		if out, stop := r.resolveOpen(ctx, r.t.Prompt); stop {
			return out
		}
	} else {
		r.st.Messages = r.d.Append(r.st.Messages, nil, r.t.Prompt)
	}
	maxTurns := cmp.Or(r.t.MaxTurns, r.l.MaxTurns)
	for turn := 1; ; turn++ {
		if ctx.Err() != nil {
			return r.cancelled()
		}
		rep, err := r.d.Send(ctx, Request[M]{System: r.t.SystemPrompt, Tools: r.tools, Messages: r.st.Messages}, r.send)
		r.tokens += rep.Tokens
		r.cost += rep.CostUSD
		if err != nil {
			if ctx.Err() != nil {
				return r.cancelled()
			}
			r.l.Log.WarnContext(ctx, "model request failed", "error", err)
			var re *ReplyError
			if errors.As(err, &re) {
				return r.fail(re.Code, re.Message)
			}
			return r.fail(CodeEngine, err.Error())
		}
		r.st.Messages = append(r.st.Messages, rep.Message)
		if len(rep.Calls) > 0 {
			r.st.Open = &OpenTurn[R]{}
		}
		if r.t.MaxBudgetUSD > 0 && r.cost >= r.t.MaxBudgetUSD {
			return r.fail(CodeBudget, fmt.Sprintf("cost %.4f USD reached the budget of %.4f USD", r.cost, r.t.MaxBudgetUSD))
		}
		switch {
		case rep.Halt != nil:
			return r.fail(rep.Halt.Code, rep.Halt.Message)
		case len(rep.Calls) > 0 || rep.Continue:
			// Tool calls (whatever stop reason the server sent next to them), or a paused server-side
			// tool loop that sending the conversation back continues.
			if turn >= maxTurns {
				return r.fail(CodeMaxTurns, fmt.Sprintf("reached the limit of %d turns", maxTurns))
			}
			if len(rep.Calls) == 0 {
				continue
			}
			for _, c := range rep.Calls {
				if c.Invalid != "" {
					r.answer(c, ToolResult{Output: c.Invalid, IsError: true})
				}
			}
			if out, stop := r.resolveOpen(ctx, ""); stop {
				return out
			}
		default:
			r.send(Event{Type: EventCompleted, Summary: rep.Text, TokensUsed: r.tokens, CostUSD: r.cost})
			return Outcome{State: r.state(), Summary: rep.Text, TokensUsed: r.tokens, CostUSD: r.cost}
		}
	}
}

// answer records the result of call c in the open turn and emits it.
func (r *run[M, R]) answer(c Call, res ToolResult) {
	r.st.Open.Results = append(r.st.Open.Results, r.d.Result(c, res))
	r.send(Event{Type: EventToolResult, Tool: c.Name, ToolUseID: c.ID, Output: res.Output, IsError: res.IsError})
}

// resolveOpen answers every tool call of the open turn: from earlier results, from the task's pending
// results, or by running the tool. It then appends the results, and prompt (the user's new words), as
// the next user turn. stop reports that the run ended (paused for approval, cancelled, or a tool
// failed), with out its outcome.
func (r *run[M, R]) resolveOpen(ctx context.Context, prompt string) (out Outcome, stop bool) {
	calls := r.d.Calls(r.st.Messages[len(r.st.Messages)-1])
	for _, c := range calls {
		if slices.ContainsFunc(r.st.Open.Results, func(res R) bool { return r.d.ResultID(res) == c.ID }) {
			continue
		}
		if i := slices.IndexFunc(r.t.PendingResults, func(p PendingResult) bool { return p.ToolUseID == c.ID }); i >= 0 {
			r.st.Open.Awaiting = slices.DeleteFunc(r.st.Open.Awaiting, func(id string) bool { return id == c.ID })
			r.answer(c, r.t.PendingResults[i].Result)
			continue
		}
		if ctx.Err() != nil {
			return r.cancelled(), true
		}
		if !slices.ContainsFunc(r.tools, func(t Tool) bool { return t.Name == c.Name }) {
			r.answer(c, ToolResult{Output: fmt.Sprintf("error: tool %q is not available", c.Name), IsError: true})
			continue
		}
		if c.Invalid != "" {
			r.answer(c, ToolResult{Output: c.Invalid, IsError: true})
			continue
		}
		res, err := r.t.Tools.Call(ctx, c.Name, c.Input)
		var ar *ApprovalRequired
		switch {
		case errors.As(err, &ar):
			r.st.Open.Awaiting = append(r.st.Open.Awaiting, c.ID)
			level := ar.RiskLevel
			r.send(Event{Type: EventApprovalRequired, Tool: c.Name, ToolUseID: c.ID, Command: ar.Command, RiskLevel: &level, ApprovalID: ar.ApprovalID})
			return Outcome{State: r.state(), Paused: true, TokensUsed: r.tokens, CostUSD: r.cost}, true
		case err != nil && ctx.Err() != nil:
			return r.cancelled(), true
		case err != nil:
			r.l.Log.WarnContext(ctx, "tool call failed", "tool", c.Name, "error", err)
			return r.fail(CodeEngine, fmt.Sprintf("tool %s failed: %v", c.Name, err)), true
		}
		r.answer(c, res)
	}
	r.closeOpen("", prompt)
	return Outcome{}, false
}

// closeOpen appends the open turn's results, in the order of its tool calls, and prompt as the next
// user turn. Calls still unanswered get an error result saying why (reason), without emitting.
func (r *run[M, R]) closeOpen(reason, prompt string) {
	calls := r.d.Calls(r.st.Messages[len(r.st.Messages)-1])
	var results []R
	for _, c := range calls {
		if i := slices.IndexFunc(r.st.Open.Results, func(res R) bool { return r.d.ResultID(res) == c.ID }); i >= 0 {
			results = append(results, r.st.Open.Results[i])
		} else {
			results = append(results, r.d.Result(c, ToolResult{Output: reason, IsError: true}))
		}
	}
	r.st.Messages = r.d.Append(r.st.Messages, results, prompt)
	r.st.Open = nil
}
