package claudecode

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/it0/it0/internal/agent"
)

// errSkip marks a line the parser ignores: malformed JSON, an unknown type or an informational line.
var errSkip = errors.New("line skipped")

// line is the envelope of one stream-json line. Fields that only some types carry are left raw.
type line struct {
	Type            string          `json:"type"`
	Subtype         string          `json:"subtype"`
	SessionID       string          `json:"session_id"`
	ParentToolUseID *string         `json:"parent_tool_use_id"`
	Message         json.RawMessage `json:"message"`
	Event           json.RawMessage `json:"event"`

	// system/permission_denied lines (and tool_result copies on user lines)
	ToolName      string          `json:"tool_name"`
	ToolUseID     string          `json:"tool_use_id"`
	ToolUseResult json.RawMessage `json:"tool_use_result"`
	// system/init lines
	MCPServers []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"mcp_servers"`

	// result lines
	PermissionDenials []denial        `json:"permission_denials"`
	IsError           bool            `json:"is_error"`
	Result            string          `json:"result"`
	Errors            []string        `json:"errors"`
	TotalCostUSD      *float64        `json:"total_cost_usd"`
	TotalCost         *float64        `json:"total_cost"` // older builds
	Usage             *usage          `json:"usage"`
	APIErrorCode      json.RawMessage `json:"api_error_status"`
}

// denial is one entry of a result line's permission_denials: a tool call the CLI refused (its permission
// rules or a PreToolUse hook said no).
type denial struct {
	ToolName  string          `json:"tool_name"`
	ToolUseID string          `json:"tool_use_id"`
	ToolInput json.RawMessage `json:"tool_input"`
}

type usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
}

// total counts every token the turn processed: input (fresh, cache reads and cache writes) and output.
func (u usage) total() int {
	return u.InputTokens + u.OutputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens
}

type message struct {
	ID      string          `json:"id"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string (user prompt) or an array of blocks
}

type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Thinking  string          `json:"thinking"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"` // tool_result: a string or an array of blocks
	IsError   bool            `json:"is_error"`
	ToolName  string          `json:"tool_name"` // tool_reference (in ToolSearch's results)
}

type streamEvent struct {
	Type    string `json:"type"`
	Message struct {
		ID string `json:"id"`
	} `json:"message"`
	Delta struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		Thinking string `json:"thinking"`
	} `json:"delta"`
}

// toolUse is what the parser remembers of a tool_use block until its result arrives.
type toolUse struct {
	name  string
	input json.RawMessage
}

// parser turns stream-json lines into events. It is fed one line at a time, in order, by one goroutine.
type parser struct {
	sessionID string
	// tools maps tool_use ids to their blocks so results can name their tool and approvals their command.
	tools map[string]toolUse
	// streamed holds the ids of messages whose text already went out as partial deltas, so the complete
	// assistant line that follows does not repeat it.
	streamed map[string]bool
	curMsg   string // id of the message the current stream_event deltas belong to
	// final is the completed or error event of the `result` line, once it arrived.
	final *agent.Event
	// denied holds the ids of tool calls the CLI refused that a notice went out for; refusals lists
	// them in order. errOutputs keeps error results by tool call id, for the notice's reason.
	denied     map[string]bool
	refusals   []denial
	errOutputs map[string]string
}

func newParser() *parser {
	return &parser{tools: make(map[string]toolUse), streamed: make(map[string]bool), denied: make(map[string]bool),
		errOutputs: make(map[string]string)}
}

// it0Tool reports whether a CLI tool name is one of IT0's MCP tools.
func it0Tool(name string) bool { return strings.HasPrefix(name, "mcp__"+MCPServerName+"__") }

// parseLine decodes one stream-json line and returns the events it produces. It returns errSkip
// (wrapped) for lines that produce nothing because they do not parse or are of no interest, and
// records the session id and the final result as a side effect.
func (p *parser) parseLine(b []byte) ([]agent.Event, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errSkip
	}
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%w: %v", errSkip, err)
	}
	if l.SessionID != "" && (p.sessionID == "" || l.Type == "system" || l.Type == "result") {
		p.sessionID = l.SessionID
	}
	sub := l.ParentToolUseID != nil && *l.ParentToolUseID != ""
	switch l.Type {
	case "system":
		switch l.Subtype {
		case "permission_denied":
			return p.refused(denial{ToolName: l.ToolName, ToolUseID: l.ToolUseID}, jsonString(l.Message)), nil
		case "init":
			for _, srv := range l.MCPServers {
				if srv.Name == MCPServerName && srv.Status != "connected" {
					return []agent.Event{{Type: agent.EventNotice, Code: agent.CodeEngineLog, Message: fmt.Sprintf(
						"IT0's MCP server (`it0 mcp`, from the workspace's %s) is %q in Claude Code, not connected: IT0's tools are missing from this run", MCPConfigFile, srv.Status)}}, nil
				}
			}
		}
		return nil, errSkip
	case "stream_event":
		if sub {
			return nil, errSkip
		}
		return p.streamEvent(l.Event)
	case "assistant":
		return p.assistant(l.Message, sub)
	case "user":
		return p.user(l.Message, l.ToolUseResult)
	case "result":
		return p.result(&l), nil
	default:
		return nil, fmt.Errorf("%w: type %q", errSkip, l.Type)
	}
}

func (p *parser) streamEvent(raw json.RawMessage) ([]agent.Event, error) {
	var ev streamEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("%w: stream_event: %v", errSkip, err)
	}
	switch ev.Type {
	case "message_start":
		p.curMsg = ev.Message.ID
	case "content_block_delta":
		var e agent.Event
		switch ev.Delta.Type {
		case "text_delta":
			e = agent.Event{Type: agent.EventText, Text: ev.Delta.Text}
		case "thinking_delta":
			e = agent.Event{Type: agent.EventThinking, Text: ev.Delta.Thinking}
		default:
			return nil, errSkip
		}
		if e.Text == "" {
			return nil, errSkip
		}
		p.streamed[p.curMsg] = true
		return []agent.Event{e}, nil
	}
	return nil, errSkip
}

func (p *parser) assistant(raw json.RawMessage, sub bool) ([]agent.Event, error) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: assistant: %v", errSkip, err)
	}
	var blocks []block
	if err := json.Unmarshal(m.Content, &blocks); err != nil {
		return nil, fmt.Errorf("%w: assistant content: %v", errSkip, err)
	}
	// Without partial messages (or for a message whose deltas we did not see) the complete line is
	// the only place the text appears. Subagents' prose stays out of the session's stream.
	showText := !sub && (m.ID == "" || !p.streamed[m.ID])
	var evs []agent.Event
	for _, bl := range blocks {
		switch bl.Type {
		case "text":
			if showText && bl.Text != "" {
				evs = append(evs, agent.Event{Type: agent.EventText, Text: bl.Text})
			}
		case "thinking":
			if showText && bl.Thinking != "" {
				evs = append(evs, agent.Event{Type: agent.EventThinking, Text: bl.Thinking})
			}
		case "tool_use":
			input := bl.Input
			if !json.Valid(input) {
				input = json.RawMessage("{}")
			}
			p.tools[bl.ID] = toolUse{name: bl.Name, input: input}
			evs = append(evs, agent.Event{Type: agent.EventToolUse, Tool: bl.Name, ToolUseID: bl.ID, Input: input})
		}
	}
	return evs, nil
}

// refused records a tool call the CLI refused and returns its notice, or nothing when one went out
// already (the CLI reports a refusal on a system line as it happens and again in the result line).
func (p *parser) refused(d denial, reason string) []agent.Event {
	if d.ToolUseID != "" && p.denied[d.ToolUseID] {
		return nil
	}
	if d.ToolUseID != "" {
		p.denied[d.ToolUseID] = true
	}
	if d.ToolName == "" {
		d.ToolName = p.tools[d.ToolUseID].name
	}
	p.refusals = append(p.refusals, d)
	reason = cmp.Or(reason, p.errOutputs[d.ToolUseID])
	msg := "Claude Code refused the call to " + cmp.Or(d.ToolName, "a tool")
	input := d.ToolInput
	if len(input) == 0 {
		input = p.tools[d.ToolUseID].input
	}
	if cmd := commandOf(input); cmd != "" && cmd != "{}" && cmd != "null" {
		msg += " (" + cmd + ")"
	}
	if reason != "" {
		msg += ": " + reason
	}
	return []agent.Event{{Type: agent.EventNotice, Code: agent.CodePermissionDenied, Tool: d.ToolName, ToolUseID: d.ToolUseID, Message: msg}}
}

// result handles the final line: notices for refusals not reported yet, then the final event. A run
// whose every IT0 tool call the CLI refused did nothing it was asked to, whatever its text says, so it
// ends as a permission_denied error rather than completed.
func (p *parser) result(l *line) []agent.Event {
	var evs []agent.Event
	for _, d := range l.PermissionDenials {
		evs = append(evs, p.refused(d, "")...)
	}
	ev := resultEvent(l)
	if ev.Type == agent.EventCompleted {
		if names := p.refusedIT0(); len(names) > 0 {
			ev = agent.Event{Type: agent.EventError, Code: agent.CodePermissionDenied, TokensUsed: ev.TokensUsed, CostUSD: ev.CostUSD,
				Message: "the Claude Code CLI refused every call to IT0's tools (" + strings.Join(names, ", ") + "), so none reached IT0; " +
					"check the CLI's permission settings (IT0 passes --allowedTools " + "mcp__" + MCPServerName + ") and the notices above"}
		}
	}
	p.final = &ev
	return evs
}

// refusedIT0 returns the names of the IT0 tools the CLI refused when it refused every IT0 tool call of
// the run, else nil.
func (p *parser) refusedIT0() []string {
	var names []string
	for _, d := range p.refusals {
		if it0Tool(d.ToolName) && !slices.Contains(names, d.ToolName) {
			names = append(names, d.ToolName)
		}
	}
	for id, tu := range p.tools {
		if it0Tool(tu.name) && !p.denied[id] {
			return nil
		}
	}
	return names
}

func (p *parser) user(raw, toolUseResult json.RawMessage) ([]agent.Event, error) {
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: user: %v", errSkip, err)
	}
	var blocks []block
	if err := json.Unmarshal(m.Content, &blocks); err != nil {
		// A plain string is a user prompt (or the interrupt notice), not a tool result.
		return nil, errSkip
	}
	results := 0
	for _, bl := range blocks {
		if bl.Type == "tool_result" {
			results++
		}
	}
	var evs []agent.Event
	for _, bl := range blocks {
		if bl.Type != "tool_result" {
			continue
		}
		out := contentText(bl.Content)
		if out == "" && results == 1 {
			// The line's structured copy of the result is the next best thing to show.
			out = compactJSON(toolUseResult)
		}
		if bl.IsError {
			p.errOutputs[bl.ToolUseID] = out
		}
		tu := p.tools[bl.ToolUseID]
		evs = append(evs, agent.Event{Type: agent.EventToolResult, Tool: tu.name, ToolUseID: bl.ToolUseID, Output: out, IsError: bl.IsError})
		if id, level, ok := agent.ParseApprovalMarker(out); ok {
			evs = append(evs, agent.Event{
				Type:       agent.EventApprovalRequired,
				Tool:       tu.name,
				ToolUseID:  bl.ToolUseID,
				ApprovalID: id,
				RiskLevel:  &level,
				Command:    commandOf(tu.input),
			})
		}
	}
	if len(evs) == 0 {
		return nil, errSkip
	}
	return evs, nil
}

// contentText flattens a tool_result's content (a string or an array of blocks) into text. Blocks other
// than text become readable stand-ins: ToolSearch answers with tool_reference blocks, which would
// otherwise leave an empty output.
func contentText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	var blocks []block
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return ""
	}
	var raws []json.RawMessage
	_ = json.Unmarshal(raw, &raws) // cannot fail where blocks parsed
	var parts []string
	for i, b := range blocks {
		switch b.Type {
		case "text":
			parts = append(parts, b.Text)
		case "tool_reference":
			parts = append(parts, "[tool loaded: "+b.ToolName+"]")
		case "image":
			parts = append(parts, "[image]")
		default:
			if i < len(raws) {
				parts = append(parts, compactJSON(raws[i]))
			}
		}
	}
	return strings.Join(parts, "\n")
}

// compactJSON returns raw as compact JSON, or "" for nothing, null or invalid JSON.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil || b.String() == "null" {
		return ""
	}
	return b.String()
}

// jsonString returns raw as a string when it is a JSON string, else "".
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// commandOf returns the command a tool input asks for: its "command" field (Bash, IT0's run_command),
// else the whole input as JSON.
func commandOf(input json.RawMessage) string {
	var in struct {
		Command string `json:"command"`
	}
	if err := json.Unmarshal(input, &in); err == nil && in.Command != "" {
		return in.Command
	}
	return string(input)
}

// resultEvent maps the final result line to a completed or error event. The CLI reports API failures
// as subtype success with is_error set, so is_error decides, and the subtype only picks the code.
func resultEvent(l *line) agent.Event {
	cost := 0.0
	if l.TotalCostUSD != nil {
		cost = *l.TotalCostUSD
	} else if l.TotalCost != nil {
		cost = *l.TotalCost
	}
	tokens := 0
	if l.Usage != nil {
		tokens = l.Usage.total()
	}
	if !l.IsError && (l.Subtype == "success" || l.Subtype == "") {
		return agent.Event{Type: agent.EventCompleted, Summary: l.Result, TokensUsed: tokens, CostUSD: cost}
	}
	code := agent.CodeEngine
	switch l.Subtype {
	case "error_max_turns":
		code = agent.CodeMaxTurns
	case "error_max_budget_usd":
		code = agent.CodeBudget
	}
	msg := strings.Join(l.Errors, "; ")
	if msg == "" {
		msg = l.Result
	}
	if status := strings.TrimSpace(string(l.APIErrorCode)); status != "" && status != "null" {
		if n, err := strconv.Atoi(status); err == nil {
			msg = fmt.Sprintf("API error %d: %s", n, msg)
		}
	}
	if msg == "" {
		msg = "claude reported " + cmp.Or(l.Subtype, "an error")
	}
	return agent.Event{Type: agent.EventError, Code: code, Message: msg, TokensUsed: tokens, CostUSD: cost}
}
