package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/monitor/metrics"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
)

func runMonitor(t *testing.T, open func(testing.TB) *store.DB) {
	t.Run("MetricSources", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "sources")
		src := &metrics.Source{ID: uuid.NewString(), Name: "prod", Type: metrics.SourceSSH,
			Selector: &inventory.Selector{Environment: "prod", Tags: []string{"web"}}, IntervalSeconds: 60, Enabled: true, CreatedAt: at, UpdatedAt: at}
		if err := db.MetricSourceCreate(actx, src); err != nil {
			t.Fatal(err)
		}
		dup := *src
		dup.ID = uuid.NewString()
		if err := db.MetricSourceCreate(actx, &dup); !errs.Is(err, errs.Conflict) {
			t.Errorf("duplicate name: %v", err)
		}
		got, err := db.MetricSourceGet(actx, src.ID)
		if err != nil || got.Selector == nil || got.Selector.Environment != "prod" || len(got.Selector.Tags) != 1 || got.IntervalSeconds != 60 {
			t.Fatalf("round trip: %v %+v", err, got)
		}
		if _, err := db.MetricSourceGet(bctx, src.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant get: %v", err)
		}
		// Ensure a round is claimed once until its next due time, by whichever replica comes first.
		if ok, err := db.MetricSourceClaim(actx, src.ID, at, at.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("first claim: %v %v", ok, err)
		}
		if ok, _ := db.MetricSourceClaim(actx, src.ID, at.Add(30*time.Second), at.Add(90*time.Second)); ok {
			t.Error("claimed the same round twice")
		}
		if ok, _ := db.MetricSourceClaim(actx, src.ID, at.Add(time.Minute), at.Add(2*time.Minute)); !ok {
			t.Error("next round not claimable at its due time")
		}
		if ok, _ := db.MetricSourceClaim(bctx, src.ID, at.Add(time.Hour), at.Add(2*time.Hour)); ok {
			t.Error("tenant b claimed tenant a's source")
		}
		if err := db.MetricSourceCollected(actx, src.ID, at.Add(time.Minute), "ssh: timeout"); err != nil {
			t.Fatal(err)
		}
		got, _ = db.MetricSourceGet(actx, src.ID)
		if got.LastCollectedAt == nil || !got.LastCollectedAt.Equal(at.Add(time.Minute)) || got.LastError != "ssh: timeout" {
			t.Errorf("after collection: %+v", got)
		}
		// Ensure an update keeps what collection recorded only if the caller carries it, and renames.
		got.Name, got.IntervalSeconds = "prod-web", 30
		if err := db.MetricSourceUpdate(actx, got); err != nil {
			t.Fatal(err)
		}
		if err := db.MetricSourceUpdate(bctx, got); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant update: %v", err)
		}
		node := &metrics.Source{ID: uuid.NewString(), Name: "db-1 node", Type: metrics.SourceNodeExporter, URL: "http://db-1:9100/metrics",
			ServerID: "srv-db", IntervalSeconds: 15, CreatedAt: at, UpdatedAt: at}
		if err := db.MetricSourceCreate(actx, node); err != nil {
			t.Fatal(err)
		}
		list, err := db.MetricSourceList(actx)
		if err != nil || len(list) != 2 || list[0].Name != "db-1 node" || list[1].Name != "prod-web" || list[1].IntervalSeconds != 30 {
			t.Fatalf("list by name: %v %+v", err, list)
		}
		if list, _ := db.MetricSourceList(bctx); len(list) != 0 {
			t.Errorf("tenant b lists %d sources", len(list))
		}
		if err := db.MetricSourceDelete(bctx, node.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant delete: %v", err)
		}
		if err := db.MetricSourceDelete(actx, node.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.MetricSourceGet(actx, node.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("deleted source: %v", err)
		}
	})

	t.Run("Alerts", func(t *testing.T) {
		// Ensure rules, events and states round-trip, only in their tenant, and at most one event per rule
		// and server is open at a time.
		t.Parallel()
		db := open(t)
		ctx, bctx := twoTenants(t, db, "alerts")
		now := at
		r := &alerts.Rule{ID: uuid.NewString(), Name: "cpu high", Metric: monitor.MetricCPU, Severity: "critical", Active: true,
			Condition: alerts.Condition{Operator: ">", Threshold: 90, DurationSeconds: 300}, TargetServers: []string{}, CreatedAt: now, UpdatedAt: now}
		if err := db.AlertRuleCreate(ctx, r); err != nil {
			t.Fatal(err)
		}
		dup := *r
		dup.ID = uuid.NewString()
		if err := db.AlertRuleCreate(ctx, &dup); !errs.Is(err, errs.Conflict) {
			t.Errorf("duplicate name: %v, want conflict", err)
		}
		if _, err := db.AlertRuleGet(bctx, r.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant rule: %v", err)
		}
		r.Condition.Threshold, r.TargetServers, r.UpdatedAt = 95, []string{"s1"}, now.Add(time.Minute)
		if err := db.AlertRuleUpdate(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := db.AlertRuleUpdate(bctx, r); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant rule update: %v", err)
		}
		if list, err := db.AlertRuleList(ctx); err != nil || len(list) != 1 || list[0].Condition.Threshold != 95 || len(list[0].TargetServers) != 1 {
			t.Errorf("rules after update: %v %+v", err, list)
		}
		if list, _ := db.AlertRuleList(bctx); len(list) != 0 {
			t.Errorf("tenant b lists %d rules", len(list))
		}
		ev := &alerts.Event{ID: uuid.NewString(), RuleID: r.ID, ServerID: "s1", Status: alerts.Firing, Severity: "critical", FiredAt: now}
		if err := db.AlertEventOpen(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if got, err := db.AlertEventGet(ctx, ev.ID); err != nil || got.RuleID != r.ID || got.Status != alerts.Firing || !got.FiredAt.Equal(now) {
			t.Errorf("event round trip: %v %+v", err, got)
		}
		if _, err := db.AlertEventGet(bctx, ev.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant event: %v", err)
		}
		again := *ev
		again.ID = uuid.NewString()
		if err := db.AlertEventOpen(ctx, &again); !errs.Is(err, errs.Conflict) {
			t.Errorf("second open event: %v, want conflict", err)
		}
		ev.Status, ev.ResolvedAt = alerts.Resolved, &now
		if err := db.AlertEventUpdate(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.AlertEventOpen(ctx, &again); err != nil {
			t.Errorf("open after resolve: %v", err)
		}
		counts, err := db.AlertEventCount(ctx)
		if err != nil || counts["critical"] != 1 {
			t.Errorf("counts = %v %v, want 1 critical open", counts, err)
		}
		if counts, _ := db.AlertEventCount(bctx); len(counts) != 0 && counts["critical"] != 0 {
			t.Errorf("tenant b counts %v", counts)
		}
		list, err := db.AlertEventList(ctx, alerts.Filter{Status: alerts.Resolved})
		if err != nil || len(list) != 1 || list[0].ID != ev.ID {
			t.Errorf("resolved list = %+v %v", list, err)
		}
		st := &alerts.State{RuleID: r.ID, ServerID: "s1", Since: now, Value: 95}
		if err := db.AlertStatePut(ctx, st); err != nil {
			t.Fatal(err)
		}
		st.EventID = again.ID
		if err := db.AlertStatePut(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := db.AlertStatePut(ctx, &alerts.State{RuleID: r.ID, ServerID: "s2", Since: now, Value: 91}); err != nil {
			t.Fatal(err)
		}
		states, err := db.AlertStateList(ctx)
		if err != nil || len(states) != 2 {
			t.Fatalf("states = %+v %v", states, err)
		}
		for _, s := range states {
			if s.ServerID == "s1" && (s.EventID != again.ID || !s.Since.Equal(now)) {
				t.Errorf("state of s1 = %+v", s)
			}
		}
		if states, _ := db.AlertStateList(bctx); len(states) != 0 {
			t.Errorf("tenant b lists %d states", len(states))
		}
		if err := db.AlertStateDelete(ctx, r.ID, "s2"); err != nil {
			t.Fatal(err)
		}
		if states, _ := db.AlertStateList(ctx); len(states) != 1 || states[0].ServerID != "s1" {
			t.Errorf("after deleting s2's state: %+v", states)
		}
		if err := db.AlertRuleDelete(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if states, _ := db.AlertStateList(ctx); len(states) != 0 {
			t.Errorf("states of a deleted rule remain: %+v", states)
		}
		if _, err := db.AlertRuleGet(ctx, r.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("deleted rule: %v", err)
		}
	})
}

// runShared covers what is not a context's own data: the outbox and the replica registry.
func runShared(t *testing.T, open func(testing.TB) *store.DB) {
	t.Run("Outbox", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "outbox")
		for _, p := range []string{"one", "two", "three"} {
			if err := db.OutboxAdd(actx, "approvals", []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		// Ensure a relay publishes a tenant's rows in order, a batch at a time, and deletes what it published.
		var got []string
		publish := func(ctx context.Context, evs []outbox.Event) error {
			for _, e := range evs {
				if e.Stream != "approvals" || e.TenantID == "" || e.CreatedAt.IsZero() {
					t.Errorf("event: %+v", e)
				}
				got = append(got, string(e.Payload))
			}
			return nil
		}
		if n, err := db.OutboxRelay(bctx, 10, publish); err != nil || n != 0 {
			t.Errorf("tenant b relayed %d, %v", n, err)
		}
		if n, err := db.OutboxRelay(actx, 2, publish); err != nil || n != 2 {
			t.Fatalf("first batch: %d %v", n, err)
		}
		// Ensure a failed publish keeps the rows for the next relay.
		failed := func(context.Context, []outbox.Event) error { return errs.New(errs.Unavailable, "bus down") }
		if _, err := db.OutboxRelay(actx, 10, failed); err == nil {
			t.Error("a failed publish reported success")
		}
		if n, err := db.OutboxRelay(actx, 10, publish); err != nil || n != 1 {
			t.Fatalf("second batch: %d %v", n, err)
		}
		if n, _ := db.OutboxRelay(actx, 10, publish); n != 0 {
			t.Errorf("relayed %d from an empty outbox", n)
		}
		if len(got) != 3 || got[0] != "one" || got[2] != "three" {
			t.Errorf("published %v", got)
		}
	})

	t.Run("Replicas", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		ctx := context.Background()
		for i, id := range []string{"r1", "r2", "r3"} {
			if err := db.ReplicaBeat(ctx, store.Replica{ID: id, HasBus: i == 1, Targets: []string{"api", id}[:i], SeenAt: at.Add(time.Duration(i) * time.Minute)}, at.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		// Ensure a replica lists the others seen since a time, not itself.
		list, err := db.ReplicaList(ctx, "r1", at.Add(30*time.Second))
		if err != nil || len(list) != 2 {
			t.Fatalf("list: %v %+v", err, list)
		}
		for _, r := range list {
			if r.ID == "r1" || (r.ID == "r2" && !r.HasBus) {
				t.Errorf("replica %+v", r)
			}
		}
		// Ensure each replica's deploy targets come back as it announced them.
		if len(list) == 2 && (!slices.Equal(list[0].Targets, []string{"api"}) || !slices.Equal(list[1].Targets, []string{"api", "r3"})) {
			t.Errorf("targets: %+v", list)
		}
		if seen, err := db.ReplicaSeen(ctx, "r2"); err != nil || !seen.Equal(at.Add(time.Minute)) {
			t.Errorf("r2 seen %s, %v", seen, err)
		}
		// Ensure a beat forgets replicas silent since before forgetBefore, and Forget removes one at once.
		if err := db.ReplicaBeat(ctx, store.Replica{ID: "r1", SeenAt: at.Add(time.Hour)}, at.Add(90*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := db.ReplicaForget(ctx, "r3"); err != nil {
			t.Fatal(err)
		}
		if list, _ := db.ReplicaList(ctx, "", at.Add(-24*time.Hour)); len(list) != 1 || list[0].ID != "r1" {
			t.Errorf("after forgetting: %+v", list)
		}
		if seen, _ := db.ReplicaSeen(ctx, "r3"); !seen.IsZero() {
			t.Errorf("forgotten r3 seen at %s", seen)
		}
	})
}
