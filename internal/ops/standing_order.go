package ops

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor"
)

// StandingOrder is a recurring duty an admin defined in conversation: when it triggers, on which targets,
// what the agent does, where its authority ends, and how to escalate. Field names follow the original
// design's entity (snake_case on the wire).
type StandingOrder struct {
	ID                      string            `json:"id"`
	TenantID                string            `json:"tenant_id"`
	Name                    string            `json:"name"`
	Description             string            `json:"description,omitempty"`
	Trigger                 Trigger           `json:"trigger"`
	Targets                 Targets           `json:"targets"`
	AgentInstructions       AgentInstructions `json:"agent_instructions"`
	DecisionBoundary        DecisionBoundary  `json:"decision_boundary"`
	EscalationPolicyID      string            `json:"escalation_policy_id,omitempty"`
	Status                  string            `json:"status"`
	ValidFrom               *time.Time        `json:"valid_from,omitempty"`
	ValidUntil              *time.Time        `json:"valid_until,omitempty"`
	DefinedInSessionID      string            `json:"defined_in_session_id,omitempty"`
	LastModifiedInSessionID string            `json:"last_modified_in_session_id,omitempty"`
	CreatedBy               string            `json:"created_by"`
	CreatedAt               time.Time         `json:"created_at"`
	UpdatedAt               time.Time         `json:"updated_at"`
}

// Trigger says when an order runs.
type Trigger struct {
	Type               string              `json:"type"` // cron, event, threshold, manual
	CronExpression     string              `json:"cron_expression,omitempty"`
	Timezone           string              `json:"timezone,omitempty"`
	EventType          string              `json:"event_type,omitempty"`
	ThresholdCondition *ThresholdCondition `json:"threshold_condition,omitempty"`
}

// ThresholdCondition fires when metric op value holds for DurationSeconds.
type ThresholdCondition struct {
	MetricType      string  `json:"metric_type"`
	Operator        string  `json:"operator"`
	Value           float64 `json:"value"`
	DurationSeconds int     `json:"duration_seconds"`
}

// Targets says on which servers an order acts.
type Targets struct {
	ServerIDs         []string `json:"server_ids,omitempty"`
	ClusterIDs        []string `json:"cluster_ids,omitempty"`
	AllServers        bool     `json:"all_servers,omitempty"`
	EnvironmentFilter Strings  `json:"environment_filter,omitempty"` // any of these environments
	TagFilter         []string `json:"tag_filter,omitempty"`
}

// Strings is a list of strings that also reads a single string ("prod" as ["prod"]), the form earlier
// drafts used; it is written as a list.
type Strings []string

// UnmarshalJSON reads a list of strings or one string.
func (l *Strings) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = nil
		if one != "" {
			*l = Strings{one}
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("must be a string or a list of strings")
	}
	*l = list
	return nil
}

// AgentInstructions say what the agent does on each run. MaxRiskLevel is 0 or 1: unattended runs never
// make L2 changes themselves, they escalate them.
type AgentInstructions struct {
	Prompt       string   `json:"prompt"`
	Skills       []string `json:"skills,omitempty"`
	RunbookID    string   `json:"runbook_id,omitempty"`
	MaxRiskLevel int      `json:"max_risk_level"`
	MaxTurns     int      `json:"max_turns,omitempty"`
	MaxBudgetUSD float64  `json:"max_budget_usd,omitempty"`
}

// DecisionBoundary is where the agent's authority ends.
type DecisionBoundary struct {
	AllowedActions     []string         `json:"allowed_actions,omitempty"`
	EscalateConditions []string         `json:"escalate_conditions,omitempty"`
	EscalationRules    []EscalationRule `json:"escalation_rules,omitempty"`
}

// EscalationRule escalates on Condition through Channel with Priority.
type EscalationRule struct {
	Condition string `json:"condition"`
	Channel   string `json:"channel"`
	Priority  string `json:"priority"`
}

// Allowed values.
var (
	TriggerKinds = []string{"cron", "event", "threshold", "manual"}
	EventTypes   = []string{"alert_fired", "alert_resolved", "deployment_completed", "server_unreachable", "check_failed"}
	// Channels of escalation rules; "im" is whichever instant messenger the tenant has (Telegram, WeCom).
	Channels   = []string{"app", "push", "sms", "phone", "email", "telegram", "wecom", "im", "all"}
	Priorities = []string{"info", "warning", "critical", "fatal"}
	// Environments are the environments a server can be in.
	Environments = []string{"dev", "staging", "prod"}
	// channelAliases and priorityAliases map the vocabulary of the design's draft format to IT0's names.
	channelAliases  = map[string]string{"voice_call": "phone", "voice": "phone", "call": "phone", "text": "sms"}
	priorityAliases = map[string]string{"urgent": "fatal", "high": "critical", "normal": "warning", "low": "info"}
	OrderStatuses   = []string{"active", "paused", "archived"}
	orderNameRe     = regexp.MustCompile(`^\S.{0,199}$`)
	standingIDRe    = regexp.MustCompile(`^SO-\d{8}-\d{3,}$`)
)

// ValidStandingOrderID reports whether id has the form SO-YYYYMMDD-NNN.
func ValidStandingOrderID(id string) bool { return standingIDRe.MatchString(id) }

// StandingOrderID formats the n-th order defined on day.
func StandingOrderID(day time.Time, n int) string {
	return fmt.Sprintf("SO-%s-%03d", day.Format("20060102"), n)
}

// ValidateParams carries what validation needs from outside: a cron checker (with time zones).
type ValidateParams struct {
	CheckCron func(expr, tz string) error
	Now       time.Time
}

// Validate checks o against the StandingOrder schema and returns every problem, each naming its schema
// path (JSON pointer), e.g. "/trigger/cron_expression: …". Defaults are filled first.
func (o *StandingOrder) Validate(p ValidateParams) error {
	var list []error
	bad := func(path, format string, args ...any) {
		list = append(list, &errs.Error{Code: errs.Invalid, Field: path, Message: path + ": " + fmt.Sprintf(format, args...)})
	}
	if !orderNameRe.MatchString(o.Name) {
		bad("/name", "name is required (1 to 200 characters)")
	}
	if o.Status == "" {
		o.Status = "active"
	}
	if !slices.Contains(OrderStatuses, o.Status) {
		bad("/status", "%q is not one of %s", o.Status, strings.Join(OrderStatuses, ", "))
	}
	tr := &o.Trigger
	switch tr.Type {
	case "cron":
		if tr.Timezone == "" {
			tr.Timezone = "UTC"
		}
		if tr.CronExpression == "" {
			bad("/trigger/cron_expression", "required for a cron trigger, e.g. \"0 8 * * *\"")
		} else if p.CheckCron != nil {
			if err := p.CheckCron(tr.CronExpression, tr.Timezone); err != nil {
				bad("/trigger/cron_expression", "%v", err)
			}
		}
	case "event":
		if !slices.Contains(EventTypes, tr.EventType) {
			bad("/trigger/event_type", "%q is not one of %s", tr.EventType, strings.Join(EventTypes, ", "))
		}
	case "threshold":
		tc := tr.ThresholdCondition
		if tc == nil {
			bad("/trigger/threshold_condition", "required for a threshold trigger")
			break
		}
		if !slices.Contains(monitor.MetricTypes, tc.MetricType) {
			bad("/trigger/threshold_condition/metric_type", "%q is not one of %s", tc.MetricType, strings.Join(monitor.MetricTypes, ", "))
		}
		if !slices.Contains(monitor.Operators, tc.Operator) {
			bad("/trigger/threshold_condition/operator", "%q is not one of %s", tc.Operator, strings.Join(monitor.Operators, " "))
		}
		if tc.DurationSeconds < 0 || tc.DurationSeconds > 7*24*3600 {
			bad("/trigger/threshold_condition/duration_seconds", "must be from 0 to 604800")
		}
	case "manual":
	case "":
		bad("/trigger/type", "required: one of %s", strings.Join(TriggerKinds, ", "))
	default:
		bad("/trigger/type", "%q is not one of %s", tr.Type, strings.Join(TriggerKinds, ", "))
	}
	tg := o.Targets
	if !tg.AllServers && len(tg.ServerIDs) == 0 && len(tg.ClusterIDs) == 0 && len(tg.EnvironmentFilter) == 0 && len(tg.TagFilter) == 0 {
		bad("/targets", "choose targets: server_ids, cluster_ids, all_servers, environment_filter or tag_filter")
	}
	for i, env := range tg.EnvironmentFilter {
		if !slices.Contains(Environments, env) {
			bad(fmt.Sprintf("/targets/environment_filter/%d", i), "%q is not one of %s", env, strings.Join(Environments, ", "))
		}
	}
	ai := &o.AgentInstructions
	if strings.TrimSpace(ai.Prompt) == "" && ai.RunbookID == "" {
		bad("/agent_instructions/prompt", "required: what the agent does on each run (or a runbook_id)")
	}
	if ai.MaxRiskLevel < 0 || ai.MaxRiskLevel > 1 {
		bad("/agent_instructions/max_risk_level", "must be 0 or 1: unattended runs escalate anything riskier")
	}
	if ai.MaxTurns < 0 || ai.MaxTurns > 100 {
		bad("/agent_instructions/max_turns", "must be from 1 to 100")
	}
	if ai.MaxBudgetUSD < 0 || ai.MaxBudgetUSD > 100 {
		bad("/agent_instructions/max_budget_usd", "must be from 0 to 100")
	}
	for i := range o.DecisionBoundary.EscalationRules {
		r := &o.DecisionBoundary.EscalationRules[i]
		r.Channel, r.Priority = CanonicalChannel(r.Channel), CanonicalPriority(r.Priority)
		path := fmt.Sprintf("/decision_boundary/escalation_rules/%d", i)
		if strings.TrimSpace(r.Condition) == "" {
			bad(path+"/condition", "required")
		}
		if !slices.Contains(Channels, r.Channel) {
			bad(path+"/channel", "%q is not one of %s (or voice_call for phone)", r.Channel, strings.Join(Channels, ", "))
		}
		if !slices.Contains(Priorities, r.Priority) {
			bad(path+"/priority", "%q is not one of %s (or urgent, high, normal, low)", r.Priority, strings.Join(Priorities, ", "))
		}
	}
	if o.EscalationPolicyID != "" {
		o.EscalationPolicyID = CanonicalPriority(o.EscalationPolicyID)
		if !slices.Contains(Priorities, o.EscalationPolicyID) {
			bad("/escalation_policy_id", "%q names no escalation policy: use a severity (%s)", o.EscalationPolicyID, strings.Join(Priorities, ", "))
		}
	}
	if o.ValidFrom != nil && o.ValidUntil != nil && !o.ValidUntil.After(*o.ValidFrom) {
		bad("/valid_until", "must be after valid_from")
	}
	if o.ValidUntil != nil && !p.Now.IsZero() && o.ValidUntil.Before(p.Now) {
		bad("/valid_until", "is in the past")
	}
	return errs.Join(list...)
}

// CanonicalChannel maps a channel of the draft vocabulary (voice_call…) to IT0's name; others unchanged.
func CanonicalChannel(c string) string {
	c = strings.ToLower(strings.TrimSpace(c))
	if n, ok := channelAliases[c]; ok {
		return n
	}
	return c
}

// CanonicalPriority maps a priority of the draft vocabulary (urgent, high, normal, low) to IT0's severity
// (fatal, critical, warning, info); others unchanged.
func CanonicalPriority(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	if n, ok := priorityAliases[p]; ok {
		return n
	}
	return p
}

// Active reports whether o may run at t: active status and inside its validity window.
func (o *StandingOrder) Active(t time.Time) bool {
	if o.Status != "active" {
		return false
	}
	if o.ValidFrom != nil && t.Before(*o.ValidFrom) {
		return false
	}
	return o.ValidUntil == nil || t.Before(*o.ValidUntil)
}

// Intent cues: phrases that say a request describes a recurring duty rather than a one-off task.
var intentCues = []string{
	// Chinese
	"以后", "今后", "从现在起", "从今天起", "每天", "每日", "每周", "每星期", "每月", "每小时", "每隔", "每晚", "每早", "每天早上",
	"定时", "定期", "自动", "每当", "一旦", "只要", "持续", "长期", "常设", "值守", "巡检",
	// English
	"every day", "every morning", "every night", "every hour", "every week", "every month", "every ", "daily", "nightly",
	"weekly", "hourly", "monthly", "from now on", "going forward", "whenever", "each time", "automatically",
	"on a schedule", "scheduled", "standing order", "keep an eye", "always ",
}

// DetectIntent reports whether text asks for a standing order (a recurring or conditional duty), and the
// cues it found, so the agent can propose one instead of doing a one-off task.
func DetectIntent(text string) (bool, []string) {
	low := strings.ToLower(text)
	var found []string
	for _, c := range intentCues {
		if strings.Contains(low, c) {
			found = append(found, strings.TrimSpace(c))
		}
	}
	return len(found) > 0, found
}
