package jobs_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
)

// BenchmarkExpire measures the expiry path behind approval timeouts on SQLite: how fast jobs are enqueued,
// and, with 10,000 jobs due at the same instant and the runner's production loop running (real clock),
// the time from that instant to the last job done (target: under 5 s) and the p99 delay from due to
// handler start. Run with -benchtime=1x for one round of 10,000.
func BenchmarkExpire(b *testing.B) {
	ctx := context.Background()

	b.Run("enqueue", func(b *testing.B) {
		cfg := jobstest.Open(b, jobs.SQLite).Config(b)
		r := jobstest.New(b, cfg)
		far := time.Now().Add(time.Hour)
		b.ResetTimer()
		for b.Loop() {
			if _, err := r.Enqueue(ctx, jobs.Job{Kind: "approval.expire", Args: []byte(`{"approval_id":123}`), RunAt: far}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	})

	for _, workers := range []int{jobs.DefaultWorkers, 64} {
		b.Run(fmt.Sprintf("due_to_done_10k/workers=%d", workers), func(b *testing.B) { expire10k(b, workers) })
	}
}

// expire10k makes 10,000 jobs due at one instant and measures how long the runner takes to do them all.
func expire10k(b *testing.B, workers int) {
	ctx := context.Background()
	const n = 10_000
	var worst, worstP99 time.Duration
	for range b.N {
		b.StopTimer()
		cfg := jobstest.Open(b, jobs.SQLite).Config(b)
		cfg.Workers = workers
		r := jobstest.New(b, cfg)
		starts := make([]time.Time, n)
		var count atomic.Int64
		all := make(chan time.Time, 1)
		r.Register("approval.expire", func(ctx context.Context, j *jobs.Job) error {
			i := count.Add(1)
			starts[i-1] = time.Now()
			if i == n {
				all <- time.Now()
			}
			return nil
		})
		far := time.Now().Add(time.Hour)
		for range n {
			if _, err := r.Enqueue(ctx, jobs.Job{Kind: "approval.expire", Args: []byte(`{"approval_id":123}`), RunAt: far}); err != nil {
				b.Fatal(err)
			}
		}
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		// Make them all due at one instant, 1.5 s from now, while the loop is idle.
		due := time.Now().Add(1500 * time.Millisecond)
		if _, err := cfg.DB.ExecContext(ctx, `UPDATE jobs SET run_at = ?`, due.UnixMicro()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var last time.Time
		select {
		case last = <-all:
		case <-time.After(60 * time.Second):
			b.Fatalf("only %d of %d jobs ran within 60 s", count.Load(), n)
		}
		b.StopTimer()
		if err := r.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		delays := make([]time.Duration, n)
		for i, s := range starts {
			delays[i] = s.Sub(due)
		}
		slices.Sort(delays)
		worst = max(worst, last.Sub(due))
		worstP99 = max(worstP99, delays[n*99/100])
		if delays[0] < 0 {
			b.Fatalf("a job started %s before it was due", -delays[0])
		}
	}
	b.ReportMetric(worst.Seconds(), "s_due_to_all_done")
	b.ReportMetric(worstP99.Seconds(), "s_p99_start_delay")
	if worst > 5*time.Second {
		b.Errorf("10,000 jobs took %s from due to done, target 5 s", worst)
	}
}
