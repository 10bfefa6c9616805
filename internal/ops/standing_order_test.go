package ops

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func goodOrder() StandingOrder {
	return StandingOrder{
		Name:              "daily disk check",
		Trigger:           Trigger{Type: "cron", CronExpression: "0 8 * * *", Timezone: "Asia/Shanghai"},
		Targets:           Targets{EnvironmentFilter: Strings{"prod"}},
		AgentInstructions: AgentInstructions{Prompt: "检查磁盘，超过 85% 清理旧日志", MaxRiskLevel: 1},
		DecisionBoundary: DecisionBoundary{EscalationRules: []EscalationRule{
			{Condition: "disk above 95%", Channel: "phone", Priority: "critical"}}},
	}
}

func TestStandingOrderValidate(t *testing.T) {
	t.Parallel()
	noCron := func(expr, tz string) error {
		if strings.Count(expr, " ") != 4 {
			return errors.New("want 5 fields")
		}
		return nil
	}
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	past := now.Add(-time.Hour)
	for _, tc := range []struct {
		name  string
		edit  func(o *StandingOrder)
		paths []string // every one must be named; none when empty
	}{
		{"OK", func(o *StandingOrder) {}, nil},
		{"ErrUnknownTriggerType", func(o *StandingOrder) { o.Trigger.Type = "sometimes" }, []string{"/trigger/type"}},
		{"ErrInvalidCron", func(o *StandingOrder) { o.Trigger.CronExpression = "every morning" }, []string{"/trigger/cron_expression"}},
		{"ErrMaxRiskLevel2", func(o *StandingOrder) { o.AgentInstructions.MaxRiskLevel = 2 }, []string{"/agent_instructions/max_risk_level"}},
		{"ErrMissingTargets", func(o *StandingOrder) { o.Targets = Targets{} }, []string{"/targets"}},
		{"ErrSeveral", func(o *StandingOrder) {
			o.Trigger = Trigger{Type: "threshold", ThresholdCondition: &ThresholdCondition{MetricType: "disk", Operator: "~", DurationSeconds: -1}}
			o.AgentInstructions = AgentInstructions{MaxRiskLevel: 3}
			o.DecisionBoundary.EscalationRules[0].Channel = "pigeon"
			o.ValidUntil = &past
		}, []string{"/trigger/threshold_condition/metric_type", "/trigger/threshold_condition/operator",
			"/trigger/threshold_condition/duration_seconds", "/agent_instructions/prompt", "/agent_instructions/max_risk_level",
			"/decision_boundary/escalation_rules/0/channel", "/valid_until"}},
		{"ErrEventType", func(o *StandingOrder) { o.Trigger = Trigger{Type: "event", EventType: "sunrise"} }, []string{"/trigger/event_type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := goodOrder()
			tc.edit(&o)
			err := o.Validate(ValidateParams{CheckCron: noCron, Now: now})
			if len(tc.paths) == 0 {
				if err != nil {
					t.Fatalf("valid order refused: %v", err)
				}
				if o.Status != "active" {
					t.Errorf("status default = %q", o.Status)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid order accepted")
			}
			for _, p := range tc.paths {
				if !strings.Contains(err.Error(), p+":") {
					t.Errorf("error %q does not name %s", err, p)
				}
			}
		})
	}
}

func TestDetectIntent(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]bool{
		"以后每天早上8点检查一下生产服务器的磁盘":                        true,
		"从现在起，nginx 挂了就自动重启":                          true,
		"定时清理 /var/log 下的旧日志":                         true,
		"Every day at 8, check disk on prod":          true,
		"From now on, restart nginx whenever it dies": true,
		"检查一下 web-1 的磁盘":                              false,
		"restart nginx on web-1":                      false,
	} {
		if got, cues := DetectIntent(text); got != want {
			t.Errorf("DetectIntent(%q) = %v (%v), want %v", text, got, cues, want)
		}
	}
}

func TestStandingOrderIDAndWindow(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	if id := StandingOrderID(day, 7); id != "SO-20261126-007" || !ValidStandingOrderID(id) || ValidStandingOrderID("SO-2026-1") {
		t.Errorf("id %s", id)
	}
	from, until := day, day.Add(24*time.Hour)
	o := StandingOrder{Status: "active", ValidFrom: &from, ValidUntil: &until}
	for at, want := range map[time.Time]bool{day.Add(-time.Minute): false, day: true, day.Add(23 * time.Hour): true, until: false} {
		if o.Active(at) != want {
			t.Errorf("Active(%s) = %v", at, !want)
		}
	}
	o.Status = "paused"
	if o.Active(day.Add(time.Hour)) {
		t.Error("a paused order is active")
	}
}
