package ops_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// inbox records the notices the orders send (the comm module's place in these tests). With once set it
// keeps comm's contract on Notice.Key (a key is delivered once; comm's own tests check that it does) and
// counts the sends it dropped.
type inbox struct {
	mu      sync.Mutex
	notices []ops.Notice
	once    bool
	seen    map[string]bool
	dropped int
}

func (b *inbox) Notify(_ context.Context, n ops.Notice) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.once {
		if b.seen[n.Key] {
			b.dropped++
			return nil
		}
		if b.seen == nil {
			b.seen = map[string]bool{}
		}
		b.seen[n.Key] = true
	}
	b.notices = append(b.notices, n)
	return nil
}

func (b *inbox) take() []ops.Notice {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.notices
	b.notices = nil
	return n
}

// deliverReports hands the standing_order.executed events waiting in the outbox to o.OnExecuted (the
// reports subscription), in order, and removes them.
func deliverReports(t *testing.T, db *store.DB, ctx context.Context, o *ops.Orders) {
	t.Helper()
	_, err := db.OutboxRelay(ctx, 100, func(_ context.Context, evs []outbox.Event) error {
		for _, ev := range evs {
			x, tid, err := ops.ParseExecuted(ev.Payload)
			if err != nil {
				continue // another fact
			}
			if err := o.OnExecuted(tenant.WithID(ctx, tid), x); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sessionFleet has one server and the commands each session ran.
type sessionFleet struct {
	oneServer
	commands map[string][]inventory.CommandRecord
}

func (f sessionFleet) CommandRecords(_ context.Context, _, sessionID string, _ int) ([]inventory.CommandRecord, error) {
	return f.commands[sessionID], nil
}

// TestRunReports: a clean run is silent, a run that changed something pushes its summary, a failed run
// pushes and texts at once, and an escalation is left to the escalation chain.
func TestRunReports(t *testing.T) {
	t.Parallel()
	db, _, ctx, log := tenantDB(t, storetest.OpenSQLite, "reports")
	fa := &fakeAgent{}
	exit0 := 0
	fleet := sessionFleet{commands: map[string][]inventory.CommandRecord{
		"clean": {{ServerName: "web-1", Command: "df -h", RiskLevel: 0, Status: inventory.StatusOK, ExitCode: &exit0}},
		// newest first, as the store lists them
		"acted": {{ServerName: "web-1", Command: "df -h", RiskLevel: 0, Status: inventory.StatusOK, ExitCode: &exit0},
			{ServerName: "web-1", Command: "journalctl --vacuum-size=500M", RiskLevel: 1, Status: inventory.StatusOK, ExitCode: &exit0}},
	}}
	o := ops.NewOrders(db, fa, fleet, log, jobs.CheckCron, nil)
	box := &inbox{}
	o.SetReports(box, func(context.Context) string { return "en" }, nil)
	order := &ops.StandingOrder{Name: "disk janitor", Trigger: ops.Trigger{Type: "manual"}, Targets: ops.Targets{AllServers: true},
		AgentInstructions: ops.AgentInstructions{Prompt: "clean logs when disk is over 85%", MaxRiskLevel: 1}}
	if err := o.Create(ctx, order, ""); err != nil {
		t.Fatal(err)
	}
	end := func(sessionID, status, summary, errMsg string) *ops.Execution {
		t.Helper()
		e, err := o.Trigger(ctx, order.ID, "manual", nil)
		if err != nil {
			t.Fatal(err)
		}
		fa.open = nil
		o.OnSessionEnd(ctx, &agent.Session{ID: sessionID, Origin: agent.OriginStandingOrder, OriginID: e.ID, Status: status, Summary: summary, Error: errMsg, RunEnds: 1})
		deliverReports(t, db, ctx, o)
		got, err := o.Executions(ctx, order.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		return &got[0]
	}

	if e := end("clean", agent.StatusCompleted, "disk at 40%, nothing to do", ""); e.Status != ops.ExecCompleted {
		t.Fatalf("clean run: %+v", e)
	}
	if n := box.take(); len(n) != 0 {
		t.Fatalf("a clean run sent %+v, want silence", n)
	}

	e := end("acted", agent.StatusCompleted, "disk was 91%, vacuumed the journal to 500M, now 70%", "")
	var actions []map[string]any
	if err := json.Unmarshal(e.ActionsTaken, &actions); err != nil || len(actions) != 2 || actions[0]["command"] != "journalctl --vacuum-size=500M" {
		t.Fatalf("actions taken (oldest first): %v %s", err, e.ActionsTaken)
	}
	n := box.take()
	if len(n) != 1 || strings.Join(n[0].Channels, ",") != "app,push" || !strings.Contains(n[0].Subject, order.ID) ||
		!strings.Contains(n[0].Body, "vacuumed") || !strings.Contains(n[0].Body, "journalctl --vacuum-size=500M") {
		t.Fatalf("a run that acted must push its summary and actions: %+v", n)
	}

	end("broken", agent.StatusFailed, "", "ssh: connection refused")
	n = box.take()
	if len(n) != 1 || strings.Join(n[0].Channels, ",") != "app,push,sms" || n[0].Severity != "critical" || !strings.Contains(n[0].Body, "connection refused") {
		t.Fatalf("a failed run must push and text at once: %+v", n)
	}

	end("waiting", agent.StatusAwaitingApproval, "", "")
	if n := box.take(); len(n) != 0 {
		t.Fatalf("an escalation is the chain's to deliver, not a report: %+v", n)
	}
}

// TestDailyDigest: the digest goes out at 20:00 in the tenant's zone (Asia/Shanghai for a Chinese-speaking
// tenant by default), once even across a restart, in the tenant's language, and the next day's is queued.
func TestDailyDigest(t *testing.T) {
	t.Parallel()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	env := newOrdersEnv(t, "digest", time.Date(2026, 11, 26, 19, 0, 0, 0, shanghai))
	clock, ctx, fa := env.clock, env.ctx, env.agent
	box := &inbox{}
	start := func() (*jobs.Runner, *ops.Orders) {
		r, o := env.process(t)
		o.SetReports(box, func(context.Context) string { return "zh-CN" }, nil)
		r.Register(ops.JobDigest, func(jctx context.Context, j *jobs.Job) error {
			return o.HandleDigest(tenant.WithID(jctx, j.TenantID), j.Args)
		})
		if err := o.EnsureDigest(ctx); err != nil {
			t.Fatal(err)
		}
		return r, o
	}
	r, o := start()
	if s, err := o.Reports(ctx); err != nil || s.Timezone != "Asia/Shanghai" || s.DigestTime != "20:00" || !s.DigestEnabled {
		t.Fatalf("default report settings for zh-CN: %+v %v", s, err)
	}
	order := &ops.StandingOrder{Name: "磁盘巡检", Trigger: ops.Trigger{Type: "manual"}, Targets: ops.Targets{AllServers: true},
		AgentInstructions: ops.AgentInstructions{Prompt: "检查磁盘", MaxRiskLevel: 0}}
	if err := o.Create(ctx, order, ""); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := o.Trigger(ctx, order.ID, "manual", nil); err != nil {
			t.Fatal(err)
		}
		fa.finish(ctx, o)
	}
	runDue := func(r *jobs.Runner) {
		t.Helper()
		if _, err := r.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(time.Date(2026, 11, 26, 19, 59, 59, 0, shanghai))
	runDue(r)
	if n := box.take(); len(n) != 0 {
		t.Fatalf("digest before 20:00: %+v", n)
	}
	clock.Set(time.Date(2026, 11, 26, 20, 0, 0, 0, shanghai))
	runDue(r)
	n := box.take()
	if len(n) != 1 || !strings.Contains(n[0].Subject, "每日汇总 2026-11-26") || !strings.Contains(n[0].Body, "磁盘巡检") ||
		!strings.Contains(n[0].Body, "共 2 次") || !strings.Contains(n[0].Body, "正常 2") {
		t.Fatalf("digest at 20:00: %+v", n)
	}
	// A restart at 20:00:30 sends nothing again.
	clock.Set(time.Date(2026, 11, 26, 20, 0, 30, 0, shanghai))
	r, _ = start()
	runDue(r)
	if n := box.take(); len(n) != 0 {
		t.Fatalf("digest repeated after a restart: %+v", n)
	}
	// The next evening's digest comes, and says nothing ran.
	clock.Set(time.Date(2026, 11, 27, 20, 0, 0, 0, shanghai))
	runDue(r)
	if n := box.take(); len(n) != 1 || !strings.Contains(n[0].Body, "没有常设指令运行") {
		t.Fatalf("the next digest: %+v", n)
	}
	// Moving the digest to 08:00 UTC drops the queued 20:00 one and sends at the new time.
	if err := o.SetReportSettings(ctx, ops.ReportSettings{Timezone: "UTC", DigestTime: "08:00", DigestEnabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetReportSettings(ctx, ops.ReportSettings{Timezone: "Mars/Olympus", DigestTime: "08:00"}); err == nil || !strings.Contains(err.Error(), "timezone") {
		t.Fatalf("a bad zone: %v", err)
	}
	if err := o.SetReportSettings(ctx, ops.ReportSettings{Timezone: "UTC", DigestTime: "8pm"}); err == nil || !strings.Contains(err.Error(), "HH:MM") {
		t.Fatalf("a bad time: %v", err)
	}
	clock.Set(time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC))
	runDue(r)
	if n := box.take(); len(n) != 1 {
		t.Fatalf("after moving the digest to 08:00 UTC: %d notices", len(n))
	}
	clock.Set(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)) // 20:00 in Shanghai
	runDue(r)
	if n := box.take(); len(n) != 0 {
		t.Fatalf("the superseded 20:00 digest was sent: %+v", n)
	}
}
