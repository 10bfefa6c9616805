package alerts_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// fakeRemediator records runbook starts (a narrow fake of ops.Service.RunRunbook).
type fakeRemediator struct {
	mu       sync.Mutex
	calls    []string // runbook/event
	resolved []string // task: resolution
	err      error
}

func (f *fakeRemediator) Remediate(ctx context.Context, runbookID string, ev *alerts.Event) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, runbookID+"/"+ev.ID)
	if f.err != nil {
		return "", "", f.err
	}
	return "task-" + ev.ID[:8], "session-" + ev.ID[:8], nil
}

func (f *fakeRemediator) Resolved(ctx context.Context, taskID, resolution string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolved = append(f.resolved, taskID+": "+resolution)
	return nil
}

func (f *fakeRemediator) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type alertBundle struct {
	db        *store.DB
	ctx       context.Context
	clock     *jobstest.Clock
	log       *audit.Log
	rem       *fakeRemediator
	mu        sync.Mutex
	published []alerts.Event
}

func (b *alertBundle) newAlerts() *alerts.Service {
	return alerts.New(alerts.Config{Now: b.clock.Now, Remediator: b.rem, OnAlert: func(ctx context.Context, ev alerts.Event) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.published = append(b.published, ev)
	}}, b.db, b.log)
}

func (b *alertBundle) events() []alerts.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]alerts.Event(nil), b.published...)
}

func setupAlerts(t testing.TB, open func(testing.TB) *store.DB) (*alerts.Service, *alertBundle) {
	t.Helper()
	db := open(t)
	ten := storetest.NewTenant(t, db, "mon")
	b := &alertBundle{db: db, clock: jobstest.NewClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)), rem: &fakeRemediator{}}
	b.ctx = tenant.WithID(context.Background(), ten.ID)
	var err error
	if b.log, err = audit.New(db, []byte("0123456789abcdef0123456789abcdef"), b.clock.Now); err != nil {
		t.Fatal(err)
	}
	return b.newAlerts(), b
}

// feed evaluates one cpu sample of server s at the clock's time.
func (b *alertBundle) feed(t *testing.T, a *alerts.Service, server string, v float64) []alerts.Event {
	t.Helper()
	ch, err := a.Evaluate(b.ctx, []monitor.Sample{{ServerID: server, Metric: monitor.MetricCPU, Value: v, At: b.clock.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestAlertForDuration ensures a rule with for: 5m fires once after five minutes above the threshold,
// never on a single sample, resolves when the value drops, survives a restart while pending, and starts
// its runbook exactly once per firing.
func TestAlertForDuration(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			a, b := setupAlerts(t, be.Open)
			rule := &alerts.Rule{Name: "cpu high", Metric: monitor.MetricCPU, Severity: "critical", Active: true, RunbookID: "rb-1",
				Condition: alerts.Condition{Operator: ">", Threshold: 90, DurationSeconds: 300}}
			if err := a.CreateRule(b.ctx, rule); err != nil {
				t.Fatal(err)
			}
			// A single spike, then normal: pending, then cleared, never fired.
			b.feed(t, a, "web-1", 99)
			b.clock.Advance(time.Minute)
			b.feed(t, a, "web-1", 10)
			b.clock.Advance(10 * time.Minute)
			b.feed(t, a, "web-1", 10)
			if ev, _ := a.Events(b.ctx, alerts.Filter{}); len(ev) != 0 {
				t.Fatalf("a single sample fired: %+v", ev)
			}
			// Above the threshold every minute: pending for 4 minutes, firing at 5.
			for i := range 5 {
				if ch := b.feed(t, a, "web-1", 95); len(ch) != 0 {
					t.Fatalf("fired after %d minutes: %+v", i, ch)
				}
				b.clock.Advance(time.Minute)
				if i == 2 { // a restart while pending keeps the pending-since time
					a = b.newAlerts()
				}
			}
			ch := b.feed(t, a, "web-1", 97)
			if len(ch) != 1 || ch[0].Status != alerts.Firing || ch[0].Value != 97 {
				t.Fatalf("after 5 minutes: %+v, want one firing event with value 97", ch)
			}
			fired := ch[0]
			if fired.RemediationTaskID == "" || fired.RemediationSessID == "" {
				t.Errorf("event lacks the remediation run: %+v", fired)
			}
			// Still above: no second event, no second runbook; also not after a restart.
			for range 3 {
				b.clock.Advance(time.Minute)
				if ch := b.feed(t, a, "web-1", 98); len(ch) != 0 {
					t.Fatalf("fired again: %+v", ch)
				}
			}
			a = b.newAlerts()
			b.clock.Advance(time.Minute)
			if ch := b.feed(t, a, "web-1", 98); len(ch) != 0 {
				t.Fatalf("fired again after restart: %+v", ch)
			}
			if n := b.rem.count(); n != 1 {
				t.Errorf("runbook started %d times, want exactly once", n)
			}
			// It drops: resolved, with the resolution recorded.
			b.clock.Advance(time.Minute)
			ch = b.feed(t, a, "web-1", 40)
			if len(ch) != 1 || ch[0].Status != alerts.Resolved || ch[0].ID != fired.ID || ch[0].ResolvedAt == nil || ch[0].Resolution == "" {
				t.Fatalf("after the drop: %+v, want the event resolved", ch)
			}
			got, err := a.Event(b.ctx, fired.ID)
			if err != nil || got.Status != alerts.Resolved || got.LastValue != 40 || got.RemediationTaskID != fired.RemediationTaskID {
				t.Errorf("stored event = %+v %v", got, err)
			}
			b.rem.mu.Lock()
			resolved := append([]string(nil), b.rem.resolved...)
			b.rem.mu.Unlock()
			if len(resolved) != 1 || !strings.HasPrefix(resolved[0], fired.RemediationTaskID+": ") {
				t.Errorf("resolution recorded on the remediation task: %q", resolved)
			}
			pub := b.events()
			if len(pub) != 2 || pub[0].Status != alerts.Firing || pub[1].Status != alerts.Resolved {
				t.Errorf("published %+v, want fired then resolved", pub)
			}
			entries, err := b.log.List(b.ctx, audit.Filter{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, e := range entries {
				seen[e.ActionType]++
			}
			for _, act := range []string{"alert_rule.created", "alert.fired", "alert.remediation_started", "alert.resolved"} {
				if seen[act] != 1 {
					t.Errorf("audit has %d %s, want 1 (all: %v)", seen[act], act, seen)
				}
			}
		})
	}
}

// TestAlertEvaluation covers the rest of the rules' behaviour on SQLite.
func TestAlertEvaluation(t *testing.T) {
	t.Parallel()

	// Ensure a rule without a duration fires on the first sample, targets only its servers, and judges
	// the worst of a server's series (the fullest disk).
	t.Run("ImmediateTargetedWorst", func(t *testing.T) {
		t.Parallel()
		a, b := setupAlerts(t, storetest.OpenSQLite)
		rule := &alerts.Rule{Name: "disk full", Metric: monitor.MetricDisk, Severity: "warning", Active: true, TargetServers: []string{"db-1"},
			Condition: alerts.Condition{Operator: ">=", Threshold: 90}}
		if err := a.CreateRule(b.ctx, rule); err != nil {
			t.Fatal(err)
		}
		at := b.clock.Now()
		ch, err := a.Evaluate(b.ctx, []monitor.Sample{
			{ServerID: "db-1", Metric: monitor.MetricDisk, Label: "/", Value: 40, At: at},
			{ServerID: "db-1", Metric: monitor.MetricDisk, Label: "/var", Value: 93, At: at},
			{ServerID: "web-1", Metric: monitor.MetricDisk, Label: "/", Value: 99, At: at}})
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) != 1 || ch[0].ServerID != "db-1" || ch[0].Label != "/var" || ch[0].Value != 93 {
			t.Fatalf("events = %+v, want db-1 /var at 93 only", ch)
		}
		if b.rem.count() != 0 {
			t.Error("a rule without a runbook started one")
		}
	})

	// Ensure acknowledging marks a firing alert, refuses a second time, and the alert still resolves.
	t.Run("Acknowledge", func(t *testing.T) {
		t.Parallel()
		a, b := setupAlerts(t, storetest.OpenSQLite)
		if err := a.CreateRule(b.ctx, &alerts.Rule{Name: "load", Metric: monitor.MetricCPU, Severity: "info", Active: true,
			Condition: alerts.Condition{Operator: ">", Threshold: 1}}); err != nil {
			t.Fatal(err)
		}
		ev := b.feed(t, a, "s", 5)[0]
		ctx := audit.WithActor(b.ctx, audit.Actor{Type: audit.ActorUser, ID: "alice"})
		got, err := a.Acknowledge(ctx, ev.ID)
		if err != nil || got.Status != alerts.Acknowledged || got.AcknowledgedBy != "alice" {
			t.Fatalf("ack = %+v %v", got, err)
		}
		if _, err := a.Acknowledge(ctx, ev.ID); err == nil {
			t.Error("second acknowledge succeeded")
		}
		if list, _ := a.Events(b.ctx, alerts.Filter{Status: alerts.Acknowledged}); len(list) != 1 {
			t.Errorf("acknowledged filter = %+v", list)
		}
		b.clock.Advance(time.Minute)
		if ch := b.feed(t, a, "s", 0); len(ch) != 1 || ch[0].AcknowledgedBy != "alice" || ch[0].Status != alerts.Resolved {
			t.Errorf("resolve = %+v", ch)
		}
	})

	// Ensure a runbook that does not start leaves the reason on the event, and deleting the rule resolves
	// its open alert.
	t.Run("RemediationRefusedAndRuleDeleted", func(t *testing.T) {
		t.Parallel()
		a, b := setupAlerts(t, storetest.OpenSQLite)
		b.rem.err = errors.New("runbook restart-nginx allows L2 commands; unattended remediation is limited to L1")
		rule := &alerts.Rule{Name: "mem", Metric: monitor.MetricMemory, Severity: "fatal", Active: true, RunbookID: "rb",
			Condition: alerts.Condition{Operator: ">", Threshold: 50}}
		if err := a.CreateRule(b.ctx, rule); err != nil {
			t.Fatal(err)
		}
		ch, err := a.Evaluate(b.ctx, []monitor.Sample{{ServerID: "s", Metric: monitor.MetricMemory, Value: 80, At: b.clock.Now()}})
		if err != nil || len(ch) != 1 {
			t.Fatalf("%+v %v", ch, err)
		}
		if ch[0].RemediationError == "" || ch[0].RemediationTaskID != "" {
			t.Errorf("event = %+v, want the refusal recorded", ch[0])
		}
		if err := a.DeleteRule(b.ctx, rule.ID); err != nil {
			t.Fatal(err)
		}
		got, _ := a.Event(b.ctx, ch[0].ID)
		if got.Status != alerts.Resolved || got.Resolution != "rule deleted" {
			t.Errorf("after delete: %+v", got)
		}
	})

	// Ensure bad operators and severities are refused naming the field.
	t.Run("ErrInvalidRule", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name  string
			rule  alerts.Rule
			field string
		}{
			{"operator", alerts.Rule{Name: "x", Metric: "cpu_usage", Severity: "info", Condition: alerts.Condition{Operator: "=>"}}, "condition.operator"},
			{"severity", alerts.Rule{Name: "x", Metric: "cpu_usage", Severity: "page", Condition: alerts.Condition{Operator: ">"}}, "severity"},
			{"metric", alerts.Rule{Name: "x", Metric: "CPU!", Severity: "info", Condition: alerts.Condition{Operator: ">"}}, "metric_type"},
			{"duration", alerts.Rule{Name: "x", Metric: "cpu_usage", Severity: "info", Condition: alerts.Condition{Operator: ">", DurationSeconds: -1}}, "condition.duration_seconds"},
		} {
			err := tc.rule.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.field)
			}
		}
	})
}
