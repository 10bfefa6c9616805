package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// BenchmarkExpire10k: 10,000 pending approvals of one tenant on PostgreSQL come due at once (opened over
// three seconds, so three sweep triggers and the tenant's tick are due). The jobs runner runs the
// sweeper; "decided_s" is the time from the due instant until every approval is decided (target < 1 s),
// with its audit entry and approval.decided event. "floor_s" is the bare jobs runner draining 10,000 no-op
// jobs on the same server, measured in the same run, and "ratio" = decided_s / floor_s: the per-approval
// job this replaces cost at least the floor. replicas=3 runs three runners (three replicas' worth) on the
// same job table and store. Run with -benchtime=1x.
func BenchmarkExpire10k(b *testing.B) {
	const n = 10_000
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				decided := sweep10k(b, n, replicas)
				floor := drainNoop(b, n, replicas)
				b.ReportMetric(decided.Seconds(), "decided_s")
				b.ReportMetric(floor.Seconds(), "floor_s")
				b.ReportMetric(decided.Seconds()/floor.Seconds(), "ratio")
			}
		})
	}
}

// sweep10k opens n approvals, makes them due and returns how long the runners take to decide them all.
func sweep10k(b *testing.B, n, replicas int) time.Duration {
	db := storetest.OpenPostgres(b)
	tn := storetest.NewTenant(b, db, "bench")
	ctx := tenant.WithID(context.Background(), tn.ID)
	clock := jobstest.NewClock(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	jdb := jobstest.Open(b, jobs.Postgres)
	var runners []*jobs.Runner
	var svc *approval.Service
	for range replicas {
		cfg := jdb.Config(b)
		cfg.Now = clock.Now
		r := jobstest.New(b, cfg)
		for _, kind := range approval.JobKinds {
			r.Register(kind, func(ctx context.Context, j *jobs.Job) error {
				err := svc.HandleJob(tenant.WithID(ctx, j.TenantID), j.Kind)
				var again *approval.ErrRunAgain
				if errors.As(err, &again) {
					return jobs.Snooze(again.After)
				}
				return err
			})
		}
		runners = append(runners, r)
	}
	log := newAuditLog(b, db, clock)
	svc = approval.New(approval.Config{Schedule: runners[0].Schedule, Now: clock.Now}, db, log)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if i%(int64(n)/3) == 0 {
					clock.Advance(time.Second)
				}
				_, err := svc.Open(ctx, approval.Request{SessionID: fmt.Sprintf("s-%d", i), Origin: "manual", Tool: "run_command",
					Command: fmt.Sprintf("systemctl restart app-%d", i), Input: json.RawMessage(`{}`), Level: guard.L2, Reason: "bench"})
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	clock.Advance(time.Hour) // every approval is due
	start := time.Now()
	b.StartTimer()
	runAll(b, runners)
	took := time.Since(start)
	b.StopTimer()
	if left, err := db.ApprovalList(ctx, "", approval.Pending, 10); err != nil || len(left) != 0 {
		b.Fatalf("%d approvals still pending: %v", len(left), err)
	}
	return took
}

// drainNoop returns how long the bare runners take to drain n no-op jobs due at once.
func drainNoop(b *testing.B, n, replicas int) time.Duration {
	jdb := jobstest.Open(b, jobs.Postgres)
	var runners []*jobs.Runner
	var done atomic.Int64
	for range replicas {
		r := jobstest.New(b, jdb.Config(b))
		r.Register("noop", func(context.Context, *jobs.Job) error { done.Add(1); return nil })
		runners = append(runners, r)
	}
	ctx := context.Background()
	for i := range n {
		if _, err := runners[0].Enqueue(ctx, jobs.Job{Kind: "noop", Args: []byte(`{}`), UniqueKey: fmt.Sprint("noop-", i)}); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	runAll(b, runners)
	took := time.Since(start)
	if done.Load() != int64(n) {
		b.Fatalf("ran %d of %d no-op jobs", done.Load(), n)
	}
	return took
}

// runAll runs every due job on the runners at once until none is due.
func runAll(b *testing.B, runners []*jobs.Runner) {
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.RunDue(context.Background()); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}
