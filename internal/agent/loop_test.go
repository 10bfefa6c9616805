package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agenttest"
)

// msg is the fake dialect's message and tool result: a user, assistant or result turn.
type msg struct {
	Role    string       `json:"role"`
	Text    string       `json:"text,omitempty"`
	Calls   []agent.Call `json:"calls,omitempty"`
	CallID  string       `json:"call_id,omitempty"` // a result
	IsError bool         `json:"is_error,omitempty"`
	Results []msg        `json:"results,omitempty"` // a user turn answering calls
}

// step is one scripted Send.
type step struct {
	reply agent.Reply[msg]
	err   error
}

// fakeDialect plays scripted replies and records what each Send saw.
type fakeDialect struct {
	t     *testing.T
	steps []step
	sent  [][]msg
}

var _ agent.Dialect[msg, msg] = (*fakeDialect)(nil)

func (d *fakeDialect) Send(_ context.Context, req agent.Request[msg], emit func(agent.Event)) (agent.Reply[msg], error) {
	d.sent = append(d.sent, append([]msg(nil), req.Messages...))
	if len(d.steps) == 0 {
		d.t.Fatal("unexpected Send")
	}
	s := d.steps[0]
	d.steps = d.steps[1:]
	s.reply.Message = msg{Role: "assistant", Text: s.reply.Text, Calls: s.reply.Calls}
	for _, c := range s.reply.Calls {
		emit(agent.Event{Type: agent.EventToolUse, Tool: c.Name, ToolUseID: c.ID, Input: c.Input})
	}
	return s.reply, s.err
}

func (*fakeDialect) Calls(m msg) []agent.Call { return m.Calls }

func (*fakeDialect) Result(c agent.Call, res agent.ToolResult) msg {
	return msg{Role: "result", CallID: c.ID, Text: res.Output, IsError: res.IsError}
}

func (*fakeDialect) ResultID(r msg) string { return r.CallID }

func (*fakeDialect) Append(msgs, results []msg, prompt string) []msg {
	return append(msgs, msg{Role: "user", Results: results, Text: prompt})
}

func (*fakeDialect) CheckOpen(msgs []msg) error {
	if len(msgs) == 0 || msgs[len(msgs)-1].Role != "assistant" {
		return errors.New("no assistant turn")
	}
	return nil
}

// engine makes a Loop an agent.Engine for agenttest.Collect.
type engine struct{ *agent.Loop[msg, msg] }

func (engine) Name() string                 { return "fake" }
func (engine) Health(context.Context) error { return nil }

func setup(t *testing.T, steps ...step) (engine, *fakeDialect) {
	d := &fakeDialect{t: t, steps: steps}
	return engine{&agent.Loop[msg, msg]{Name: "fake", Dialect: d, MaxTurns: 5, Log: slog.New(slog.DiscardHandler)}}, d
}

func call(id, command string) agent.Call {
	return agent.Call{ID: id, Name: "run_command", Input: json.RawMessage(fmt.Sprintf(`{"server":"web-1","command":%q}`, command))}
}

func text(s string) step {
	return step{reply: agent.Reply[msg]{Text: s, Tokens: 10, CostUSD: 0.01}}
}

func calls(cs ...agent.Call) step {
	return step{reply: agent.Reply[msg]{Calls: cs, Tokens: 10, CostUSD: 0.01}}
}

func state(t *testing.T, raw json.RawMessage) agent.Transcript[msg, msg] {
	t.Helper()
	var st agent.Transcript[msg, msg]
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("state: %v", err)
	}
	return st
}

// types lists the events' types, with the code of an error event.
func types(evs []agent.Event) string {
	var out []string
	for _, ev := range evs {
		s := string(ev.Type)
		if ev.Code != "" {
			s += "/" + ev.Code
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestLoopEnds ensures each way a run ends emits the right final event after the right sends, with
// usage summed over the replies and every open call answered in the transcript.
func TestLoopEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		steps      []step
		mutate     func(*agent.Task)
		wantEvents string
		wantSends  int
		wantTokens int
	}{
		{"Completed", []step{text("all good")}, nil, "completed", 1, 10},
		{"ToolThenCompleted", []step{calls(call("c1", "df -h")), text("disk fine")}, nil,
			"tool_use tool_result completed", 2, 20},
		// Ensure a paused server-side tool loop is sent back without tool results.
		{"Continue", []step{{reply: agent.Reply[msg]{Continue: true, Tokens: 1}}, text("done")}, nil, "completed", 2, 11},
		{"ContinueAtMaxTurns", []step{{reply: agent.Reply[msg]{Continue: true}}}, func(t *agent.Task) { t.MaxTurns = 1 }, "error/max_turns", 1, 0},
		{"MaxTurns", []step{calls(call("c1", "df -h"))}, func(t *agent.Task) { t.MaxTurns = 1 }, "tool_use error/max_turns", 1, 10},
		{"Budget", []step{calls(call("c1", "df -h"))}, func(t *agent.Task) { t.MaxBudgetUSD = 0.01 }, "tool_use error/budget", 1, 10},
		{"Halt", []step{{reply: agent.Reply[msg]{Calls: []agent.Call{call("c1", "df")}, Halt: &agent.ReplyError{Code: agent.CodeTruncated, Message: "cut"}, Tokens: 3}}}, nil,
			"tool_use error/truncated", 1, 3},
		// Ensure usage counts also when Send fails, and a ReplyError keeps its code.
		{"ReplyError", []step{{reply: agent.Reply[msg]{Tokens: 4}, err: &agent.ReplyError{Code: agent.CodeBadResponse, Message: "not JSON"}}}, nil,
			"error/bad_response", 1, 4},
		{"OtherError", []step{{err: errors.New("connection reset")}}, nil, "error/engine_error", 1, 0},
		{"InvalidInput", []step{calls(agent.Call{ID: "c1", Name: "run_command", Invalid: "error: bad JSON"}), text("ok")}, nil,
			"tool_use tool_result completed", 2, 20},
		{"ToolNotAllowed", []step{calls(agent.Call{ID: "c1", Name: "list_servers", Input: json.RawMessage(`{}`)}), text("ok")},
			func(t *agent.Task) { t.AllowedTools = []string{"run_command"} }, "tool_use tool_result completed", 2, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, d := setup(t, tc.steps...)
			tk := agenttest.Task(agenttest.OKToolbox(t))
			if tc.mutate != nil {
				tc.mutate(&tk)
			}
			evs, out := agenttest.Collect(t, t.Context(), e, tk)
			if got := types(evs); got != tc.wantEvents {
				t.Errorf("events = %s, want %s", got, tc.wantEvents)
			}
			if len(d.sent) != tc.wantSends || out.TokensUsed != tc.wantTokens || evs[len(evs)-1].TokensUsed != tc.wantTokens {
				t.Errorf("sends %d tokens %d, want %d and %d", len(d.sent), out.TokensUsed, tc.wantSends, tc.wantTokens)
			}
			st := state(t, out.State)
			if st.Open != nil {
				t.Fatalf("open turn left in %s", out.State)
			}
			for i, m := range st.Messages {
				if len(m.Calls) > 0 && (i+1 == len(st.Messages) || len(st.Messages[i+1].Results) != len(m.Calls)) {
					t.Errorf("calls of message %d unanswered: %s", i, out.State)
				}
			}
		})
	}
}

// TestLoopResultTexts ensures the results the model gets say why a call did not run.
func TestLoopResultTexts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		steps  []step
		mutate func(*agent.Task)
		want   msg
	}{
		{"OK", []step{calls(call("c1", "df -h")), text("ok")}, nil,
			msg{Role: "result", CallID: "c1", Text: `ran "df -h" on web-1: /dev/sda1 40G 33G 83%`}},
		{"Invalid", []step{calls(agent.Call{ID: "c1", Name: "run_command", Invalid: "error: bad JSON"}), text("ok")}, nil,
			msg{Role: "result", CallID: "c1", Text: "error: bad JSON", IsError: true}},
		{"NotAvailable", []step{calls(agent.Call{ID: "c1", Name: "rm_everything"}), text("ok")}, nil,
			msg{Role: "result", CallID: "c1", Text: `error: tool "rm_everything" is not available`, IsError: true}},
		{"NotRun", []step{calls(call("c1", "df -h"))}, func(t *agent.Task) { t.MaxTurns = 1 },
			msg{Role: "result", CallID: "c1", Text: "not run: reached the limit of 1 turns", IsError: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, _ := setup(t, tc.steps...)
			tk := agenttest.Task(agenttest.OKToolbox(t))
			if tc.mutate != nil {
				tc.mutate(&tk)
			}
			_, out := agenttest.Collect(t, t.Context(), e, tk)
			st := state(t, out.State)
			got := st.Messages[2].Results
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Errorf("results = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestLoopApprovalPauseResume ensures a call that needs approval pauses the run with the calls run so
// far kept, and the next run answers it from PendingResults, runs the turn's remaining call, appends the
// results in call order followed by the user's new words, and continues.
func TestLoopApprovalPauseResume(t *testing.T) {
	t.Parallel()
	e, d := setup(t, calls(call("c1", "df -h"), call("c2", "systemctl restart nginx"), call("c3", "uptime")), text("done"))
	var ran []string
	tb := agenttest.ApprovalToolbox(&ran, "ap_1", 2)
	evs, out := agenttest.Collect(t, t.Context(), e, agenttest.Task(tb))
	if got := types(evs); !out.Paused || got != "tool_use tool_use tool_use tool_result approval_required" {
		t.Fatalf("paused %v, events %s", out.Paused, got)
	}
	if last := evs[len(evs)-1]; last.ApprovalID != "ap_1" || *last.RiskLevel != 2 || last.ToolUseID != "c2" {
		t.Errorf("approval event = %+v", last)
	}
	st := state(t, out.State)
	if st.Open == nil || len(st.Open.Results) != 1 || strings.Join(st.Open.Awaiting, ",") != "c2" {
		t.Fatalf("state = %s", out.State)
	}

	resume := agenttest.Resume(tb, out, agent.PendingResult{ToolUseID: "c2", Tool: "run_command", Result: agent.ToolResult{Output: "restarted"}})
	resume.Prompt = "and web-2?"
	evs, out = agenttest.Collect(t, t.Context(), e, resume)
	if got := types(evs); got != "tool_result tool_result completed" {
		t.Errorf("events = %s", got)
	}
	if strings.Join(ran, "|") != "df -h|systemctl restart nginx|uptime" {
		t.Errorf("calls = %q (the approved command must not run again)", ran)
	}
	last := d.sent[1][len(d.sent[1])-1]
	var ids []string
	for _, r := range last.Results {
		ids = append(ids, r.CallID)
	}
	if strings.Join(ids, ",") != "c1,c2,c3" || last.Text != "and web-2?" || last.Results[1].Text != "restarted" {
		t.Errorf("user turn = %+v", last)
	}
	if out.TokensUsed != 10 || out.Summary != "done" {
		t.Errorf("outcome = %+v (a resumed run counts its own usage)", out)
	}
}

// TestLoopToolFailure ensures a Toolbox error that is not an approval ends the run, and a cancel
// during a call ends it as cancelled.
func TestLoopToolFailure(t *testing.T) {
	t.Parallel()
	t.Run("Error", func(t *testing.T) {
		t.Parallel()
		e, _ := setup(t, calls(call("c1", "df -h")))
		tb := &agenttest.Toolbox{ToolsFunc: agenttest.Tools, CallFunc: func(context.Context, string, json.RawMessage) (agent.ToolResult, error) {
			return agent.ToolResult{}, errors.New("inventory store unreachable")
		}}
		evs, _ := agenttest.Collect(t, t.Context(), e, agenttest.Task(tb))
		if last := evs[len(evs)-1]; last.Code != agent.CodeEngine || last.Message != "tool run_command failed: inventory store unreachable" {
			t.Errorf("final = %+v", last)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		t.Parallel()
		e, _ := setup(t, calls(call("c1", "df -h"), call("c2", "uptime")))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		evs, out := agenttest.Collect(t, ctx, e, agenttest.Task(agenttest.CancelToolbox(cancel)))
		if last := evs[len(evs)-1]; last.Code != agent.CodeCancelled {
			t.Errorf("final = %+v", last)
		}
		if st := state(t, out.State); len(st.Messages[2].Results) != 2 {
			t.Errorf("state = %s", out.State)
		}
	})
}

// TestLoopRefuses ensures tasks that cannot run are refused without emitting, the error prefixed with
// the loop's name.
func TestLoopRefuses(t *testing.T) {
	t.Parallel()
	paused := json.RawMessage(`{"messages":[{"role":"user","text":"x"},{"role":"assistant","calls":[{"ID":"c1","Name":"run_command"}]}],"open":{"awaiting":["c1"]}}`)
	tests := []struct {
		name   string
		mutate func(*agent.Task)
		want   string
	}{
		{"ErrBadState", func(t *agent.Task) { t.State = json.RawMessage(`{`) }, "fake: decode session state"},
		{"ErrNoPrompt", func(t *agent.Task) { t.Prompt = "" }, "fake: task has no prompt"},
		{"ErrPendingWithoutOpen", func(t *agent.Task) { t.PendingResults = []agent.PendingResult{{ToolUseID: "x"}} }, "no open tool calls"},
		{"ErrMissingDecision", func(t *agent.Task) { t.State = paused }, "no pending result for tool call c1"},
		{"ErrOpenWithoutAssistant", func(t *agent.Task) { t.State = json.RawMessage(`{"messages":[],"open":{}}`) }, "fake: no assistant turn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, _ := setup(t)
			tk := agenttest.Task(agenttest.OKToolbox(t))
			tc.mutate(&tk)
			agenttest.CheckRefused(t, e, tk, tc.want)
		})
	}
}
