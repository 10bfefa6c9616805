package httpapi

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/vault"
)

var (
	benchTenants       = flag.Int("ops.tenants", 100, "tenants in the ops benchmarks")
	benchPer           = flag.Int("ops.per", 100, "cron orders or pending approvals per tenant in the ops benchmarks")
	approvalsClustered = flag.Bool("ops.clustered", false, "BenchmarkApprovalExpiry: each tenant's approvals expire one after another instead of interleaved")
	cronBurst          = flag.Bool("cron.burst", false, "BenchmarkCronOrders: every order fires every minute (all at once) instead of spread over the hour")
	cronPostgres       = flag.Bool("cron.postgres", false, "BenchmarkCronOrders: on PostgreSQL instead of SQLite")
)

// outboxLag follows domain-event streams as a consumer group of its own and records, for each event, the
// time from its write (the envelope's time, set in the transaction that wrote it) to its delivery: what the
// outbox relay and the bus add before any module can react.
type outboxLag struct {
	mu     sync.Mutex
	events []lagged
}

type lagged struct {
	key string // type and subject
	at  time.Time
	lag time.Duration
}

func followOutbox(b *testing.B, tb *testBundle, streams ...string) *outboxLag {
	l := &outboxLag{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, stream := range streams {
		wg.Go(func() {
			outbox.Consume(ctx, tb.bus, stream, "bench-lag", "bench", nil, func(data []byte) (outbox.Envelope, string, error) {
				var e outbox.Envelope
				err := json.Unmarshal(data, &e)
				return e, e.TenantID, err
			}, func(_ context.Context, e outbox.Envelope) error {
				l.mu.Lock()
				l.events = append(l.events, lagged{key: e.Type + " " + e.Subject, at: e.Time, lag: time.Since(e.Time)})
				l.mu.Unlock()
				return nil
			})
		})
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
	return l
}

// report reports the count (and distinct count), p50, p99 and maximum of the lags of the events written
// since from, and forgets every event.
func (l *outboxLag) report(b *testing.B, from time.Time) {
	l.mu.Lock()
	events := l.events
	l.events = nil
	l.mu.Unlock()
	var lags []time.Duration
	distinct := map[string]bool{}
	for _, e := range events {
		if !e.at.Before(from) {
			lags = append(lags, e.lag)
			distinct[e.key] = true
		}
	}
	if len(lags) == 0 {
		b.Fatal("no domain event was delivered")
	}
	slices.Sort(lags)
	b.ReportMetric(float64(len(lags)), "events")
	b.ReportMetric(float64(len(distinct)), "distinct_events")
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "outbox_lag_p50_ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "outbox_lag_p99_ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "outbox_lag_max_ms")
}

// quickEngine ends every run at once: the benchmarks measure IT0's scheduling, not a model.
type quickEngine struct{}

func (quickEngine) Name() string                 { return agent.EngineClaudeAPI }
func (quickEngine) Health(context.Context) error { return nil }
func (quickEngine) Run(_ context.Context, _ agent.Task, emit func(agent.Event)) (agent.Outcome, error) {
	emit(agent.Event{Type: agent.EventCompleted, Summary: "nothing to do"})
	return agent.Outcome{Summary: "nothing to do"}, nil
}

// startRecorder passes sessions through to the agent, noting when each one started.
type startRecorder struct {
	ops.OrderAgent
	mu     sync.Mutex
	starts []time.Time
}

func (r *startRecorder) StartTask(ctx context.Context, p agent.StartParams) (*agent.Session, *agent.TaskRecord, error) {
	now := time.Now()
	r.mu.Lock()
	r.starts = append(r.starts, now)
	r.mu.Unlock()
	return r.OrderAgent.StartTask(ctx, p)
}

// benchTenantsWithServer provisions n enterprise tenants, each with one server, and returns their ids.
func benchTenantsWithServer(b *testing.B, tb *testBundle, n int) []string {
	ids := make([]string, n)
	for i := range n {
		slug := fmt.Sprintf("bench-%03d", i)
		r := tb.do("POST", "/api/v1/auth/tenants", tb.adminTok, map[string]string{"name": slug, "slug": slug, "plan": "enterprise",
			"admin_email": "admin@" + slug + ".example", "admin_password": "password-" + slug})
		if r.status != 201 {
			b.Fatalf("tenant: %s", r.raw)
		}
		ids[i] = r.body["id"].(string)
		ctx := tenant.WithID(context.Background(), ids[i])
		cred, err := tb.inv.CreateCredential(ctx, inventory.CredentialInput{Name: "pw", Type: "ssh_password", Secret: vault.Secret("not-used")})
		if err != nil {
			b.Fatal(err)
		}
		if err := tb.inv.CreateServer(ctx, &inventory.Server{Name: "web-1", Host: "127.0.0.1", Port: 22, CredentialID: cred.ID, HostKeyPolicy: "tofu"}); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCronOrders: 10,000 active cron orders across 100 tenants (SQLite, or PostgreSQL with
// -cron.postgres; the production job loop on the real clock). By default each order runs hourly at minute
// i%60, so a minute's tick fires ~167 of them; -cron.burst makes every order fire every minute. It waits for
// the next minute boundary and reports the scheduler's CPU for that minute, the delay from the due time to
// each execution's start (target: p99 < 2 s) and, under that load, the outbox lag of the runs' domain
// events (agent.run_ended, standing_order.executed): from their write to their delivery on the bus.
// Run with -benchtime=1x; it takes about a minute plus setup.
func BenchmarkCronOrders(b *testing.B) {
	open, dialect := storetest.OpenSQLite, jobs.SQLite
	if *cronPostgres {
		// The production pool (storetest's default is smaller, for many parallel tests).
		open, dialect = func(tb testing.TB) *store.DB { return storetest.OpenPostgresPool(tb, 0) }, jobs.Postgres
	}
	for b.Loop() {
		// The app's own loops stay stopped: the benchmark measures its runner, orders and the CPU they take.
		// The app's outbox relay runs, as in production.
		tb := setupAppWith(b, open, appKnobs{engines: []agent.Engine{quickEngine{}}, manual: true})
		tb.now.Set(time.Now().UTC())
		tb.now.Run() // the events' time stamps are on the app's clock; the lag is measured on the wall clock
		tenants := benchTenantsWithServer(b, tb, *benchTenants)
		lag := followOutbox(b, tb, agentapi.StreamRuns, ops.StreamEvents)
		cfg := jobstest.Open(b, dialect).Config(b)
		runner := jobstest.New(b, cfg)
		rec := &startRecorder{OrderAgent: tb.srv.Agent}
		orders := ops.NewOrders(tb.db, rec, tb.inv, tb.audit, jobs.CheckCron, nil)
		tb.srv.Agent.OnRunEnd(orders.OnSessionEnd)
		orders.SetNotify(func(ctx context.Context) { // as the app's orders do: their events wait in the outbox
			tid, _ := tenant.ID(ctx)
			tb.relay.Notify(tid)
		})
		orders.SetScheduler(jobs.NextCron, runner.Schedule)
		runner.Register(ops.JobCron, func(ctx context.Context, j *jobs.Job) error {
			return orders.HandleCron(tenant.WithID(ctx, j.TenantID), j.Args)
		})
		// Create the orders with the minute that is about to come excluded from setup time: they are
		// queued for their next occurrence as they are created.
		n := 0
		for _, tid := range tenants {
			ctx := tenant.WithID(context.Background(), tid)
			for i := range *benchPer {
				expr := fmt.Sprintf("%d * * * *", n%60)
				if *cronBurst {
					expr = "* * * * *"
				}
				o := &ops.StandingOrder{Name: fmt.Sprintf("order %d", i), Trigger: ops.Trigger{Type: "cron", CronExpression: expr, Timezone: "Asia/Shanghai"},
					Targets: ops.Targets{AllServers: true}, AgentInstructions: ops.AgentInstructions{Prompt: "check disk", MaxRiskLevel: 0}}
				if err := orders.Create(ctx, o, ""); err != nil {
					b.Fatal(err)
				}
				n++
			}
		}
		// The next minute boundary that is at least 5 s away, so the loop is idle when it comes.
		due := time.Now().Truncate(time.Minute).Add(time.Minute)
		if time.Until(due) < 5*time.Second {
			due = due.Add(time.Minute)
		}
		dueCount := 0
		for i := range n {
			if *cronBurst || i%60 == due.Minute() {
				dueCount++
			}
		}
		if err := runner.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Until(due))
		cpu0, pool0 := cpuTime(), tb.db.PoolStats()
		deadline := time.Now().Add(time.Minute)
		for {
			rec.mu.Lock()
			got := len(rec.starts)
			rec.mu.Unlock()
			if got >= dueCount {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d due orders started within a minute", got, dueCount)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Until(due.Add(time.Minute))) // the rest of the minute: idle polling counts too
		cpu, pool := cpuTime()-cpu0, tb.db.PoolStats()
		b.ReportMetric(float64(pool.WaitCount-pool0.WaitCount), "db_pool_waits")
		b.ReportMetric(float64((pool.WaitDuration - pool0.WaitDuration).Milliseconds()), "db_pool_wait_ms")
		lag.report(b, due) // the tick's events: not the catch-up runs of minutes that passed during setup
		rec.mu.Lock()
		delays := make([]time.Duration, len(rec.starts))
		for i, s := range rec.starts {
			delays[i] = s.Sub(due)
		}
		rec.mu.Unlock()
		slices.Sort(delays)
		b.ReportMetric(float64(dueCount), "due_per_tick")
		b.ReportMetric(cpu.Seconds()*1000, "cpu_ms_per_minute")
		b.ReportMetric(float64(delays[len(delays)/2].Milliseconds()), "delay_p50_ms")
		b.ReportMetric(float64(delays[len(delays)*99/100].Milliseconds()), "delay_p99_ms")
		b.ReportMetric(float64(delays[len(delays)-1].Milliseconds()), "delay_max_ms")
		runner.Stop(context.Background())
	}
}

// BenchmarkApprovalExpiry: 10,000 pending L2 approvals across 100 tenants, all expiring at one instant
// (SQLite, the production job loop). It reports the time from that instant until every approval was
// decided by its timeout and its session had resumed and ended (target: all decided within 5 s; this
// measures more, the resumed runs too). Run with -benchtime=1x.
func BenchmarkApprovalExpiry(b *testing.B) {
	for b.Loop() {
		// The app's job loop starts once every approval is queued and due (below).
		tb := setupAppWith(b, storetest.OpenSQLite, appKnobs{engines: []agent.Engine{quickEngine{}}, manual: true})
		tenants := benchTenantsWithServer(b, tb, *benchTenants)
		ag := tb.srv.Agent
		total := *benchTenants * *benchPer
		var ended, decided atomic.Int64
		allEnded, allDecided := make(chan time.Time, 1), make(chan time.Time, 1)
		tb.subscribe("bench", func(_ context.Context, e approval.Event) error {
			if e.Type == approval.EventDecided && decided.Add(1) == int64(total) {
				allDecided <- time.Now()
			}
			return nil
		})
		var seen sync.Map
		ag.OnRunEnd(func(ctx context.Context, sess *agent.Session) {
			if _, again := seen.LoadOrStore(sess.ID, true); !again && ended.Add(1) == int64(total) {
				allEnded <- time.Now()
			}
		})
		input, _ := json.Marshal(map[string]string{"server": "web-1", "command": "systemctl restart app"})
		// Approvals come in from every tenant over time, so the ones due together belong to many tenants;
		// -ops.clustered makes each tenant's approvals due one after another (the worst case on SQLite, where a
		// tenant's writes are serial).
		order := make([][2]int, 0, len(tenants)*(*benchPer))
		for i := range *benchPer {
			for t := range tenants {
				order = append(order, [2]int{t, i})
			}
		}
		if *approvalsClustered {
			slices.SortStableFunc(order, func(a, b [2]int) int { return a[0] - b[0] })
		}
		for _, ti := range order {
			tid, i := tenants[ti[0]], ti[1]
			ctx := tenant.WithID(context.Background(), tid)
			now := tb.now.Now()
			sess := &agent.Session{ID: fmt.Sprintf("%s-%d", tid[:8], i), TenantID: tid, Engine: agent.EngineClaudeAPI, Status: agent.StatusAwaitingApproval,
				Title: "restart", MaxTurns: 5, MaxRiskLevel: 2, Origin: "manual", CreatedAt: now, UpdatedAt: now}
			if err := tb.db.SessionCreate(ctx, sess); err != nil {
				b.Fatal(err)
			}
			if _, err := ag.RequestApproval(ctx, sess, agent.ToolRunCommand, fmt.Sprintf("systemctl restart app-%d", i), input, guard.L2, "bench"); err != nil {
				b.Fatal(err)
			}
		}
		// Every approval expires 30 minutes after it was asked for: move the clock there, then start the loop.
		tb.now.Advance(30*time.Minute + time.Second)
		start := time.Now()
		if err := tb.jobs.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		var lastDecided, lastEnded time.Time
		select {
		case lastDecided = <-allDecided:
		case <-time.After(2 * time.Minute):
			b.Fatalf("only %d of %d approvals decided within 2 minutes", decided.Load(), total)
		}
		select {
		case lastEnded = <-allEnded:
		case <-time.After(2 * time.Minute):
			b.Fatalf("only %d of %d sessions resumed within 2 minutes", ended.Load(), total)
		}
		b.ReportMetric(float64(total), "approvals")
		b.ReportMetric(lastDecided.Sub(start).Seconds(), "all_decided_s")
		b.ReportMetric(lastEnded.Sub(start).Seconds(), "all_resumed_runs_ended_s")
		tb.jobs.Stop(context.Background())
	}
}
