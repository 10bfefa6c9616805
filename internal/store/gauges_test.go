package store_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestGauges ensures the one-statement gauge read counts open alerts by severity, live sessions by status
// and pending approvals, on both backends, and refuses a context without a tenant.
func TestGauges(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db := be.Open(t)
			ten := storetest.NewTenant(t, db, "gauges")
			ctx := tenant.WithID(context.Background(), ten.ID)
			if _, err := db.Gauges(context.Background()); err == nil {
				t.Error("gauges without a tenant: no error")
			}
			g, err := db.Gauges(ctx)
			if err != nil || len(g.AlertsOpen) != 0 || len(g.SessionsLive) != 0 || g.ApprovalsPending != 0 {
				t.Fatalf("empty tenant: %+v %v", g, err)
			}
			now := time.Now().UTC().Truncate(time.Microsecond)
			for i, st := range []string{agent.StatusRunning, agent.StatusRunning, agent.StatusAwaitingApproval, agent.StatusCompleted, agent.StatusIdle} {
				s := &agent.Session{ID: uuid.NewString(), TenantID: ten.ID, UserID: "u", Engine: "e", Status: st, Title: "t",
					ServerIDs: []string{}, AllowedTools: []string{}, CreatedAt: now, UpdatedAt: now}
				if err := db.SessionCreate(ctx, s); err != nil {
					t.Fatal(err)
				}
				if i == 2 {
					for _, ast := range []string{agent.ApprovalPending, agent.ApprovalPending, agent.ApprovalExpired} {
						a := &agent.Approval{ID: uuid.NewString(), TenantID: ten.ID, SessionID: s.ID, Command: "rm x", RiskLevel: 1,
							Status: ast, RequestedBy: "u", ExpiresAt: now.Add(time.Hour), CreatedAt: now}
						if err := db.ApprovalCreate(ctx, a); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			for i, sev := range []string{"critical", "warning"} {
				r := &alerts.Rule{ID: uuid.NewString(), Name: "r" + sev, Metric: monitor.MetricCPU, Severity: sev, Active: true,
					Condition: alerts.Condition{Operator: ">", Threshold: 90}, TargetServers: []string{}, CreatedAt: now, UpdatedAt: now}
				if err := db.AlertRuleCreate(ctx, r); err != nil {
					t.Fatal(err)
				}
				ev := &alerts.Event{ID: uuid.NewString(), RuleID: r.ID, ServerID: "s1", Status: alerts.Firing, Severity: sev, FiredAt: now}
				if err := db.AlertEventOpen(ctx, ev); err != nil {
					t.Fatal(err)
				}
				if i == 1 {
					ev.Status, ev.ResolvedAt = alerts.Resolved, &now
					if err := db.AlertEventUpdate(ctx, ev); err != nil {
						t.Fatal(err)
					}
				}
			}
			g, err = db.Gauges(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]int{"critical": 1}; !maps.Equal(g.AlertsOpen, want) {
				t.Errorf("alerts open = %v, want %v", g.AlertsOpen, want)
			}
			if want := map[string]int{agent.StatusRunning: 2, agent.StatusAwaitingApproval: 1}; !maps.Equal(g.SessionsLive, want) {
				t.Errorf("sessions live = %v, want %v", g.SessionsLive, want)
			}
			if g.ApprovalsPending != 2 {
				t.Errorf("approvals pending = %d, want 2", g.ApprovalsPending)
			}
		})
	}
}
