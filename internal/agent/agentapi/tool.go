package agentapi

import (
	"encoding/json"
	"fmt"
)

// Tool names shared by every engine (and exposed to Claude Code through `it0 mcp`).
const (
	ToolRunCommand      = "run_command"
	ToolReadFile        = "read_file"
	ToolListServers     = "list_servers"
	ToolDescribeServer  = "describe_server"
	ToolListClusters    = "list_clusters"
	ToolDescribeCluster = "describe_cluster"
)

// Tool describes one tool the model may call. InputSchema is a JSON Schema object.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// ToolResult is what a tool call returned, as the model will see it.
type ToolResult struct {
	Output  string
	IsError bool
}

// ApprovalRequired is returned by a tool call (the agent's Toolbox.Call, a tool provider's CallTool) when
// the call needs a human decision first. The engine emits an approval_required event and pauses.
type ApprovalRequired struct {
	ApprovalID string
	Command    string
	RiskLevel  int
	Reason     string
}

func (e *ApprovalRequired) Error() string {
	return fmt.Sprintf("approval %s required for L%d command %q", e.ApprovalID, e.RiskLevel, e.Command)
}
