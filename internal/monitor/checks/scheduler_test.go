package checks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/monitor/checks"
	"github.com/it0/it0/internal/monitor/monitortest"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/testsignal"
	"github.com/prometheus/client_golang/prometheus"
)

// TestCheckScheduler drives the scheduler second by second on a controllable clock across two tenants.
func TestCheckScheduler(t *testing.T) {
	t.Parallel()
	b := setupChecks(t)
	other := storetest.NewTenant(t, b.db, "checks-other")
	ctxB := tenant.WithID(context.Background(), other.ID)
	addr := monitortest.Listen(t, "127.0.0.1:0").Addr().String()
	mk := func(ctx context.Context, name string, interval int) *checks.Check {
		c := &checks.Check{Name: name, Type: checks.TypeTCP, Target: addr, IntervalSeconds: interval, TimeoutSeconds: 2}
		if err := b.checks.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	list := []*checks.Check{mk(b.ctx, "a-10", 10), mk(b.ctx, "a-30", 30), mk(b.ctx, "a-60", 60), mk(ctxB, "b-10", 10), mk(ctxB, "b-60", 60)}
	tenants := []string{b.tid, other.ID}
	s := checks.NewScheduler(checks.SchedulerConfig{Now: b.clock.Now, Concurrency: 4,
		Tenants: func(context.Context) ([]string, error) { return tenants, nil }}, b.checks)
	ctx := context.Background()
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 5 {
		t.Fatalf("scheduled %d checks, want 5", s.Len())
	}
	start := b.clock.Now()
	// Two minutes, one second at a time.
	for range 120 {
		s.RunDue(ctx, b.clock.Now())
		b.clock.Advance(time.Second)
	}
	// The slots in the last second of the two minutes.
	s.RunDue(ctx, start.Add(2*time.Minute-time.Nanosecond))
	// Ensure each check ran exactly once per interval, never more than a second late, in its own tenant.
	for i, c := range list {
		cctx := b.ctx
		if i >= 3 {
			cctx = ctxB
		}
		res, err := b.checks.Results(cctx, c.ID, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if want := 120 / c.IntervalSeconds; len(res) != want {
			t.Errorf("%s ran %d times in 2 minutes, want %d", c.Name, len(res), want)
		}
		for j, r := range res {
			if r.LatenessMS < 0 || r.LatenessMS >= 1000 || r.Status != checks.Up {
				t.Errorf("%s result %d: %+v", c.Name, j, r)
			}
			if j > 0 && res[j-1].CheckedAt.Sub(r.CheckedAt) != time.Duration(c.IntervalSeconds)*time.Second {
				t.Errorf("%s: runs %s apart, want %ds", c.Name, res[j-1].CheckedAt.Sub(r.CheckedAt), c.IntervalSeconds)
			}
		}
		if len(res) > 0 && res[len(res)-1].CheckedAt.Sub(start) >= time.Duration(c.IntervalSeconds)*time.Second {
			t.Errorf("%s first ran %s after start, later than one interval", c.Name, res[len(res)-1].CheckedAt.Sub(start))
		}
	}

	// Ensure a deleted check and a disabled one leave the schedule on reload, and a new one joins it.
	if err := b.checks.Delete(b.ctx, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.checks.Update(ctxB, list[3].ID, []byte(`{"enabled": false}`)); err != nil {
		t.Fatal(err)
	}
	mk(b.ctx, "a-new", 5)
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 4 {
		t.Errorf("after changes: %d scheduled, want 4", s.Len())
	}
	for range 10 {
		s.RunDue(ctx, b.clock.Now())
		b.clock.Advance(time.Second)
	}
	if res, _ := b.checks.Results(ctxB, list[3].ID, 1000); len(res) != 12 {
		t.Errorf("disabled check ran on: %d results", len(res))
	}
	if s.Down() != 0 {
		t.Errorf("%d checks down", s.Down())
	}
}

// TestCheckSchedulerConcurrency ensures no more than Concurrency checks run at once.
func TestCheckSchedulerConcurrency(t *testing.T) {
	t.Parallel()
	b := setupChecks(t)
	var cur, peak atomic.Int32
	release := make(chan struct{})
	arrived := make(chan struct{}, 6)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	for i := range 6 {
		c := &checks.Check{Name: "slow-" + string(rune('a'+i)), Type: checks.TypeHTTP, Target: srv.URL, IntervalSeconds: 60, TimeoutSeconds: 30}
		if err := b.checks.Create(b.ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	s := checks.NewScheduler(checks.SchedulerConfig{Now: b.clock.Now, Concurrency: 2,
		Tenants: func(context.Context) ([]string, error) { return []string{b.tid}, nil }}, b.checks)
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A whole interval later every check is due at once.
		s.RunDue(context.Background(), b.clock.Now().Add(time.Minute))
	}()
	// Let requests through one at a time, each once the workers are all busy (two requests have arrived
	// that are not released yet); the peak must stay at the bound.
	waitArrival := func() {
		t.Helper()
		select {
		case <-arrived:
		case <-time.After(testsignal.Timeout):
			t.Fatalf("%d checks running, want 2", cur.Load())
		}
	}
	waitArrival()
	waitArrival()
	for left := 6; left > 0; left-- {
		release <- struct{}{}
		if left > 2 {
			waitArrival() // the freed worker takes the next check
		}
	}
	select {
	case <-done:
	case <-time.After(testsignal.Timeout):
		t.Fatal("RunDue did not return")
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
}

// TestCheckSchedulerRun runs the real-time loop: it loads the checks, reloads when one is added, runs
// them, exports its metrics, and stops promptly when its context ends.
func TestCheckSchedulerRun(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := setupChecks(t, func(cfg *checks.Config) { cfg.Registerer = reg; cfg.Now = nil })
	addr := monitortest.Listen(t, "127.0.0.1:0").Addr().String()
	b.create(&checks.Check{Name: "first", Type: checks.TypeTCP, Target: addr, IntervalSeconds: 5, TimeoutSeconds: 1})
	s := checks.NewScheduler(checks.SchedulerConfig{Registerer: reg,
		Tenants: func(context.Context) ([]string, error) { return []string{b.tid}, nil }}, b.checks)
	s.TestSignals.Reloaded.Init(t)
	s.TestSignals.Ran.Init(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	if n := s.TestSignals.Reloaded.WaitOrTimeout(t); n != 1 {
		t.Fatalf("initial load scheduled %d checks, want 1", n)
	}
	// Ensure a new check reaches the running scheduler without waiting for the periodic reload (a minute).
	second := b.create(&checks.Check{Name: "second", Type: checks.TypeTCP, Target: addr, IntervalSeconds: 5, TimeoutSeconds: 1})
	s.TestSignals.Reloaded.WaitUntil(t, func(n int) bool { return n == 2 })
	// Ensure it runs within its interval, and the metrics count it.
	s.TestSignals.Ran.WaitUntil(t, func(id string) bool { return id == second.ID })
	if got, err := b.checks.Get(b.ctx, second.ID); err != nil || got.State != checks.Up {
		t.Fatalf("after its run: %+v, %v", got, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetName() == "it0_checks_run_total" {
			if l := mf.GetMetric()[0].GetLabel(); len(l) != 2 || l[0].GetValue() != "up" || l[1].GetValue() != "tcp" {
				t.Errorf("labels: %v", l)
			}
		}
	}
	for _, n := range []string{"it0_checks_run_total", "it0_check_lateness_seconds", "it0_checks_down"} {
		if !names[n] {
			t.Errorf("metric %s not exported (have %v)", n, names)
		}
	}
	// Ensure cancellation stops the loop promptly.
	cancel()
	select {
	case <-done:
	case <-time.After(testsignal.Timeout):
		t.Fatal("Run did not return after cancel")
	}
}

// TestCheckSchedulerReplicas runs two schedulers on one database, as two replicas would: each slot runs
// on one of them, and the retries policy holds across them.
func TestCheckSchedulerReplicas(t *testing.T) {
	t.Parallel()
	b := setupChecks(t)
	ln := monitortest.Listen(t, "127.0.0.1:0")
	var ids []string
	for i := range 3 {
		c := b.create(&checks.Check{Name: fmt.Sprintf("db-%d", i), Type: checks.TypeTCP, Target: ln.Addr().String(),
			IntervalSeconds: 10, TimeoutSeconds: 2, Retries: 2})
		ids = append(ids, c.ID)
	}
	tenants := func(context.Context) ([]string, error) { return []string{b.tid}, nil }
	replica := func() *checks.Scheduler {
		svc := checks.New(checks.Config{Now: b.clock.Now}, b.db, b.inv, nil, nil)
		s := checks.NewScheduler(checks.SchedulerConfig{Now: b.clock.Now, Tenants: tenants}, svc)
		if err := s.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, c := replica(), replica()
	step := func(seconds int) {
		for i := range seconds {
			// Swap which replica claims first every 10 s: consecutive slots of a check go to different replicas.
			first, second := a, c
			if (i/10)%2 == 1 {
				first, second = c, a
			}
			now := b.clock.Now()
			first.RunDue(context.Background(), now)
			second.RunDue(context.Background(), now)
			b.clock.Advance(time.Second)
		}
		// The slots in the last second.
		a.RunDue(context.Background(), b.clock.Now().Add(-time.Nanosecond))
		c.RunDue(context.Background(), b.clock.Now().Add(-time.Nanosecond))
	}
	step(60)
	for _, id := range ids {
		if res, _ := b.checks.Results(b.ctx, id, 100); len(res) != 6 {
			t.Errorf("check %s ran %d times in a minute on two replicas, want 6", id, len(res))
		}
	}
	ln.Close()
	step(40)
	for _, id := range ids {
		trs, err := b.checks.Transitions(b.ctx, id, 10)
		if err != nil || len(trs) != 2 || trs[0].To != checks.Down || trs[0].Results != 2 || trs[1].To != checks.Up {
			t.Errorf("check %s transitions: %v %+v", id, err, trs)
		}
		if res, _ := b.checks.Results(b.ctx, id, 100); len(res) != 10 {
			t.Errorf("check %s: %d results in 100 s, want 10", id, len(res))
		}
	}
	// Ensure a reload brings each replica's view (it0_checks_down) up to the stored state.
	for _, r := range []*checks.Scheduler{a, c} {
		if err := r.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r.Down() != 3 {
			t.Errorf("replica sees %d checks down, want 3", r.Down())
		}
	}
}
