package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/ops/approval"
	opsconfig "github.com/it0/it0/ops-config"
)

// Standing-order tools, offered to every session.
const (
	ToolCreateOrder      = "create_standing_order"
	ToolUpdateOrder      = "update_standing_order"
	ToolPauseOrder       = "pause_standing_order"
	ToolResumeOrder      = "resume_standing_order"
	ToolListOrders       = "list_standing_orders"
	ToolReportEscalation = "report_escalation"
)

// Tools lists the standing-order tools with their JSON Schemas.
func (s *Orders) Tools() []agentapi.Tool {
	idOnly := json.RawMessage(`{"type":"object","properties":{"id":{"type":"string","description":"SO-YYYYMMDD-NNN"}},"required":["id"]}`)
	return []agentapi.Tool{
		{Name: ToolCreateOrder, Description: "Propose a standing order (a recurring duty that runs unattended). The admin must confirm it: " +
			"the call pauses for their approval and the order exists only after they approve. Validation errors name each bad field; fix and call again.",
			InputSchema: opsconfig.StandingOrderSchema},
		{Name: ToolUpdateOrder, Description: "Change fields of a standing order (a JSON merge patch in changes); the change is audited with a diff.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"},"changes":{"type":"object"}},"required":["id","changes"]}`)},
		{Name: ToolPauseOrder, Description: "Pause a standing order.", InputSchema: idOnly},
		{Name: ToolResumeOrder, Description: "Resume a paused standing order.", InputSchema: idOnly},
		{Name: ToolListOrders, Description: "List standing orders (id, name, status, trigger, targets).",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"status":{"enum":["active","paused","archived"]}}}`)},
		{Name: ToolReportEscalation, Description: "Escalate to a human when something is beyond your decision boundary: say what you found and what you propose. " +
			"When one of the standing order's escalation rules applies, name it in rule (its number): it decides who is reached, how and how urgently. " +
			"The run pauses until someone approves (continue), rejects (stop) or instructs you.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string","description":"what you found, in one sentence"},` +
				`"proposal":{"type":"string","description":"the action you propose"},"server":{"type":"string","description":"the server concerned"},` +
				`"rule":{"type":"string","description":"the number of the escalation rule that applies (1, 2…), if any"},` +
				`"severity":{"enum":["info","warning","critical","fatal"]}},"required":["reason"]}`)},
	}
}

func toolErr(format string, args ...any) agentapi.ToolResult {
	return agentapi.ToolResult{IsError: true, Output: fmt.Sprintf(format, args...)}
}

// Summary is how a standing order reads to the admin who confirms it.
func (o *StandingOrder) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Standing order %q: ", o.Name)
	switch o.Trigger.Type {
	case "cron":
		fmt.Fprintf(&b, "runs on cron %q (%s)", o.Trigger.CronExpression, o.Trigger.Timezone)
	case "event":
		fmt.Fprintf(&b, "runs on event %s", o.Trigger.EventType)
	case "threshold":
		if tc := o.Trigger.ThresholdCondition; tc != nil {
			fmt.Fprintf(&b, "runs when %s %s %g for %ds", tc.MetricType, tc.Operator, tc.Value, tc.DurationSeconds)
		}
	default:
		b.WriteString("runs when started by hand")
	}
	t := o.Targets
	switch {
	case t.AllServers:
		b.WriteString(" on all servers")
	case len(t.ServerIDs) > 0:
		fmt.Fprintf(&b, " on %s", strings.Join(t.ServerIDs, ", "))
	}
	if len(t.EnvironmentFilter) > 0 {
		fmt.Fprintf(&b, " in %s", strings.Join(t.EnvironmentFilter, ", "))
	}
	if len(t.TagFilter) > 0 {
		fmt.Fprintf(&b, " tagged %s", strings.Join(t.TagFilter, ","))
	}
	fmt.Fprintf(&b, "; does: %s; may run up to L%d, escalates the rest", strings.TrimSpace(o.AgentInstructions.Prompt), o.AgentInstructions.MaxRiskLevel)
	return b.String()
}

// decodeDraft reads a draft strictly: an unknown field is an error the agent can fix.
func decodeDraft(input json.RawMessage) (*StandingOrder, error) {
	var o StandingOrder
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	o.ID, o.TenantID, o.Status = "", "", "active"
	return &o, nil
}

// CallTool runs a standing-order tool in sess.
func (s *Orders) CallTool(ctx context.Context, sess *agentapi.Session, name string, input json.RawMessage) (agentapi.ToolResult, bool, error) {
	switch name {
	case ToolCreateOrder:
		o, err := decodeDraft(input)
		if err != nil {
			return toolErr("the draft does not fit the StandingOrder schema: %v", err), true, nil
		}
		if err := s.validate(o); err != nil {
			return toolErr("the draft is invalid; fix these and call again:\n%s", strings.ReplaceAll(err.Error(), "; ", "\n")), true, nil
		}
		summary := o.Summary()
		if ok, err := s.agent.UseGrant(ctx, sess.ID, summary); err != nil || ok {
			if err != nil {
				return agentapi.ToolResult{}, true, err
			}
			return s.create(ctx, sess, o), true, nil
		}
		a, err := s.agent.RequestApproval(ctx, sess, ToolCreateOrder, summary, input, guard.L2, "a standing order runs unattended; the admin confirms it")
		if err != nil {
			return agentapi.ToolResult{}, true, err
		}
		return agentapi.ToolResult{}, true, &agentapi.ApprovalRequired{ApprovalID: a.ID, Command: summary, RiskLevel: a.RiskLevel, Reason: a.Reason}
	case ToolUpdateOrder:
		var in struct {
			ID      string          `json:"id"`
			Changes json.RawMessage `json:"changes"`
		}
		if err := json.Unmarshal(input, &in); err != nil {
			return toolErr("bad input: %v", err), true, nil
		}
		o, err := s.Update(ctx, in.ID, in.Changes, sess.ID)
		if err != nil {
			return toolErr("%v", err), true, nil
		}
		return agentapi.ToolResult{Output: "updated " + o.ID + ": " + o.Summary()}, true, nil
	case ToolPauseOrder, ToolResumeOrder:
		var in struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(input, &in); err != nil {
			return toolErr("bad input: %v", err), true, nil
		}
		status := "paused"
		if name == ToolResumeOrder {
			status = "active"
		}
		o, err := s.SetStatus(ctx, in.ID, status)
		if err != nil {
			return toolErr("%v", err), true, nil
		}
		return agentapi.ToolResult{Output: o.ID + " is now " + o.Status}, true, nil
	case ToolListOrders:
		var in struct {
			Status string `json:"status"`
		}
		json.Unmarshal(input, &in)
		list, err := s.List(ctx, in.Status)
		if err != nil {
			return toolErr("%v", err), true, nil
		}
		var lines []string
		for _, o := range list {
			lines = append(lines, fmt.Sprintf("%s [%s] %s", o.ID, o.Status, o.Summary()))
		}
		if len(lines) == 0 {
			return agentapi.ToolResult{Output: "no standing orders"}, true, nil
		}
		return agentapi.ToolResult{Output: strings.Join(lines, "\n")}, true, nil
	case ToolReportEscalation:
		var in reportInput
		if err := json.Unmarshal(input, &in); err != nil || strings.TrimSpace(in.Reason) == "" {
			return toolErr("reason is required"), true, nil
		}
		summary := "ESCALATION: " + in.Reason
		if in.Proposal != "" {
			summary += " — proposal: " + in.Proposal
		}
		if sess.Unattended() {
			s.markEscalated(ctx, sess.OriginID, input)
		}
		a, err := s.agent.RequestApproval(ctx, sess, ToolReportEscalation, summary, input, guard.L1, "the agent escalated: "+in.Reason)
		if err != nil {
			return agentapi.ToolResult{}, true, err
		}
		return agentapi.ToolResult{}, true, &agentapi.ApprovalRequired{ApprovalID: a.ID, Command: summary, RiskLevel: a.RiskLevel, Reason: in.Reason}
	}
	return agentapi.ToolResult{}, false, nil
}

// markEscalated records an escalation on an execution.
func (s *Orders) markEscalated(ctx context.Context, execID string, detail json.RawMessage) {
	e, err := s.store.ExecutionGet(ctx, execID)
	if err != nil {
		return
	}
	e.Status, e.Escalation = ExecAwaitingHuman, detail
	s.store.ExecutionUpdate(ctx, e)
}

// Approved carries out a confirmed standing-order call.
func (s *Orders) Approved(ctx context.Context, sess *agentapi.Session, a *approval.Approval) (agentapi.ToolResult, bool) {
	switch a.Tool {
	case ToolCreateOrder:
		o, err := decodeDraft(a.ToolInput)
		if err != nil {
			return toolErr("the confirmed draft no longer decodes: %v", err), true
		}
		return s.create(ctx, sess, o), true
	case ToolReportEscalation:
		if sess.Unattended() {
			if e, err := s.store.ExecutionGet(ctx, sess.OriginID); err == nil {
				e.Status = ExecRunning
				e.HumanResponse, _ = json.Marshal(map[string]string{"decision": "approved", "by": a.DecidedBy, "instruction": a.DecisionReason})
				s.store.ExecutionUpdate(ctx, e)
			}
		}
		out := "A human approved your proposal; go ahead within the boundary."
		if a.DecisionReason != "" {
			out += " Their instruction: " + a.DecisionReason
		}
		return agentapi.ToolResult{Output: out}, true
	}
	return agentapi.ToolResult{}, false
}

func (s *Orders) create(ctx context.Context, sess *agentapi.Session, o *StandingOrder) agentapi.ToolResult {
	if err := s.Create(ctx, o, sess.ID); err != nil {
		var e *errs.Error
		if errors.As(err, &e) {
			return toolErr("not created: %s", e.Message)
		}
		return toolErr("not created: %v", err)
	}
	return agentapi.ToolResult{Output: "created " + o.ID + ": " + o.Summary()}
}
