package ops_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/monitor/checks"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/testsignal"
)

// TestMonitorEvents: a check going down and an alert firing reach their event-triggered standing orders
// through the monitor's domain events, durably and once per event.
func TestMonitorEvents(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db, tid, ctx, log := tenantDB(t, be.Open, "monevents")
			ag := &fakeAgent{}
			o := ops.NewOrders(db, ag, oneServer{}, log, jobs.CheckCron, nil)
			order := func(name, eventType string) *ops.StandingOrder {
				so := &ops.StandingOrder{Name: name, Trigger: ops.Trigger{Type: "event", EventType: eventType}, Targets: ops.Targets{AllServers: true},
					AgentInstructions: ops.AgentInstructions{Prompt: "look at " + name, MaxRiskLevel: 0}}
				if err := o.Create(ctx, so, ""); err != nil {
					t.Fatal(err)
				}
				return so
			}
			onCheck, onAlert, onResolved := order("on check", ops.EventCheckFailed), order("on alert", ops.EventAlertFired),
				order("on resolved", ops.EventAlertResolved)

			// The process dies right after the changes: their events wait in the outbox, no consumer runs.
			now := time.Now().UTC().Truncate(time.Microsecond)
			c := &checks.Check{ID: uuid.NewString(), Name: "web", Type: checks.TypeHTTP, Target: "http://127.0.0.1/health", ServerID: "srv-1",
				IntervalSeconds: 30, TimeoutSeconds: 5, Retries: 1, Enabled: true, State: checks.Unknown, CreatedAt: now, UpdatedAt: now}
			if err := db.CheckCreate(ctx, c); err != nil {
				t.Fatal(err)
			}
			c.State, c.StateChangedAt, c.LastCheckedAt, c.LastStatus, c.LastMessage = checks.Down, &now, &now, checks.Down, "HTTP 500"
			if err := db.CheckRecord(ctx, c, &checks.Result{Status: checks.Down, CheckedAt: now, Message: "HTTP 500"},
				&checks.Transition{From: checks.Unknown, To: checks.Down, At: now, Results: 1, Message: "HTTP 500"}); err != nil {
				t.Fatal(err)
			}
			ev := &alerts.Event{ID: uuid.NewString(), RuleID: uuid.NewString(), RuleName: "disk", ServerID: "srv-1", Metric: "disk_usage",
				Severity: "critical", Status: alerts.Firing, Value: 91, Operator: ">", Threshold: 85, FiredAt: now, PendingSince: now}
			if err := db.AlertEventOpen(ctx, ev); err != nil {
				t.Fatal(err)
			}
			// Acknowledging is no resolution: it writes no event.
			ev.Status, ev.AcknowledgedAt = alerts.Acknowledged, &now
			if err := db.AlertEventUpdate(ctx, ev); err != nil {
				t.Fatal(err)
			}
			if n := pendingOutbox(t, db, ctx); n != 2 {
				t.Fatalf("outbox rows: %d, want 2 (check down, alert fired)", n)
			}

			// A consumer starts: each order runs once.
			var handled testsignal.Signal[monitor.Event]
			var spied testsignal.Signal[[]byte]
			handled.Init(t)
			spied.Init(t)
			b := bus.NewMemory(bus.Config{})
			t.Cleanup(func() { b.Close() })
			startMonitorConsumers(t, db, b, tid, o, &handled, &spied)
			got := map[string]monitor.Event{}
			for range 2 {
				e := handled.WaitOrTimeout(t)
				got[e.Type] = e
			}
			if e := got[monitor.EventCheckTransitioned]; e.ServerID != "srv-1" || e.Subject == "" {
				t.Errorf("check event: %+v", e)
			}
			if e := got[monitor.EventAlertFired]; e.ServerID != "srv-1" || e.Subject != ev.ID {
				t.Errorf("alert event: %+v", e)
			}
			wantRuns(t, o, ctx, map[*ops.StandingOrder]int{onCheck: 1, onAlert: 1, onResolved: 0})

			// The alert resolves: its event triggers the third order, once.
			ev.Status, ev.ResolvedAt = alerts.Resolved, &now
			if err := db.AlertEventUpdate(ctx, ev); err != nil {
				t.Fatal(err)
			}
			if e := handled.WaitOrTimeout(t); e.Type != monitor.EventAlertResolved || e.Subject != ev.ID {
				t.Fatalf("resolved event: %+v", e)
			}
			// Saving the resolved alert again (a remediation note) writes no second event.
			if err := db.AlertEventUpdate(ctx, ev); err != nil {
				t.Fatal(err)
			}
			if n := pendingOutbox(t, db, ctx); n != 0 {
				t.Errorf("outbox rows after a second save of the resolved alert: %d, want 0", n)
			}
			wantRuns(t, o, ctx, map[*ops.StandingOrder]int{onCheck: 1, onAlert: 1, onResolved: 1})

			// The runs finish, then every event is delivered twice more (relay replay, reclaimed message):
			// no order runs again.
			ag.finish(ctx, o)
			payloads := [][]byte{spied.WaitOrTimeout(t), spied.WaitOrTimeout(t), spied.WaitOrTimeout(t)}
			for range 2 {
				for _, p := range payloads {
					if _, err := b.Publish(ctx, monitor.StreamEvents, p); err != nil {
						t.Fatal(err)
					}
				}
			}
			for range 2 * len(payloads) {
				handled.WaitOrTimeout(t)
			}
			wantRuns(t, o, ctx, map[*ops.StandingOrder]int{onCheck: 1, onAlert: 1, onResolved: 1})
			if n := ag.starts.Load(); n != 3 {
				t.Errorf("agent runs started: %d, want 3", n)
			}
		})
	}
}

// tenantDB opens a database with open, makes a tenant called slug in it and returns the database, the
// tenant's id, a ctx of the tenant and an audit log on the database.
func tenantDB(t *testing.T, open func(testing.TB) *store.DB, slug string) (*store.DB, string, context.Context, *audit.Log) {
	t.Helper()
	db := open(t)
	tn := storetest.NewTenant(t, db, slug)
	log, err := audit.New(db, bytes.Repeat([]byte{1}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	return db, tn.ID, tenant.WithID(context.Background(), tn.ID), log
}

// pendingOutbox counts the outbox rows waiting, without publishing them (a publish that fails keeps them).
func pendingOutbox(t *testing.T, db *store.DB, ctx context.Context) int {
	t.Helper()
	n := 0
	keep := errors.New("keep them")
	_, err := db.OutboxRelay(ctx, 100, func(_ context.Context, evs []outbox.Event) error { n = len(evs); return keep })
	if err != nil && !errors.Is(err, keep) {
		t.Fatal(err)
	}
	return n
}

// startMonitorConsumers runs the outbox relay, the ops consumer group (signalling handled after each
// event) and a spy group (signalling each payload) until the test ends.
func startMonitorConsumers(t *testing.T, db *store.DB, b *bus.Memory, tid string, o *ops.Orders, handled *testsignal.Signal[monitor.Event],
	spied *testsignal.Signal[[]byte]) {
	t.Helper()
	relay := outbox.NewRelay(outbox.RelayConfig{Poll: 10 * time.Millisecond}, db, b, func(context.Context) ([]string, error) { return []string{tid}, nil })
	ctx, cancel := context.WithCancel(context.Background())
	relay.Start(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		monitor.Consume(ctx, b, "ops", "replica-1", nil, func(ctx context.Context, e monitor.Event) error {
			err := o.OnMonitorEvent(ctx, e)
			if err != nil {
				t.Errorf("handle %s: %v", e.Key(), err)
			}
			handled.Signal(e)
			return err
		})
	}()
	go func() {
		defer wg.Done()
		b.Consume(ctx, bus.Consumer{Stream: monitor.StreamEvents, Group: "spy", Name: "spy-1"}, func(_ context.Context, m bus.Message) error {
			spied.Signal(m.Data)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); relay.Stop(); wg.Wait() })
}

// wantRuns checks how many executions (of any status) each order has.
func wantRuns(t *testing.T, o *ops.Orders, ctx context.Context, want map[*ops.StandingOrder]int) {
	t.Helper()
	for so, n := range want {
		list, err := o.Executions(ctx, so.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != n {
			var runs []string
			for _, e := range list {
				runs = append(runs, e.Status+" "+e.Error)
			}
			t.Errorf("executions of %q: %d, want %d: %q", so.Name, len(list), n, runs)
		}
	}
}

// TestConcurrentEvents: two replicas handle alert events for one event-triggered order at the same moment,
// round after round (the runs end between rounds), on both backends.
//   - The same event on both (a message reclaimed from a consumer that was only slow, a relay replay): the
//     order runs once, and neither replica fails the event.
//   - Two different events while no run is open: one starts a run, the other is recorded as skipped (a run
//     is still going), never two overlapping runs.
func TestConcurrentEvents(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		for _, same := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/same=%v", be.Name, same), func(t *testing.T) {
				t.Parallel()
				db, tid, ctx, log := tenantDB(t, be.Open, "concurrent")
				agents := [2]*fakeAgent{{}, {}}
				replicas := [2]*ops.Orders{}
				for i := range replicas {
					replicas[i] = ops.NewOrders(db, agents[i], oneServer{}, log, jobs.CheckCron, nil)
				}
				so := &ops.StandingOrder{Name: "on alert", Trigger: ops.Trigger{Type: "event", EventType: ops.EventAlertFired},
					Targets: ops.Targets{AllServers: true}, AgentInstructions: ops.AgentInstructions{Prompt: "look", MaxRiskLevel: 0}}
				if err := replicas[0].Create(ctx, so, ""); err != nil {
					t.Fatal(err)
				}
				const rounds = 15
				for round := range rounds {
					e := monitor.Event{Type: monitor.EventAlertFired, TenantID: tid, Subject: uuid.NewString(), ServerID: "srv-1"}
					start := make(chan struct{})
					var wg sync.WaitGroup
					for i, o := range replicas {
						ev := e
						if !same {
							ev.Subject = uuid.NewString()
						}
						wg.Go(func() {
							<-start
							if err := o.OnMonitorEvent(ctx, ev); err != nil {
								t.Errorf("round %d, replica %d: %v", round, i, err)
							}
						})
					}
					close(start)
					wg.Wait()
					for _, ag := range agents {
						ag.finish(ctx, replicas[0])
					}
				}
				if n := agents[0].starts.Load() + agents[1].starts.Load(); n != rounds {
					t.Errorf("agent runs started: %d, want %d (one per round)", n, rounds)
				}
				list, err := replicas[0].Executions(ctx, so.ID, 4*rounds)
				if err != nil {
					t.Fatal(err)
				}
				skipped := 0
				for _, e := range list {
					if e.Status == ops.ExecSkipped {
						skipped++
					}
				}
				wantSkipped := rounds // each round's second event
				if same {
					wantSkipped = 0 // the second delivery is the same event: nothing more to record
				}
				if len(list) != rounds+wantSkipped || skipped != wantSkipped {
					t.Errorf("executions: %d with %d skipped, want %d with %d skipped", len(list), skipped, rounds+wantSkipped, wantSkipped)
				}
			})
		}
	}
}

// TestThresholdReplicas: the samples of one server reach two replicas in turn (a consumer group hands
// batches to either), one replica restarts mid-hold, batches are redelivered and the last one is judged
// by both at once: the order fires once, when the condition has held for its duration, and again only
// after a dip and a new full hold.
func TestThresholdReplicas(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db, _, ctx, log := tenantDB(t, be.Open, "threshold")
			agents := [2]*fakeAgent{{}, {}}
			replica := func(i int) *ops.Orders { return ops.NewOrders(db, agents[i], oneServer{}, log, jobs.CheckCron, nil) }
			replicas := [2]*ops.Orders{replica(0), replica(1)}
			so := &ops.StandingOrder{Name: "disk", Trigger: ops.Trigger{Type: "threshold", ThresholdCondition: &ops.ThresholdCondition{
				MetricType: "disk_usage", Operator: ">=", Value: 85, DurationSeconds: 300}},
				Targets: ops.Targets{AllServers: true}, AgentInstructions: ops.AgentInstructions{Prompt: "clean up", MaxRiskLevel: 0}}
			if err := replicas[0].Create(ctx, so, ""); err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
			batch := func(minute int, value float64) []monitor.Sample {
				// Two mounts: the worst one counts.
				return monitor.Highest([]monitor.Sample{
					{ServerID: "srv-1", Metric: "disk_usage", Label: "/", Value: 40, At: t0.Add(time.Duration(minute) * time.Minute)},
					{ServerID: "srv-1", Metric: "disk_usage", Label: "/var", Value: value, At: t0.Add(time.Duration(minute) * time.Minute)},
					{ServerID: "srv-1", Metric: "cpu_usage", Value: 99, At: t0.Add(time.Duration(minute) * time.Minute)}})
			}
			started := func() int { return int(agents[0].starts.Load() + agents[1].starts.Load()) }
			judge := func(i, minute int, value float64) {
				t.Helper()
				if _, err := replicas[i].ObserveSamples(ctx, batch(minute, value)); err != nil {
					t.Fatalf("replica %d, minute %d: %v", i, minute, err)
				}
			}
			for m := range 5 { // 90% from minute 0 to 4, on alternating replicas
				judge(m%2, m, 90)
			}
			if n := started(); n != 0 {
				t.Fatalf("fired after 4 minutes: %d runs", n)
			}
			replicas[1] = replica(1) // a restart: nothing of the hold was in its memory
			judge(1, 5, 91)          // five minutes held
			if n := started(); n != 1 {
				t.Fatalf("runs after five minutes held: %d, want 1", n)
			}
			judge(0, 5, 91) // the same batch redelivered to the other replica
			judge(0, 3, 10) // a late batch: ignored, no reset
			judge(1, 6, 92)
			if n := started(); n != 1 {
				t.Fatalf("runs after redelivery and a late batch: %d, want 1", n)
			}
			for _, ag := range agents {
				ag.finish(ctx, replicas[0])
			}
			judge(0, 7, 50) // a dip re-arms
			for m := 8; m < 13; m++ {
				judge(m%2, m, 95)
			}
			// Minute 13 completes the second hold; both replicas judge it at once.
			var wg sync.WaitGroup
			for i := range replicas {
				wg.Go(func() { judge(i, 13, 95) })
			}
			wg.Wait()
			if n := started(); n != 2 {
				t.Errorf("runs after the second hold: %d, want 2", n)
			}
			list, err := replicas[0].Executions(ctx, so.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 {
				t.Errorf("executions: %d, want 2", len(list))
			}
		})
	}
}

// TestThresholdOutsideValidity: a threshold that holds for an order not yet valid starts nothing and is no
// error (a samples batch would otherwise be handed out again for ever); once the order is valid, the
// same hold fires.
func TestThresholdOutsideValidity(t *testing.T) {
	t.Parallel()
	db, _, ctx, log := tenantDB(t, storetest.OpenSQLite, "validity")
	ag := &fakeAgent{}
	now := time.Now().UTC()
	clock := now
	o := ops.NewOrders(db, ag, oneServer{}, log, jobs.CheckCron, func() time.Time { return clock })
	from := now.Add(time.Hour)
	so := &ops.StandingOrder{Name: "hot", Trigger: ops.Trigger{Type: "threshold", ThresholdCondition: &ops.ThresholdCondition{
		MetricType: "cpu_usage", Operator: ">", Value: 90}}, ValidFrom: &from,
		Targets: ops.Targets{AllServers: true}, AgentInstructions: ops.AgentInstructions{Prompt: "look", MaxRiskLevel: 0}}
	if err := o.Create(ctx, so, ""); err != nil {
		t.Fatal(err)
	}
	sample := func(at time.Time) []*ops.Execution {
		t.Helper()
		started, err := o.ObserveSamples(ctx, []monitor.Sample{{ServerID: "srv-1", Metric: "cpu_usage", Value: 95, At: at}})
		if err != nil {
			t.Fatalf("sample at %s: %v", at, err)
		}
		return started
	}
	if got := sample(now); len(got) != 0 || ag.starts.Load() != 0 {
		t.Fatalf("an order not yet valid started %d runs", ag.starts.Load())
	}
	clock = from.Add(time.Minute)
	if got := sample(clock); len(got) != 1 || ag.starts.Load() != 1 {
		t.Fatalf("once valid: %d executions, %d runs; want 1", len(got), ag.starts.Load())
	}
}
