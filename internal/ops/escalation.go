package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/ops/approval"
)

// reportInput is the input of the report_escalation tool.
type reportInput struct {
	Reason   string `json:"reason"`
	Proposal string `json:"proposal"`
	Severity string `json:"severity"`
	Rule     string `json:"rule"`   // the escalation rule that applies: its number (1, 2…) or its condition
	Server   string `json:"server"` // the server concerned, when there is one
}

// Rule returns the escalation rule ref names: its number (1-based, "#2" too) or its condition (exactly,
// ignoring case, else the one condition that contains ref or is contained in it); nil when none does.
func (b *DecisionBoundary) Rule(ref string) *EscalationRule {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(ref, "#")); err == nil {
		if n >= 1 && n <= len(b.EscalationRules) {
			return &b.EscalationRules[n-1]
		}
		return nil
	}
	low := strings.ToLower(ref)
	var loose *EscalationRule
	for i := range b.EscalationRules {
		c := strings.ToLower(strings.TrimSpace(b.EscalationRules[i].Condition))
		if c == low {
			return &b.EscalationRules[i]
		}
		if c != "" && (strings.Contains(c, low) || strings.Contains(low, c)) {
			if loose != nil {
				return nil // ambiguous
			}
			loose = &b.EscalationRules[i]
		}
	}
	return loose
}

// EscalationRoute is comm's Config.Route: how the escalation of approval a in a standing order's run goes
// and what it says. The rule the agent named (report_escalation's rule) sets the severity and the channel;
// without one, the order's escalation policy; without that, comm uses the tenant's default. Sessions that
// are no order's run get the zero Route.
func (s *Orders) EscalationRoute(ctx context.Context, a *approval.Approval) (comm.Route, error) {
	var r comm.Route
	if !a.Unattended() {
		return r, nil
	}
	e, err := s.store.ExecutionGet(ctx, a.OriginID)
	if errs.Is(err, errs.NotFound) {
		return r, nil
	} else if err != nil {
		return r, err
	}
	o, err := s.store.StandingOrderGet(ctx, e.OrderID)
	if errs.Is(err, errs.NotFound) {
		return r, nil
	} else if err != nil {
		return r, err
	}
	r.Order, r.OrderName = o.ID, o.Name
	var server string
	switch a.Tool {
	case ToolReportEscalation:
		var in reportInput
		json.Unmarshal(a.ToolInput, &in)
		r.Finding, r.Proposal, server = in.Reason, in.Proposal, in.Server
		r.Why = "the agent judged it beyond the order's boundary"
		if rule := o.DecisionBoundary.Rule(in.Rule); rule != nil {
			r.Rule, r.Severity, r.Channels = rule.Condition, rule.Priority, []string{rule.Channel}
			r.Why = "escalation rule: " + rule.Condition
		}
	case agentapi.ToolRunCommand:
		var in struct {
			Server  string   `json:"server"`
			Servers []string `json:"servers"`
		}
		json.Unmarshal(a.ToolInput, &in)
		server = strings.Join(append([]string{in.Server}, in.Servers...), ", ")
		r.Finding = "the run wants to run an L" + strconv.Itoa(a.RiskLevel) + " command"
		if a.Reason != "" {
			r.Finding += " (" + strings.TrimPrefix(a.Reason, "beyond the standing order's boundary: ") + ")"
		}
		r.Proposal = a.Command
		r.Why = fmt.Sprintf("L%d is beyond the order's max L%d", a.RiskLevel, o.AgentInstructions.MaxRiskLevel)
	default:
		r.Finding, r.Why = a.Command, a.Reason
	}
	r.Server = strings.Trim(server, ", ")
	if r.Server == "" {
		if sess, err := s.agent.Session(ctx, a.SessionID); err == nil {
			r.Server = s.serverNames(ctx, sess.ServerIDs)
		}
	}
	if r.Severity == "" && o.EscalationPolicyID != "" {
		r.Severity, r.Policy = o.EscalationPolicyID, o.EscalationPolicyID
	}
	return r, nil
}

// serverNames names the servers ids (the first three, then how many more).
func (s *Orders) serverNames(ctx context.Context, ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	list, err := s.fleet.Servers(ctx, inventory.Selector{ServerIDs: ids})
	if err != nil {
		return ""
	}
	var names []string
	for _, srv := range list {
		names = append(names, srv.Name)
	}
	if len(names) > 3 {
		return fmt.Sprintf("%s +%d", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}
