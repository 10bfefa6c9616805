// Package alerts evaluates alert rules on metric samples like Prometheus `for:` clauses and keeps alert
// events: a fired alert is published (standing orders waiting for alert_fired) and may start the rule's
// runbook through a Remediator.
//
// Evaluation state (pending since, firing event) is persisted on every transition, so a restart neither
// forgets a condition that has been pending for four of its five minutes nor fires a second event for an
// alert that is already firing. Replicas share it: states are re-read with the rules, and the database
// keeps one open event per rule and server.
package alerts

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor"
)

// Severities, lowest first.
var Severities = []string{"info", "warning", "critical", "fatal"}

// Alert event statuses. An acknowledged alert is still firing; someone has taken it.
const (
	Firing       = "firing"
	Acknowledged = "acknowledged"
	Resolved     = "resolved"
)

// Statuses lists the event statuses.
var Statuses = []string{Firing, Acknowledged, Resolved}

// Condition is when a rule fires: metric operator threshold, held for DurationSeconds (Prometheus' `for:`).
type Condition struct {
	Operator        string  `json:"operator"`
	Threshold       float64 `json:"threshold"`
	DurationSeconds int     `json:"duration_seconds"`
}

// Holds reports whether value meets the condition.
func (c Condition) Holds(value float64) bool { return monitor.Holds(value, c.Operator, c.Threshold) }

// worse reports whether a is further into the condition than b: of several series of one server (the
// mounts of disk_usage), the rule judges the worst.
func (c Condition) worse(a, b float64) bool {
	switch c.Operator {
	case "<", "<=":
		return a < b
	case "==":
		return a == c.Threshold && b != c.Threshold
	case "!=":
		return a != c.Threshold && b == c.Threshold
	}
	return a > b
}

// Rule is an alert rule: a condition on one metric of the targeted servers (every server when
// TargetServers is empty), a severity, and optionally a runbook that remediates it.
type Rule struct {
	ID            string    `json:"id"`
	TenantID      string    `json:"tenant_id"`
	Name          string    `json:"name"`
	Metric        string    `json:"metric_type"`
	Condition     Condition `json:"condition"`
	Severity      string    `json:"severity"`
	TargetServers []string  `json:"target_servers"`
	RunbookID     string    `json:"runbook_id,omitempty"`
	Active        bool      `json:"active"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Validate checks r, naming each bad field.
func (r *Rule) Validate() error {
	var list []error
	if strings.TrimSpace(r.Name) == "" || len(r.Name) > 200 {
		list = append(list, errs.Invalidf("name", "name is required (at most 200 characters)"))
	}
	if !monitor.ValidMetricType(r.Metric) {
		list = append(list, errs.Invalidf("metric_type", "metric_type %q is not one of %s (or a custom lowercase name)", r.Metric, strings.Join(monitor.MetricTypes, ", ")))
	}
	if !slices.Contains(monitor.Operators, r.Condition.Operator) {
		list = append(list, errs.Invalidf("condition.operator", "condition.operator %q is not one of %s", r.Condition.Operator, strings.Join(monitor.Operators, " ")))
	}
	if r.Condition.DurationSeconds < 0 || r.Condition.DurationSeconds > 7*86400 {
		list = append(list, errs.Invalidf("condition.duration_seconds", "condition.duration_seconds must be from 0 to 604800 (7 days)"))
	}
	if !slices.Contains(Severities, r.Severity) {
		list = append(list, errs.Invalidf("severity", "severity %q is not one of %s", r.Severity, strings.Join(Severities, ", ")))
	}
	if len(r.TargetServers) > 10000 {
		list = append(list, errs.Invalidf("target_servers", "target_servers lists at most 10000 servers (omit it for every server)"))
	}
	if r.TargetServers == nil {
		r.TargetServers = []string{}
	}
	return errs.Join(list...)
}

// targets reports whether the rule applies to serverID.
func (r *Rule) targets(serverID string) bool {
	return len(r.TargetServers) == 0 || slices.Contains(r.TargetServers, serverID)
}

// Event is an alert: one firing of a rule on one server, from fired to resolved. There is at most one
// open (unresolved) event per rule and server.
type Event struct {
	ID        string  `json:"id"`
	TenantID  string  `json:"tenant_id"`
	RuleID    string  `json:"rule_id"`
	RuleName  string  `json:"rule_name"`
	ServerID  string  `json:"server_id"`
	Metric    string  `json:"metric_type"`
	Label     string  `json:"label,omitempty"`
	Severity  string  `json:"severity"`
	Status    string  `json:"status"`
	Value     float64 `json:"value"` // the value that fired it
	Operator  string  `json:"operator"`
	Threshold float64 `json:"threshold"`
	Message   string  `json:"message"`
	// LastValue is the latest value seen while firing (the value that resolved it, once resolved).
	LastValue      float64    `json:"last_value"`
	PendingSince   time.Time  `json:"pending_since"`
	FiredAt        time.Time  `json:"fired_at"`
	ResolvedAt     *time.Time `json:"resolved_at,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	AcknowledgedBy string     `json:"acknowledged_by,omitempty"`
	// Remediation: the runbook run started for this firing, and what became of it.
	RunbookID         string `json:"runbook_id,omitempty"`
	RemediationTaskID string `json:"remediation_task_id,omitempty"`
	RemediationSessID string `json:"remediation_session_id,omitempty"`
	RemediationError  string `json:"remediation_error,omitempty"`
	// Resolution says how the alert ended, e.g. "resolved 4m after remediation task … started".
	Resolution string `json:"resolution,omitempty"`
}

// Filter selects alert events.
type Filter struct {
	Status   string // firing, acknowledged or resolved; "" for all
	Severity string
	RuleID   string
	ServerID string
	Limit    int
}

// State is a rule's evaluation state on one server, persisted on every transition so that a restart
// resumes a pending condition where it was.
type State struct {
	RuleID   string    `json:"rule_id"`
	ServerID string    `json:"server_id"`
	Since    time.Time `json:"since"`              // when the condition started to hold
	Value    float64   `json:"value"`              // the value when it started
	EventID  string    `json:"event_id,omitempty"` // the open event once firing
}

// Store is what alerting needs from storage; every method acts on the tenant in ctx.
type Store interface {
	AlertRuleCreate(ctx context.Context, r *Rule) error
	AlertRuleGet(ctx context.Context, id string) (*Rule, error) // errs.NotFound
	AlertRuleList(ctx context.Context) ([]Rule, error)
	AlertRuleUpdate(ctx context.Context, r *Rule) error   // errs.NotFound
	AlertRuleDelete(ctx context.Context, id string) error // errs.NotFound; also drops its states
	// AlertEventOpen inserts e unless the rule already has an open event on the server: then errs.Conflict.
	AlertEventOpen(ctx context.Context, e *Event) error
	AlertEventGet(ctx context.Context, id string) (*Event, error) // errs.NotFound
	AlertEventList(ctx context.Context, f Filter) ([]Event, error)
	AlertEventUpdate(ctx context.Context, e *Event) error // errs.NotFound
	// AlertEventCount counts open events by severity.
	AlertEventCount(ctx context.Context) (map[string]int, error)
	AlertStateList(ctx context.Context) ([]State, error)
	AlertStatePut(ctx context.Context, s *State) error
	AlertStateDelete(ctx context.Context, ruleID, serverID string) error
}
