package alerts

import (
	"context"
	"fmt"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops"
)

// RunbookRunner is what remediation needs from ops (ops.Service).
type RunbookRunner interface {
	Runbook(ctx context.Context, id string) (*ops.Runbook, error)
	RunRunbook(ctx context.Context, id string, vars map[string]string, servers []string) (*ops.Task, error)
	RecordResolution(ctx context.Context, taskID, resolution string) error
}

// RunbookRemediator starts a rule's runbook through ops when the runbook is enabled and its risk level is
// within what may run unattended. Commands above L0 still wait for approval inside the run, unless the
// runbook itself auto-approves (emergency mode).
type RunbookRemediator struct {
	runner     RunbookRunner
	maxRisk    int
	serverName func(ctx context.Context, id string) (string, error)
}

var _ Remediator = (*RunbookRemediator)(nil)

// NewRunbookRemediator returns a remediator allowing runbooks up to maxRisk (0–2).
func NewRunbookRemediator(r RunbookRunner, maxRisk int) *RunbookRemediator {
	return &RunbookRemediator{runner: r, maxRisk: maxRisk}
}

// WithServerNames makes {{.server}} the alert's server name, looked up by name (its id stays in
// {{.server_id}}); without it {{.server}} is the id.
func (r *RunbookRemediator) WithServerNames(name func(ctx context.Context, id string) (string, error)) *RunbookRemediator {
	r.serverName = name
	return r
}

// Remediate starts runbookID on the alert's server, with the alert as template variables (server,
// server_id, alert, alert_id, metric, value, threshold, severity, label).
func (r *RunbookRemediator) Remediate(ctx context.Context, runbookID string, ev *Event) (string, string, error) {
	rb, err := r.runner.Runbook(ctx, runbookID)
	if err != nil {
		return "", "", fmt.Errorf("runbook %s: %w", runbookID, err)
	}
	if !rb.Enabled {
		return "", "", errs.New(errs.Conflict, "runbook %s is disabled", rb.Name)
	}
	if rb.MaxRiskLevel > r.maxRisk {
		return "", "", errs.New(errs.Forbidden, "runbook %s may run L%d commands; unattended remediation is limited to L%d (IT0_MONITOR_REMEDIATION_MAX_RISK)",
			rb.Name, rb.MaxRiskLevel, r.maxRisk)
	}
	server := ev.ServerID
	if r.serverName != nil && ev.ServerID != "" {
		if server, err = r.serverName(ctx, ev.ServerID); err != nil {
			return "", "", fmt.Errorf("name of server %s: %w", ev.ServerID, err)
		}
	}
	vars := map[string]string{"server": server, "server_id": ev.ServerID, "alert": ev.RuleName, "alert_id": ev.ID,
		"metric": ev.Metric, "value": fmt.Sprintf("%g", ev.Value), "threshold": fmt.Sprintf("%g", ev.Threshold), "severity": ev.Severity, "label": ev.Label}
	t, err := r.runner.RunRunbook(ctx, rb.ID, vars, []string{ev.ServerID})
	if err != nil {
		return "", "", err
	}
	return t.ID, t.SessionID, nil
}

// Resolved notes the alert's resolution on the task its runbook ran as.
func (r *RunbookRemediator) Resolved(ctx context.Context, taskID, resolution string) error {
	return r.runner.RecordResolution(ctx, taskID, resolution)
}
