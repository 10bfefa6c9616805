package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops/approval"
)

// ToolListAlerts is the agent tool that lists recent alerts.
const ToolListAlerts = "list_alerts"

// Tools offers monitoring to agent sessions: list_alerts, read-only.
type Tools struct {
	alerts *Service
}

// NewTools returns the monitoring tools over alerts.
func NewTools(alerts *Service) *Tools { return &Tools{alerts: alerts} }

// Tools lists the monitoring tools with their JSON Schemas.
func (t *Tools) Tools() []agentapi.Tool {
	return []agentapi.Tool{{Name: ToolListAlerts,
		Description: "List recent alerts, newest first: rule, server, severity, status, the value that fired it, when it fired and resolved, " +
			"who acknowledged it, and the runbook run started for it. Filter by status and severity.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"status":{"enum":["firing","acknowledged","resolved"]},` +
			`"severity":{"enum":["info","warning","critical","fatal"]},"server_id":{"type":"string"},` +
			`"limit":{"type":"integer","minimum":1,"maximum":200,"description":"default 20"}}}`)}}
}

// CallTool runs list_alerts.
func (t *Tools) CallTool(ctx context.Context, sess *agentapi.Session, name string, input json.RawMessage) (agentapi.ToolResult, bool, error) {
	if name != ToolListAlerts {
		return agentapi.ToolResult{}, false, nil
	}
	var in struct {
		Status   string `json:"status"`
		Severity string `json:"severity"`
		ServerID string `json:"server_id"`
		Limit    int    `json:"limit"`
	}
	if len(input) > 0 {
		if err := json.Unmarshal(input, &in); err != nil {
			return agentapi.ToolResult{IsError: true, Output: "bad input: " + err.Error()}, true, nil
		}
	}
	if in.Limit <= 0 || in.Limit > 200 {
		in.Limit = 20
	}
	list, err := t.alerts.Events(ctx, Filter{Status: in.Status, Severity: in.Severity, ServerID: in.ServerID, Limit: in.Limit})
	if err != nil {
		// Bad filters are the model's to fix; anything else ends the run.
		if errs.Is(err, errs.Invalid) {
			return agentapi.ToolResult{IsError: true, Output: err.Error()}, true, nil
		}
		return agentapi.ToolResult{}, true, err
	}
	return agentapi.ToolResult{Output: FormatAlerts(list)}, true, nil
}

// Approved is never called: list_alerts needs no approval.
func (t *Tools) Approved(ctx context.Context, sess *agentapi.Session, a *approval.Approval) (agentapi.ToolResult, bool) {
	return agentapi.ToolResult{}, false
}

// FormatAlerts renders alerts one per line, as the agent and the CLI show them.
func FormatAlerts(list []Event) string {
	if len(list) == 0 {
		return "no alerts match"
	}
	var b strings.Builder
	for _, e := range list {
		fmt.Fprintf(&b, "%s [%s] %s %s on %s: %s %s %g (value %g), fired %s", e.ID, e.Severity, e.Status, e.RuleName, e.ServerID,
			e.Metric, e.Operator, e.Threshold, e.Value, e.FiredAt.Format(time.RFC3339))
		if e.Label != "" {
			fmt.Fprintf(&b, " [%s]", e.Label)
		}
		if e.AcknowledgedBy != "" {
			fmt.Fprintf(&b, ", acknowledged by %s", e.AcknowledgedBy)
		}
		if e.ResolvedAt != nil {
			fmt.Fprintf(&b, ", resolved %s (%s)", e.ResolvedAt.Format(time.RFC3339), e.Resolution)
		}
		if e.RemediationTaskID != "" {
			fmt.Fprintf(&b, ", remediation task %s (session %s)", e.RemediationTaskID, e.RemediationSessID)
		}
		if e.RemediationError != "" {
			fmt.Fprintf(&b, ", remediation not started: %s", e.RemediationError)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
