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

// TestBatchedOutcomes: jobs whose handlers return together have their outcomes written together, and each
// is recorded as its own run ended.
func TestBatchedOutcomes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		clock := jobstest.NewClock(t0)
		cfg := jobstest.Open(t, backend).Config(t)
		cfg.Now, cfg.Workers = clock.Now, 16
		cfg.Backoff = func(int) time.Duration { return time.Minute }
		r := jobstest.New(t, cfg)
		const n = 6
		var started sync.WaitGroup
		started.Add(n)
		// Every handler returns once all have started, so their outcomes queue at the same moment.
		handle := func(fn func(ctx context.Context, j *jobs.Job) error) jobs.Handler {
			return func(ctx context.Context, j *jobs.Job) error {
				started.Done()
				started.Wait()
				return fn(ctx, j)
			}
		}
		r.Register("ok", handle(func(context.Context, *jobs.Job) error { return nil }))
		r.Register("flaky", handle(func(context.Context, *jobs.Job) error { return errors.New("smtp down") }))
		r.Register("bad", handle(func(context.Context, *jobs.Job) error { return jobs.Permanent(errors.New("bad args")) }))
		r.Register("later", handle(func(context.Context, *jobs.Job) error { return jobs.Snooze(time.Hour) }))
		r.Register("self-cancel", handle(func(ctx context.Context, j *jobs.Job) error { return r.Cancel(ctx, j.ID) }))
		ok := mustEnqueue(t, r, jobs.Job{Kind: "ok", UniqueKey: "ok"})
		flaky := mustEnqueue(t, r, jobs.Job{Kind: "flaky", MaxAttempts: 2})
		lastTry := mustEnqueue(t, r, jobs.Job{Kind: "flaky", MaxAttempts: 1})
		bad := mustEnqueue(t, r, jobs.Job{Kind: "bad"})
		later := mustEnqueue(t, r, jobs.Job{Kind: "later", MaxAttempts: 1})
		cancelled := mustEnqueue(t, r, jobs.Job{Kind: "self-cancel"})
		runDue(t, r, n)

		if in := wantState(t, r, ok, jobs.Done); !in.FinishedAt.Equal(t0) || in.Attempt != 1 {
			t.Errorf("done job: %+v", in)
		}
		if in := wantState(t, r, flaky, jobs.Pending); !in.RunAt.Equal(t0.Add(time.Minute)) || in.Attempt != 1 || in.LastError != "smtp down" {
			t.Errorf("retried job: %+v", in)
		}
		if in := wantState(t, r, lastTry, jobs.Failed); in.LastError != "smtp down" || !in.FinishedAt.Equal(t0) {
			t.Errorf("job out of attempts: %+v", in)
		}
		if in := wantState(t, r, bad, jobs.Failed); in.LastError != "bad args" || in.Attempt != 1 {
			t.Errorf("permanently failed job: %+v", in)
		}
		if in := wantState(t, r, later, jobs.Pending); !in.RunAt.Equal(t0.Add(time.Hour)) || in.Attempt != 0 || in.LastError != "" {
			t.Errorf("snoozed job: %+v", in)
		}
		wantState(t, r, cancelled, jobs.Cancelled) // the handler's success does not overwrite its cancel

		// The unique key is free again once its job is recorded done.
		if again := mustEnqueue(t, r, jobs.Job{Kind: "ok", UniqueKey: "ok"}); again == ok {
			t.Errorf("unique key still held by done job %d", ok)
		}
	})
}

// TestCrashBeforeOutcomeCommitted: a process that dies after a handler returned but before its outcome was
// committed has not finished the job; the job runs again (at least once), after its lease on PostgreSQL,
// at the next start on SQLite, and is then done once.
func TestCrashBeforeOutcomeCommitted(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		ctx := context.Background()
		clock := jobstest.NewClock(t0)
		db := jobstest.Open(t, backend)
		cfg := db.Config(t)
		cfg.Now = clock.Now
		crashed := jobstest.New(t, cfg)
		// The handler's work is done; then the process loses its database before the outcome is written.
		crashed.Register("work", func(ctx context.Context, j *jobs.Job) error { return cfg.DB.Close() })
		id := mustEnqueue(t, crashed, jobs.Job{Kind: "work", UniqueKey: "work-1"})
		if _, err := crashed.RunDue(ctx); err == nil {
			t.Fatal("RunDue on a closed database succeeded")
		}

		cfg2 := db.Config(t)
		cfg2.Now = clock.Now
		next := jobstest.New(t, cfg2)
		var attempts []int
		next.Register("work", func(ctx context.Context, j *jobs.Job) error { attempts = append(attempts, j.Attempt); return nil })
		if in := mustGet(t, next, id); backend == jobs.Postgres && in.State != jobs.Running {
			t.Fatalf("after the crash the job is %s, want still running under the dead lease", in.State)
		}
		if backend == jobs.Postgres {
			runDue(t, next, 0) // still leased
			clock.Advance(jobs.DefaultTimeout + 30*time.Second)
		}
		runDue(t, next, 1)
		if fmt.Sprint(attempts) != "[2]" {
			t.Fatalf("attempts after the crash = %v, want [2]", attempts)
		}
		wantState(t, next, id, jobs.Done)
		runDue(t, next, 0)
	})
}

// TestOutcomeWrittenWithoutClaim: when no claim comes (every worker but one is busy), a finished job's
// outcome is still written promptly, under the Start loop and under RunDue; Stop and RunDue return only
// once every outcome is written.
func TestOutcomeWrittenWithoutClaim(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"start", "rundue"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
				ctx := context.Background()
				cfg := jobstest.Open(t, backend).Config(t)
				cfg.Workers = 8 // claims wait for 2 free workers: the quick job alone frees 1
				r := jobstest.New(t, cfg)
				var started sync.WaitGroup
				started.Add(7)
				release := make(chan struct{})
				releaseAll := sync.OnceFunc(func() { close(release) })
				t.Cleanup(releaseAll) // a failing test must not leave its handlers blocked
				r.Register("long", func(ctx context.Context, j *jobs.Job) error { started.Done(); <-release; return nil })
				r.Register("quick", func(ctx context.Context, j *jobs.Job) error { started.Wait(); return nil })
				var long []int64
				for range 7 {
					long = append(long, mustEnqueue(t, r, jobs.Job{Kind: "long"}))
				}
				quick := mustEnqueue(t, r, jobs.Job{Kind: "quick"})
				ran := make(chan error, 1)
				if mode == "start" {
					if err := r.Start(ctx); err != nil {
						t.Fatal(err)
					}
				} else {
					go func() { _, err := r.RunDue(ctx); ran <- err }()
				}
				waitState(t, r, quick, jobs.Done)
				for _, id := range long {
					wantState(t, r, id, jobs.Running)
				}
				releaseAll()
				if mode == "start" {
					if err := r.Stop(ctx); err != nil {
						t.Fatal(err)
					}
				} else if err := waitFor(t, ran, "RunDue"); err != nil {
					t.Fatal(err)
				}
				for _, id := range long {
					wantState(t, r, id, jobs.Done)
				}
			})
		})
	}
}

// waitState polls the job until it is in state want, failing the test after a generous timeout.
func waitState(t *testing.T, r *jobs.Runner, id int64, want jobs.State) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		in := mustGet(t, r, id)
		if in.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d is %s after 20 s, want %s", id, in.State, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
