package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// fakeAgent counts the sessions orders start; finish ends the open runs as completed.
type fakeAgent struct {
	starts atomic.Int32
	open   []string // execution ids of runs not finished yet
}

var _ ops.OrderAgent = (*fakeAgent)(nil)

func (f *fakeAgent) StartTask(ctx context.Context, p agent.StartParams) (*agent.Session, *agent.TaskRecord, error) {
	f.starts.Add(1)
	f.open = append(f.open, p.OriginID)
	return &agent.Session{ID: "s", Status: agent.StatusRunning, Origin: p.Origin, OriginID: p.OriginID}, &agent.TaskRecord{}, nil
}
func (f *fakeAgent) Session(context.Context, string) (*agent.Session, error) { return nil, nil }
func (f *fakeAgent) RequestApproval(context.Context, *agent.Session, string, string, json.RawMessage, guard.Level, string) (*approval.Approval, error) {
	return nil, nil
}
func (f *fakeAgent) UseGrant(context.Context, string, string) (bool, error) { return false, nil }

func (f *fakeAgent) finish(ctx context.Context, o *ops.Orders) {
	for _, id := range f.open {
		o.OnSessionEnd(ctx, &agent.Session{Origin: "standing_order", OriginID: id, Status: agent.StatusCompleted, Summary: "nothing to do", RunEnds: 1})
	}
	f.open = nil
}

type oneServer struct{}

func (oneServer) Servers(context.Context, inventory.Selector) ([]inventory.Server, error) {
	return []inventory.Server{{ID: "srv-1", Name: "web-1", Environment: "prod"}}, nil
}

func (oneServer) CommandRecords(context.Context, string, string, int) ([]inventory.CommandRecord, error) {
	return nil, nil
}

// ordersEnv is a tenant whose standing orders run on a controllable clock, with a jobs database that
// outlives restarts of the process.
type ordersEnv struct {
	clock *jobstest.Clock
	db    *store.DB
	ctx   context.Context
	log   *audit.Log
	agent *fakeAgent
	jdb   *jobstest.DB
}

func newOrdersEnv(t *testing.T, slug string, start time.Time) *ordersEnv {
	clock := jobstest.NewClock(start)
	db := storetest.OpenSQLite(t)
	tn := storetest.NewTenant(t, db, slug)
	log, _ := audit.New(db, bytes.Repeat([]byte{1}, 32), clock.Now)
	return &ordersEnv{clock: clock, db: db, ctx: tenant.WithID(context.Background(), tn.ID), log: log, agent: &fakeAgent{},
		jdb: jobstest.Open(t, jobs.SQLite)}
}

// process is a (re)started process: a runner on the env's jobs database and the orders scheduling on it.
func (e *ordersEnv) process(t *testing.T) (*jobs.Runner, *ops.Orders) {
	cfg := e.jdb.Config(t)
	cfg.Now = e.clock.Now
	r := jobstest.New(t, cfg)
	o := ops.NewOrders(e.db, e.agent, oneServer{}, e.log, jobs.CheckCron, e.clock.Now)
	o.SetScheduler(jobs.NextCron, r.Schedule)
	return r, o
}

// TestCronOrder: an order "0 8 * * *" in Asia/Shanghai fires once at 08:00 local, not again after a restart
// at 08:00:30, and a run missed during days of downtime runs once on restart (catch-up), after which the
// schedule continues.
func TestCronOrder(t *testing.T) {
	t.Parallel()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	env := newOrdersEnv(t, "cron", time.Date(2026, 11, 26, 7, 59, 0, 0, shanghai))
	clock, ctx, fa := env.clock, env.ctx, env.agent

	// start is a (re)started process with the startup pass that queues every active order's next occurrence.
	start := func() (*jobs.Runner, *ops.Orders) {
		r, o := env.process(t)
		r.Register(ops.JobCron, func(jctx context.Context, j *jobs.Job) error {
			return o.HandleCron(tenant.WithID(jctx, j.TenantID), j.Args)
		})
		if err := o.EnsureSchedules(ctx); err != nil {
			t.Fatal(err)
		}
		return r, o
	}
	var o *ops.Orders
	runDue := func(r *jobs.Runner) {
		t.Helper()
		if _, err := r.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		fa.finish(ctx, o)
	}
	r, o := start()
	order := &ops.StandingOrder{Name: "morning disk check", Trigger: ops.Trigger{Type: "cron", CronExpression: "0 8 * * *", Timezone: "Asia/Shanghai"},
		Targets: ops.Targets{AllServers: true}, AgentInstructions: ops.AgentInstructions{Prompt: "check disk", MaxRiskLevel: 0}}
	if err := o.Create(ctx, order, ""); err != nil {
		t.Fatal(err)
	}
	runDue(r)
	if n := fa.starts.Load(); n != 0 {
		t.Fatalf("ran %d times before 08:00", n)
	}
	clock.Set(time.Date(2026, 11, 26, 8, 0, 0, 0, shanghai))
	runDue(r)
	if n := fa.starts.Load(); n != 1 {
		t.Fatalf("at 08:00 ran %d times, want 1", n)
	}
	// Restart at 08:00:30: nothing runs twice.
	clock.Set(time.Date(2026, 11, 26, 8, 0, 30, 0, shanghai))
	r, _ = start()
	runDue(r)
	if n := fa.starts.Load(); n != 1 {
		t.Fatalf("after a restart at 08:00:30 ran %d times, want 1", n)
	}
	// The next day at 08:00 it runs again.
	clock.Set(time.Date(2026, 11, 27, 8, 0, 0, 0, shanghai))
	runDue(r)
	if n := fa.starts.Load(); n != 2 {
		t.Fatalf("the next morning ran %d times, want 2", n)
	}
	// Down from the 28th to the 30th at 09:00: the three missed mornings run once, on restart.
	clock.Set(time.Date(2026, 11, 30, 9, 0, 0, 0, shanghai))
	r, _ = start()
	runDue(r)
	if n := fa.starts.Load(); n != 3 {
		t.Fatalf("after downtime ran %d times in total, want 3 (one catch-up)", n)
	}
	runDue(r)
	clock.Set(time.Date(2026, 12, 1, 7, 59, 59, 0, shanghai))
	runDue(r)
	if n := fa.starts.Load(); n != 3 {
		t.Fatalf("ran before the next occurrence: %d", n)
	}
	clock.Set(time.Date(2026, 12, 1, 8, 0, 0, 0, shanghai))
	runDue(r)
	if n := fa.starts.Load(); n != 4 {
		t.Fatalf("the schedule did not continue after the catch-up: %d", n)
	}
	execs, err := o.Executions(ctx, order.ID, 10)
	if err != nil || len(execs) != 4 || execs[0].TriggerType != "cron" {
		t.Fatalf("executions: %v %+v", err, execs)
	}
}
