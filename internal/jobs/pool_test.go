package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
)

// With one worker and a backlog, the runner's second claim takes two jobs: the first runs, the second
// waits for the worker. These tests act on the waiting one.

// backlogRunner returns a one-worker runner on a fake clock (and its config) and four due jobs of kind
// "step", enqueued in the order a, b, c, d; step is the handler of each run.
func backlogRunner(t *testing.T, backend jobs.Dialect, step func(ctx context.Context, r *jobs.Runner, j *jobs.Job, name string) error) (*jobs.Runner, jobs.Config, *jobstest.Clock, map[string]int64) {
	t.Helper()
	clock := jobstest.NewClock(t0)
	cfg := jobstest.Open(t, backend).Config(t)
	cfg.Now, cfg.Workers = clock.Now, 1
	r := jobstest.New(t, cfg)
	ids := map[string]int64{}
	names := map[int64]string{}
	var mu sync.Mutex
	r.Register("step", func(ctx context.Context, j *jobs.Job) error {
		mu.Lock()
		name := names[j.ID]
		mu.Unlock()
		return step(ctx, r, j, name)
	})
	mu.Lock()
	defer mu.Unlock()
	for i, name := range []string{"a", "b", "c", "d"} {
		id := mustEnqueue(t, r, jobs.Job{Kind: "step", RunAt: t0.Add(time.Duration(i-10) * time.Second)})
		ids[name], names[id] = id, name
	}
	return r, cfg, clock, ids
}

func TestCancelWaitingJob(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure a claimed job cancelled while it waits for a worker never runs.
		var ran []string
		var ids map[string]int64
		r, _, _, ids := backlogRunner(t, backend, func(ctx context.Context, r *jobs.Runner, j *jobs.Job, name string) error {
			ran = append(ran, name)
			if name == "b" {
				return r.Cancel(ctx, ids["c"]) // c was claimed with b and waits for b's worker
			}
			return nil
		})
		runDue(t, r, 3)
		if fmt.Sprint(ran) != "[a b d]" {
			t.Fatalf("ran %v, want [a b d]", ran)
		}
		wantState(t, r, ids["c"], jobs.Cancelled)
		wantState(t, r, ids["d"], jobs.Done)
	})
}

func TestWaitingJobGivenBack(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure a claimed job that waited long for a worker (here: b takes a minute) goes back to pending
		// without using an attempt instead of starting late in its lease, and then runs once, with a whole
		// handler timeout of lease left.
		attempts := map[string][]int{}
		var (
			clock *jobstest.Clock
			cfg   jobs.Config
		)
		leaseLeft := map[string]time.Duration{}
		r, cfg, clock, ids := backlogRunner(t, backend, func(ctx context.Context, r *jobs.Runner, j *jobs.Job, name string) error {
			attempts[name] = append(attempts[name], j.Attempt)
			if name == "b" {
				clock.Advance(time.Minute)
			}
			q := table(cfg, `SELECT locked_until FROM %s WHERE id = ?`)
			if backend == jobs.Postgres {
				q = table(cfg, `SELECT locked_until FROM %s WHERE id = $1`)
			}
			var until int64
			if err := cfg.DB.QueryRowContext(ctx, q, j.ID).Scan(&until); err != nil {
				return jobs.Permanent(err)
			}
			leaseLeft[name] = time.UnixMicro(until).Sub(clock.Now())
			return nil
		})
		runDue(t, r, 4)
		if fmt.Sprint(attempts) != "map[a:[1] b:[1] c:[1] d:[1]]" {
			t.Fatalf("attempts %v, want one first attempt each", attempts)
		}
		for name, left := range leaseLeft {
			if name != "b" && left < jobs.DefaultTimeout {
				t.Errorf("job %s started with %s of its lease left, less than the handler timeout", name, left)
			}
		}
		for _, id := range ids {
			wantState(t, r, id, jobs.Done)
		}
	})
}

func TestStopGivesBackWaitingJobs(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure Stop puts a claimed job that never started back to pending without using an attempt,
		// like the running job it interrupts, rather than leaving it leased.
		ctx := context.Background()
		started := make(chan struct{})
		r, _, _, ids := backlogRunner(t, backend, func(ctx context.Context, r *jobs.Runner, j *jobs.Job, name string) error {
			if name == "b" {
				close(started)
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, started, "b's handler")
		expired, cancel := context.WithCancel(ctx)
		cancel()
		if err := r.Stop(expired); !errors.Is(err, context.Canceled) {
			t.Fatalf("stop = %v, want context.Canceled", err)
		}
		wantState(t, r, ids["a"], jobs.Done)
		for _, name := range []string{"b", "c"} {
			if in := wantState(t, r, ids[name], jobs.Pending); in.Attempt != 0 {
				t.Errorf("job %s attempt = %d after Stop, want 0", name, in.Attempt)
			}
		}
	})
}
