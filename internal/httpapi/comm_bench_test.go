package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/commtest"
	"github.com/it0/it0/internal/comm/twilio"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// BenchmarkEscalationChains runs 1,000 escalation chains at once on the real job runner (its Start loop,
// wall clock), on SQLite and on PostgreSQL (store and job table): each chain has three SMS steps (5, 10 and
// 15 seconds after it started), reported as the lateness of each send at the provider after its due time.
// The chains start from the approval.requested events comm takes from the bus. "floor-p99-late-ms" is the
// bare job runner on the same database running the same number of no-op jobs in the same three waves,
// measured in the same run, and "ratio-p99" = p99-step-late-ms / floor-p99-late-ms. Then every chain is
// answered by an inbound SMS "Y <ref>" through the signed Twilio webhook, half of them 4 at a time and half
// 16 at a time, reported as the time from the webhook request to the session's next event (its run
// continuing, through the approval.decided event).
//
// postgres/replicas=3 runs three job runners (three replicas' worth) on the same job table, each with the
// step handler, and comm's Schedule enqueues through them in turn (each wakes the runner it went through;
// the others find the job at their next poll); its floor is three bare runners draining the same waves.
//
//	go test -run '^$' -bench EscalationChains -benchtime 1x ./internal/httpapi/
func BenchmarkEscalationChains(b *testing.B) {
	const chains = 1000
	for _, be := range []struct {
		name     string
		open     func(testing.TB) *store.DB
		jobs     jobs.Dialect
		replicas int
	}{{"sqlite/replicas=1", storetest.OpenSQLite, jobs.SQLite, 1}, {"postgres/replicas=1", storetest.OpenPostgres, jobs.Postgres, 1},
		{"postgres/replicas=3", storetest.OpenPostgres, jobs.Postgres, 3}} {
		b.Run(be.name, func(b *testing.B) {
			for b.Loop() {
				runEscalationBench(b, chains, be.open, be.jobs, be.replicas)
			}
		})
	}
}

// runners returns n job runners on the same job table (one per replica), polling every 100 ms.
func runners(b *testing.B, jdb *jobstest.DB, n int) []*jobs.Runner {
	var out []*jobs.Runner
	for range n {
		cfg := jdb.Config(b)
		cfg.PollInterval = 100 * time.Millisecond
		out = append(out, jobstest.New(b, cfg))
	}
	return out
}

// floorWaves runs n no-op jobs in three waves (5, 10 and 15 s from now) on replicas bare runners sharing a
// job table over dialect, and returns the lateness of each handler start after its due time, in ms.
func floorWaves(b *testing.B, n int, dialect jobs.Dialect, replicas int) []float64 {
	rs := runners(b, jobstest.Open(b, dialect), replicas)
	runner := rs[0]
	var mu sync.Mutex
	var late []float64
	done := make(chan struct{})
	for _, r := range rs {
		r.Register("noop", func(_ context.Context, j *jobs.Job) error {
			mu.Lock()
			defer mu.Unlock()
			late = append(late, float64(time.Since(j.RunAt))/float64(time.Millisecond))
			if len(late) == 3*n {
				close(done)
			}
			return nil
		})
	}
	start := time.Now()
	for wave := 1; wave <= 3; wave++ {
		for i := range n {
			if _, err := runner.Enqueue(context.Background(), jobs.Job{Kind: "noop", Args: []byte(`{}`), RunAt: start.Add(time.Duration(5*wave) * time.Second),
				UniqueKey: fmt.Sprintf("noop:%d:%d", wave, i)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, r := range rs {
		if err := r.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("only %d of %d no-op jobs ran", len(late), 3*n)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(late)
}

func runEscalationBench(b *testing.B, chains int, open func(testing.TB) *store.DB, dialect jobs.Dialect, replicas int) {
	// Every target but comm: the benchmark's own comm service (below) is the only one taking the approval events.
	bundle := setupAppWith(b, open, appKnobs{engines: []agent.Engine{&scriptEngine{name: agent.EngineClaudeAPI}},
		env: map[string]string{"IT0_TARGET": "api,agent,ops,monitor,voice"}})
	r := bundle.do("POST", "/api/v1/auth/tenants", bundle.adminTok, map[string]any{"name": "bench", "slug": "bench", "plan": "enterprise",
		"admin_email": "admin@bench.example", "admin_password": "password-bench"})
	if r.status != 201 {
		b.Fatalf("tenant: %d %s", r.status, r.raw)
	}
	tid := r.body["id"].(string)
	tok := bundle.login("admin@bench.example", "password-bench")
	adminID := bundle.do("GET", "/api/v1/auth/me", tok, nil).body["user"].(map[string]any)["id"].(string)
	ctx := auth.WithPrincipal(tenant.WithID(context.Background(), tid), auth.Principal{UserID: adminID, TenantID: tid, Role: auth.RoleAdmin})

	// The bundle's agent service, job runners on the wall clock, and comm over both.
	ag := bundle.agentSvc.Load()
	rs := runners(b, jobstest.Open(b, dialect), replicas)
	runner := rs[0]
	var turn atomic.Int64 // which replica's runner schedules the next job
	prov := commtest.NewProvider(b, time.Now)
	tw := prov.Twilio()
	cs, err := comm.New(comm.Config{PublicURL: testPublicURL, LinkSecret: testSecret, Logger: bundle.logger, Twilio: tw,
		Schedule: func(ctx context.Context, kind string, args any, at time.Time, key string) error {
			raw, _ := json.Marshal(args)
			tid, _ := tenant.ID(ctx)
			r := rs[int(turn.Add(1))%len(rs)]
			_, err := r.Enqueue(ctx, jobs.Job{Kind: kind, Args: raw, RunAt: at, TenantID: tid, UniqueKey: key})
			return err
		}, CancelKey: runner.CancelKey}, bundle.db, bundle.approvals, bundle.auth, bundle.audit, tw.SMS())
	if err != nil {
		b.Fatal(err)
	}
	bundle.subscribe("comm", cs.OnApprovalEvent)
	for _, r := range rs {
		r.Register(comm.JobStep, func(ctx context.Context, j *jobs.Job) error {
			var a struct {
				ApprovalID string `json:"approval_id"`
				Step       int    `json:"step"`
			}
			json.Unmarshal(j.Args, &a)
			return cs.RunStep(tenant.WithID(ctx, j.TenantID), a.ApprovalID, a.Step)
		})
	}
	srv := httptest.NewServer(New(Deps{Auth: bundle.auth, Audit: bundle.audit, Agent: ag, Comm: cs, Logger: bundle.logger}).Handler())
	b.Cleanup(srv.Close)
	if err := cs.CreateContact(ctx, &comm.Contact{Name: "on call", Audience: comm.AudiencePrimary, UserID: adminID, Phone: primaryPhone, Enabled: true}); err != nil {
		b.Fatal(err)
	}
	// Steps at 5, 10 and 15 s: the chains are all opened (a burst of about 2 s here) before the first step
	// is due, and each wave of 1,000 steps comes due within those 2 s (the default ladder has minutes
	// between steps; 5 s keeps the run short).
	steps := []comm.Step{{DelaySeconds: 5, Channels: []string{"sms"}, Audience: "primary"}, {DelaySeconds: 10, Channels: []string{"sms"}, Audience: "primary"},
		{DelaySeconds: 15, Channels: []string{"sms"}, Audience: "primary"}}
	if err := cs.SetPolicy(ctx, &comm.Policy{Severity: comm.SeverityCritical, Steps: steps}); err != nil {
		b.Fatal(err)
	}
	for _, r := range rs {
		if err := r.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
	}

	// 1,000 unattended sessions paused on an escalation, opened 32 at a time.
	type chain struct{ session, approval string }
	list := make([]chain, chains)
	created := time.Now()
	input := json.RawMessage(`{"reason":"disk 97% on web-1","severity":"critical"}`)
	parallel(chains, 32, func(i int) {
		now := time.Now().UTC()
		sess := &agent.Session{ID: uuid.NewString(), UserID: adminID, Engine: agent.EngineClaudeAPI, Status: agent.StatusAwaitingApproval,
			Title: "bench", ServerIDs: []string{}, MaxTurns: 5, Origin: agent.OriginStandingOrder, OriginID: "SO-bench", CreatedAt: now, UpdatedAt: now}
		if err := bundle.db.SessionCreate(ctx, sess); err != nil {
			b.Error(err)
			return
		}
		a, err := ag.RequestApproval(ctx, sess, ops.ToolReportEscalation, fmt.Sprintf("ESCALATION %d: disk 97%% on web-1", i), input, guard.L1, "bench")
		if err != nil {
			b.Error(err)
			return
		}
		list[i] = chain{sess.ID, a.ID}
	})
	if b.Failed() {
		return
	}
	// comm takes every approval.requested event; on a loaded machine that outlasts settleEvents' 20 s.
	var escs []comm.Escalation
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if escs, err = cs.Escalations(ctx, comm.EscalationActive, chains); err != nil {
			b.Fatal(err)
		}
		if len(escs) == chains {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d chains escalated", len(escs), chains)
		}
	}
	bundle.settleEvents()
	b.Logf("created %d chains in %v", chains, time.Since(created))
	byRef := map[string]comm.Escalation{}
	for _, e := range escs {
		byRef[e.Ref] = e
	}

	// Wait for every step's SMS (3 per chain), then measure each send's lateness after its due time.
	deadline := time.After(2 * time.Minute)
	for {
		changed := prov.Changed() // before counting, so the last send cannot slip between the two
		if len(prov.Sent(comm.ChannelSMS)) >= 3*chains {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			b.Fatalf("only %d of %d step messages sent", len(prov.Sent(comm.ChannelSMS)), 3*chains)
		}
	}
	refRE := regexp.MustCompile(`Y (\d{6})`)
	seen := map[string]int{}
	var late []float64
	for _, s := range prov.Sent(comm.ChannelSMS) {
		m := refRE.FindStringSubmatch(s.Body)
		if m == nil {
			b.Fatalf("SMS without a ref: %q", s.Body)
		}
		e := byRef[m[1]]
		step := seen[m[1]]
		seen[m[1]]++
		due := e.StartedAt.Add(time.Duration(steps[step].DelaySeconds) * time.Second)
		late = append(late, float64(s.At.Sub(due))/float64(time.Millisecond))
	}

	// Answer every chain by SMS and time it until the session's run continues: the first half 4 answers at
	// a time, the second half 16 at a time (the 1,000 chains stay open meanwhile).
	answerMS := make([]float64, chains)
	refOf := map[string]string{}
	for _, e := range escs {
		refOf[e.ID] = e.Ref
	}
	client := comm.NewHTTPClient(30 * time.Second) // keeps a connection per answerer, as Twilio does
	answer := func(i int) {
		c := list[i]
		sub := ag.Hub().Subscribe(c.session)
		defer ag.Hub().Unsubscribe(sub)
		form := url.Values{"MessageSid": {"SM" + c.approval}, "From": {primaryPhone}, "To": {commtest.TwilioNumber}, "Body": {"Y " + refOf[c.approval]}}
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/twilio/sms", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twilio.Signature(commtest.TwilioToken, testPublicURL+"/api/v1/twilio/sms", form))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		resp.Body.Close()
		select {
		case <-sub.C:
			answerMS[i] = float64(time.Since(start)) / float64(time.Millisecond)
		case <-time.After(30 * time.Second):
			b.Errorf("session %s did not continue after the answer (HTTP %d)", c.session, resp.StatusCode)
		}
	}
	half := chains / 2
	parallel(half, 4, answer)
	parallel(chains-half, 16, func(i int) { answer(half + i) })
	b.ReportMetric(percentile(late, 50), "p50-step-late-ms")
	b.ReportMetric(percentile(late, 99), "p99-step-late-ms")
	b.ReportMetric(slices.Max(late), "max-step-late-ms")
	b.ReportMetric(percentile(answerMS[:half], 50), "p50-answer-to-continue-ms")
	b.ReportMetric(percentile(answerMS[:half], 99), "p99-answer-to-continue-ms")
	b.ReportMetric(percentile(answerMS[half:], 99), "p99-answer-to-continue-16-at-once-ms")
	if n := len(prov.Sent(comm.ChannelSMS)); n != 3*chains {
		b.Errorf("%d SMS sent, want %d (each step once)", n, 3*chains)
	}
	floor := floorWaves(b, chains, dialect, replicas)
	b.ReportMetric(percentile(floor, 99), "floor-p99-late-ms")
	b.ReportMetric(percentile(late, 99)/max(percentile(floor, 99), 1), "ratio-p99")
}

// parallel runs fn(0..n-1) on width goroutines.
func parallel(n, width int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range width {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func percentile(xs []float64, p float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}
