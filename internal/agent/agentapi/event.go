package agentapi

import (
	"encoding/json"
	"time"
)

// EventType names an event in a session's stream. Every engine emits the same types.
type EventType string

// Event types.
const (
	EventThinking         EventType = "thinking"          // Text: the model's reasoning, as it streams
	EventText             EventType = "text"              // Text: answer text, as it streams
	EventToolUse          EventType = "tool_use"          // Tool, ToolUseID, Input
	EventToolResult       EventType = "tool_result"       // Tool, ToolUseID, Output, IsError
	EventApprovalRequired EventType = "approval_required" // Command, RiskLevel, ApprovalID
	EventCompleted        EventType = "completed"         // Summary, TokensUsed, CostUSD
	EventError            EventType = "error"             // Code, Message
	// EventNotice reports something the engine saw that does not end the run: a tool call its runtime
	// refused (Code CodePermissionDenied, Tool, ToolUseID) or a warning it printed (Code CodeEngineLog).
	EventNotice EventType = "notice" // Code, Message, and Tool/ToolUseID when about a tool call
)

// Event is one item of a session's stream: the same JSON shape for every engine. Seq and SessionID are
// set by the session store when the event is persisted.
type Event struct {
	Seq        int64           `json:"seq"`
	SessionID  string          `json:"session_id"`
	Type       EventType       `json:"type"`
	Text       string          `json:"text,omitempty"`
	Tool       string          `json:"tool,omitempty"`
	ToolUseID  string          `json:"tool_use_id,omitempty"`
	Input      json.RawMessage `json:"input,omitempty"`
	Output     string          `json:"output,omitempty"`
	IsError    bool            `json:"is_error,omitempty"`
	Command    string          `json:"command,omitempty"`
	RiskLevel  *int            `json:"risk_level,omitempty"`
	ApprovalID string          `json:"approval_id,omitempty"`
	Summary    string          `json:"summary,omitempty"`
	TokensUsed int             `json:"tokens_used,omitempty"`
	CostUSD    float64         `json:"cost_usd,omitempty"`
	Code       string          `json:"code,omitempty"`
	Message    string          `json:"message,omitempty"`
	Time       time.Time       `json:"time"`
}

// Error codes of error events.
const (
	CodeMaxTurns    = "max_turns"    // the turn limit was reached
	CodeBudget      = "budget"       // the cost budget was reached
	CodeEngine      = "engine_error" // the engine (process or API) failed
	CodeTruncated   = "truncated"    // the engine's stream ended without a result
	CodeCancelled   = "cancelled"    // the session was cancelled
	CodeUnavailable = "unavailable"  // the engine is not configured or not reachable
	CodeBadResponse = "bad_response" // the engine sent something that does not parse
	// CodePermissionDenied: the engine's runtime refused tool calls (a notice per call); as the code of
	// the final error, it refused every IT0 tool call of the run, so nothing reached IT0.
	CodePermissionDenied = "permission_denied"
	CodeEngineLog        = "engine_log" // a notice carrying a line the engine printed (its stderr)
)

// Event types of a voice conversation bound to a session (the voice module's transcripts). Text is what
// was said; Input holds the details as JSON ({"timings":{…},"interrupted":bool,"voice_session":"…"}).
const (
	EventVoiceUser  EventType = "voice_user"
	EventVoiceAgent EventType = "voice_agent"
)

// Message is one published event: its sequence number and its JSON, marshalled once for every subscriber.
type Message struct {
	Seq  int64
	JSON []byte
}
