// Package agent is IT0's brain: engines behind one interface, sessions, tasks, tools, skills and system
// prompts. Engines live in subpackages (claudecode, anthropic, openai); this package declares what they
// implement and what they are given.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/it0/it0/internal/agent/agentapi"
)

// EventType names an event in a session's stream (agentapi.EventType).
type EventType = agentapi.EventType

// Event types (agentapi).
const (
	EventThinking         = agentapi.EventThinking
	EventText             = agentapi.EventText
	EventToolUse          = agentapi.EventToolUse
	EventToolResult       = agentapi.EventToolResult
	EventApprovalRequired = agentapi.EventApprovalRequired
	EventCompleted        = agentapi.EventCompleted
	EventError            = agentapi.EventError
	EventNotice           = agentapi.EventNotice
)

// Event is one item of a session's stream (agentapi.Event).
type Event = agentapi.Event

// Error codes of error events (agentapi).
const (
	CodeMaxTurns         = agentapi.CodeMaxTurns
	CodeBudget           = agentapi.CodeBudget
	CodeEngine           = agentapi.CodeEngine
	CodeTruncated        = agentapi.CodeTruncated
	CodeCancelled        = agentapi.CodeCancelled
	CodeUnavailable      = agentapi.CodeUnavailable
	CodeBadResponse      = agentapi.CodeBadResponse
	CodePermissionDenied = agentapi.CodePermissionDenied
	CodeEngineLog        = agentapi.CodeEngineLog
)

// Tool describes one tool the model may call (agentapi.Tool).
type Tool = agentapi.Tool

// ToolResult is what a tool call returned (agentapi.ToolResult).
type ToolResult = agentapi.ToolResult

// ApprovalRequired is returned by Toolbox.Call when the call needs a human decision first
// (agentapi.ApprovalRequired).
type ApprovalRequired = agentapi.ApprovalRequired

// Toolbox is the set of tools a task may use. Call runs one tool; it returns *ApprovalRequired (via
// errors.As) when a human must decide first, and other errors only for failures that should end the run
// (tool-level failures are ToolResult{IsError: true}).
type Toolbox interface {
	Tools() []Tool
	Call(ctx context.Context, name string, input json.RawMessage) (ToolResult, error)
}

// PendingResult answers a tool call that was left open when a run paused for approval: the engine
// appends it to the conversation before it continues.
type PendingResult struct {
	ToolUseID string
	Tool      string
	Result    ToolResult
}

// Task is one run of an engine: a first prompt, or a continuation of a session.
type Task struct {
	SessionID    string
	Prompt       string // the user's message (may be empty when only PendingResults continue a run)
	SystemPrompt string
	AllowedTools []string // tool names; empty = every tool in Tools
	MaxTurns     int      // 0 = engine default
	MaxBudgetUSD float64  // 0 = no budget
	Tools        Toolbox
	// State is what the engine returned in Outcome.State after the session's previous run: its transcript
	// (API engines) or its own session id (Claude Code). Nil on a session's first run.
	State json.RawMessage
	// PendingResults answer the tool calls the previous run paused on.
	PendingResults []PendingResult
	// WorkDir is the tenant's workspace (Claude Code runs there, with its .claude/ settings and skills).
	WorkDir string
	// Env holds extra environment for engines that run processes (IT0_URL, IT0_TOKEN, IT0_SESSION_ID).
	Env []string
}

// Outcome is how a run ended.
type Outcome struct {
	// State is to be passed back in Task.State to continue the session.
	State json.RawMessage
	// Paused is set when the run stopped on a tool call awaiting approval.
	Paused bool
	// Summary, TokensUsed and CostUSD repeat the completed event's fields.
	Summary    string
	TokensUsed int
	CostUSD    float64
}

// Engine runs tasks. Run streams events through emit (never concurrently) until the task completes,
// fails, pauses for approval or ctx ends, and emits exactly one final event: completed, error, or
// approval_required (paused). It returns an error only when it could not run at all.
type Engine interface {
	Name() string
	Run(ctx context.Context, t Task, emit func(Event)) (Outcome, error)
	// Health reports whether the engine can run now; the error says what to configure.
	Health(ctx context.Context) error
}

// Engine names.
const (
	EngineClaudeCode = "claude_code_cli"
	EngineClaudeAPI  = "claude_api"
	EngineOpenAI     = "openai_compatible"
)

// ErrUnavailable wraps an engine's Health error: the engine is not configured or cannot be reached.
var ErrUnavailable = errors.New("engine unavailable")

// Allowed reports whether tool name may be used under allowed (empty allows every tool).
func Allowed(allowed []string, name string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if a == name {
			return true
		}
	}
	return false
}

// CheckResume checks a task against the state its previous run left: open reports whether that run paused
// on tool calls, awaiting lists their ids. A paused run needs a PendingResult for each; a fresh one needs
// a prompt. engine prefixes the errors.
func (t Task) CheckResume(engine string, open bool, awaiting []string) error {
	switch {
	case !open && len(t.PendingResults) > 0:
		return fmt.Errorf("%s: pending results but no open tool calls in the session state", engine)
	case !open && t.Prompt == "":
		return fmt.Errorf("%s: task has no prompt", engine)
	}
	for _, id := range awaiting {
		found := false
		for _, p := range t.PendingResults {
			found = found || p.ToolUseID == id
		}
		if !found {
			return fmt.Errorf("%s: no pending result for tool call %s awaiting approval", engine, id)
		}
	}
	return nil
}

// ToolsAllowed returns the task's tools that AllowedTools permits.
func (t Task) ToolsAllowed() []Tool {
	var out []Tool
	for _, tl := range t.Tools.Tools() {
		if Allowed(t.AllowedTools, tl.Name) {
			out = append(out, tl)
		}
	}
	return out
}
