package ops_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/testsignal"
)

// runEndedBundle is a tenant with a standing order, one running execution and its session, the outbox
// relay and an in-process bus; the ops consumer group is started by the test (startOps).
type runEndedBundle struct {
	db    *store.DB
	ctx   context.Context
	tid   string
	log   *audit.Log
	box   *inbox
	o     *ops.Orders
	order *ops.StandingOrder
	exec  *ops.Execution
	sess  *agent.Session
	bus   *bus.Memory
	// handled signals each event the ops group handled (after its handler returned).
	handled testsignal.Signal[agentapi.RunEnded]
	// spied signals each payload published on the stream (a second consumer group).
	spied testsignal.Signal[[]byte]
	// reported signals each standing_order.executed event the reports group handled; reportSpied each
	// payload published on ops.StreamEvents.
	reported    testsignal.Signal[ops.Executed]
	reportSpied testsignal.Signal[[]byte]
}

func setupRunEnded(t *testing.T, open func(testing.TB) *store.DB) *runEndedBundle {
	t.Helper()
	db, tid, ctx, log := tenantDB(t, open, "runended")
	sessionID := uuid.NewString()
	exit0 := 0
	// The run changed something (an L1 command ran), so its completion is reported.
	fleet := sessionFleet{commands: map[string][]inventory.CommandRecord{sessionID: {{ServerName: "web-1",
		Command: "journalctl --vacuum-size=500M", RiskLevel: 1, Status: inventory.StatusOK, ExitCode: &exit0}}}}
	b := &runEndedBundle{db: db, ctx: ctx, tid: tid, log: log, box: &inbox{}, bus: bus.NewMemory(bus.Config{})}
	t.Cleanup(func() { b.bus.Close() })
	b.o = ops.NewOrders(db, &fakeAgent{}, fleet, log, jobs.CheckCron, nil)
	b.o.SetReports(b.box, func(context.Context) string { return "en" }, nil)
	b.order = &ops.StandingOrder{Name: "disk janitor", Trigger: ops.Trigger{Type: "manual"}, Targets: ops.Targets{AllServers: true},
		AgentInstructions: ops.AgentInstructions{Prompt: "clean logs when disk is over 85%", MaxRiskLevel: 1}}
	if err := b.o.Create(ctx, b.order, ""); err != nil {
		t.Fatal(err)
	}
	var err error
	if b.exec, err = b.o.Trigger(ctx, b.order.ID, "manual", nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	b.sess = &agent.Session{ID: sessionID, Engine: agent.EngineClaudeAPI, Status: agent.StatusRunning, Title: "run " + b.order.ID,
		MaxTurns: 5, Origin: agent.OriginStandingOrder, OriginID: b.exec.ID, CreatedAt: now, UpdatedAt: now}
	if err := db.SessionCreate(ctx, b.sess); err != nil {
		t.Fatal(err)
	}
	b.handled.Init(t)
	b.spied.Init(t)
	b.reported.Init(t)
	b.reportSpied.Init(t)
	return b
}

// end records the session's move to status, as the agent does when a run ends (or resumes).
func (b *runEndedBundle) end(t *testing.T, status, summary, errMsg string) {
	t.Helper()
	b.sess.Status, b.sess.Summary, b.sess.Error, b.sess.UpdatedAt = status, summary, errMsg, time.Now().UTC().Truncate(time.Microsecond)
	if err := b.db.SessionUpdate(b.ctx, b.sess); err != nil {
		t.Fatal(err)
	}
}

// pendingEvents counts the outbox rows waiting, without publishing them (a publish that fails keeps them).
func (b *runEndedBundle) pendingEvents(t *testing.T) int {
	t.Helper()
	n := 0
	keep := errors.New("keep them")
	_, err := b.db.OutboxRelay(b.ctx, 100, func(_ context.Context, evs []outbox.Event) error { n = len(evs); return keep })
	if err != nil && !errors.Is(err, keep) {
		t.Fatal(err)
	}
	return n
}

// start runs the outbox relay, the ops and reports consumer groups and spy groups until the test ends.
func (b *runEndedBundle) start(t *testing.T) {
	t.Helper()
	relay := outbox.NewRelay(outbox.RelayConfig{Poll: 10 * time.Millisecond}, b.db, b.bus,
		func(context.Context) ([]string, error) { return []string{b.tid}, nil })
	ctx, cancel := context.WithCancel(context.Background())
	relay.Start(ctx)
	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		ops.ConsumeExecuted(ctx, b.bus, "reports", "replica-1", nil, func(ctx context.Context, x ops.Executed) error {
			err := b.o.OnExecuted(ctx, x)
			if err != nil && ctx.Err() == nil {
				t.Errorf("report %s: %v", x.Execution.ID, err)
			}
			b.reported.Signal(x)
			return err
		})
	}()
	go func() {
		defer wg.Done()
		b.bus.Consume(ctx, bus.Consumer{Stream: ops.StreamEvents, Group: "spy", Name: "spy-1"}, func(_ context.Context, m bus.Message) error {
			b.reportSpied.Signal(m.Data)
			return nil
		})
	}()
	go func() {
		defer wg.Done()
		agentapi.ConsumeRuns(ctx, b.bus, "ops", "replica-1", nil, func(ctx context.Context, e agentapi.RunEnded) error {
			err := b.o.OnRunEnded(ctx, e)
			b.handled.Signal(e)
			return err
		})
	}()
	go func() {
		defer wg.Done()
		b.bus.Consume(ctx, bus.Consumer{Stream: agentapi.StreamRuns, Group: "spy", Name: "spy-1"}, func(_ context.Context, m bus.Message) error {
			b.spied.Signal(m.Data)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); relay.Stop(); wg.Wait() })
}

// audited counts the audit records of action.
func (b *runEndedBundle) audited(t *testing.T, action string) int {
	t.Helper()
	list, err := b.log.List(b.ctx, audit.Filter{ActionType: action, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func (b *runEndedBundle) execution(t *testing.T) *ops.Execution {
	t.Helper()
	list, err := b.o.Executions(b.ctx, b.order.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &list[0]
}

// TestRunEndedEvent: a session's run end reaches its standing-order execution through the
// agent.run_ended event, durably and exactly once.
func TestRunEndedEvent(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()

			// Ensure a run end written while no ops consumer runs (the process died right after the
			// session's status change) still marks the execution once a consumer starts.
			t.Run("CrashBeforeSubscriber", func(t *testing.T) {
				t.Parallel()
				b := setupRunEnded(t, be.Open)
				b.end(t, agent.StatusFailed, "", "ssh: connection refused")
				if b.sess.RunEnds != 1 {
					t.Fatalf("run ends after the first: %d, want 1", b.sess.RunEnds)
				}
				b.end(t, agent.StatusFailed, "", "ssh: connection refused") // the run's finish confirms it: no new run end
				if n := b.pendingEvents(t); n != 1 {
					t.Fatalf("outbox rows: %d, want 1 (one run end)", n)
				}
				if e := b.execution(t); e.Status != ops.ExecRunning {
					t.Fatalf("execution before any consumer: %s", e.Status)
				}

				b.start(t)
				if e := b.handled.WaitOrTimeout(t); e.SessionID != b.sess.ID || e.Run != 1 || e.Status != agent.StatusFailed {
					t.Fatalf("event: %+v", e)
				}
				if e := b.execution(t); e.Status != ops.ExecFailed || e.Error != "ssh: connection refused" || e.FinishedAt == nil {
					t.Fatalf("execution after the event: %+v", e)
				}
				if n := b.audited(t, "standing_order.run_failed"); n != 1 {
					t.Errorf("audit records of the failed run: %d, want 1", n)
				}
				if x := b.reported.WaitOrTimeout(t); x.Report != ops.ReportFailed || x.Execution.ID != b.exec.ID {
					t.Fatalf("executed event: %+v", x)
				}
				if n := b.box.take(); len(n) != 1 || n[0].Severity != "critical" {
					t.Errorf("reports of the failed run: %+v, want one critical", n)
				}
			})

			// Ensure a run end mirrored by a process that died before it could report (the update and its
			// standing_order.executed event committed, no reports consumer ran) is reported once a consumer
			// starts, and that redeliveries of the event send nothing more.
			t.Run("ReportAfterCrash", func(t *testing.T) {
				t.Parallel()
				b := setupRunEnded(t, be.Open)
				b.box.once = true
				if err := b.o.OnRunEnded(b.ctx, agentapi.RunEnded{SessionID: b.sess.ID, Run: 1, Status: agent.StatusCompleted,
					Origin: agent.OriginStandingOrder, OriginID: b.exec.ID, Summary: "disk was 91%, vacuumed the journal, now 70%"}); err != nil {
					t.Fatal(err)
				}
				if n := b.pendingEvents(t); n != 1 {
					t.Fatalf("outbox rows: %d, want 1 (the executed event)", n)
				}
				if n := b.box.take(); len(n) != 0 {
					t.Fatalf("reports before any consumer: %+v, want none", n)
				}

				b.start(t)
				if x := b.reported.WaitOrTimeout(t); x.Execution.ID != b.exec.ID || x.Report != ops.ReportActed || x.Execution.Status != ops.ExecCompleted {
					t.Fatalf("executed event: %+v", x)
				}
				n := b.box.take()
				if len(n) != 1 || n[0].Key != "so-report:"+b.exec.ID || !strings.Contains(n[0].Body, "journalctl --vacuum-size=500M") {
					t.Fatalf("reports after the consumer started: %+v, want one acted report", n)
				}

				// The event is handed out twice more (a relay replay, a reclaimed message): nothing more is sent.
				p := b.reportSpied.WaitOrTimeout(t)
				for range 2 {
					if _, err := b.bus.Publish(b.ctx, ops.StreamEvents, p); err != nil {
						t.Fatal(err)
					}
				}
				for range 2 {
					b.reported.WaitOrTimeout(t)
				}
				if n := b.box.take(); len(n) != 0 {
					t.Errorf("reports after the redeliveries: %+v, want none", n)
				}
				b.box.mu.Lock()
				dropped := b.box.dropped
				b.box.mu.Unlock()
				if dropped != 2 {
					t.Errorf("resends under the report's key: %d, want 2 (one per redelivery)", dropped)
				}
			})

			// Ensure a run taken over after its replica died (a compare-and-set on its status) ends the same
			// way: one event, the execution failed.
			t.Run("InterruptedRun", func(t *testing.T) {
				t.Parallel()
				b := setupRunEnded(t, be.Open)
				b.start(t)
				won, err := b.db.SessionClaim(b.ctx, agent.ClaimParams{SessionID: b.sess.ID, From: []string{agent.StatusRunning},
					To: agent.StatusFailed, Error: "interrupted: the replica running it stopped", Now: time.Now().UTC()})
				if err != nil || !won {
					t.Fatalf("take over: %v %v", won, err)
				}
				if e := b.handled.WaitOrTimeout(t); e.Run != 1 || e.Status != agent.StatusFailed {
					t.Fatalf("event: %+v", e)
				}
				if e := b.execution(t); e.Status != ops.ExecFailed || e.Error != "interrupted: the replica running it stopped" {
					t.Fatalf("execution after the take-over: %+v", e)
				}
				if n := b.audited(t, "standing_order.run_failed"); n != 1 {
					t.Errorf("audit records of the interrupted run: %d, want 1", n)
				}
				if x := b.reported.WaitOrTimeout(t); x.Report != ops.ReportFailed {
					t.Errorf("executed event of the interrupted run: %+v", x)
				}
				if n := b.box.take(); len(n) != 1 || n[0].Severity != "critical" {
					t.Errorf("reports of the interrupted run: %+v, want one critical", n)
				}
			})

			// Ensure redelivered events (a relay replay, a reclaimed message), an older run end arriving
			// late and the in-process hook arriving after the event update, audit and report once.
			t.Run("RedeliveredOnce", func(t *testing.T) {
				t.Parallel()
				b := setupRunEnded(t, be.Open)
				b.start(t)
				b.end(t, agent.StatusAwaitingApproval, "", "") // run end 1: it waits for a human
				b.handled.WaitOrTimeout(t)
				if e := b.execution(t); e.Status != ops.ExecAwaitingHuman {
					t.Fatalf("execution while escalated: %s", e.Status)
				}
				b.end(t, agent.StatusRunning, "", "") // resumed: no run end
				b.end(t, agent.StatusCompleted, "disk was 91%, vacuumed the journal, now 70%", "")
				if e := b.handled.WaitOrTimeout(t); e.Run != 2 {
					t.Fatalf("second event: %+v", e)
				}
				payloads := [][]byte{b.spied.WaitOrTimeout(t), b.spied.WaitOrTimeout(t)}

				for range 2 {
					for _, p := range payloads {
						if _, err := b.bus.Publish(b.ctx, agentapi.StreamRuns, p); err != nil {
							t.Fatal(err)
						}
					}
				}
				for range 4 {
					b.handled.WaitOrTimeout(t)
				}
				b.o.OnSessionEnd(b.ctx, b.sess) // the in-process hook, late
				// Two run ends, two executed events (the escalation is not reported, the completion is);
				// the redeliveries and the late hook wrote none.
				if x := b.reported.WaitOrTimeout(t); x.Report != ops.ReportEscalate || x.Run != 1 {
					t.Fatalf("first executed event: %+v", x)
				}
				if x := b.reported.WaitOrTimeout(t); x.Report != ops.ReportActed || x.Run != 2 {
					t.Fatalf("second executed event: %+v", x)
				}
				if n := b.pendingEvents(t); n != 0 {
					t.Errorf("outbox rows after the redeliveries: %d, want 0", n)
				}

				if e := b.execution(t); e.Status != ops.ExecCompleted || e.FinishedAt == nil {
					t.Fatalf("execution after redeliveries: %+v", e)
				}
				if n := b.audited(t, "standing_order.run_awaiting_human"); n != 1 {
					t.Errorf("audit records of the escalation: %d, want 1", n)
				}
				if n := b.audited(t, "standing_order.run_completed"); n != 1 {
					t.Errorf("audit records of the completed run: %d, want 1", n)
				}
				if n := b.box.take(); len(n) != 1 {
					t.Errorf("reports: %+v, want one (the completed run acted)", n)
				}
				// The records appended with the executions' updates are on the chain like any other.
				if _, err := b.log.Record(b.ctx, audit.Record{Action: "test.after", ResourceType: "test", ResourceID: "1"}); err != nil {
					t.Fatal(err)
				}
				if v, err := b.log.Verify(b.ctx); err != nil || !v.OK || v.Checked < 5 {
					t.Errorf("audit chain: %+v %v", v, err)
				}
			})
		})
	}
}
