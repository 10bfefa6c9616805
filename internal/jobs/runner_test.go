package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
)

// t0 is the fake clock's start in every test.
var t0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

type testBundle struct {
	clock *jobstest.Clock
	db    *jobstest.DB
	cfg   jobs.Config
	runs  *recorder
}

// recorder counts handler runs per job id.
type recorder struct {
	mu   sync.Mutex
	runs map[int64]int
	jobs []jobs.Job
}

func (rc *recorder) record(j *jobs.Job) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.runs == nil {
		rc.runs = map[int64]int{}
	}
	rc.runs[j.ID]++
	rc.jobs = append(rc.jobs, *j)
}

func (rc *recorder) count(id int64) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.runs[id]
}

func (rc *recorder) total() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.jobs)
}

// setup opens a fresh database on backend and a runner on it, with a fake clock at t0 and a handler for
// kind "ok" that records its runs.
func setup(t *testing.T, backend jobs.Dialect) (*jobs.Runner, *testBundle) {
	t.Helper()
	b := &testBundle{clock: jobstest.NewClock(t0), db: jobstest.Open(t, backend), runs: &recorder{}}
	b.cfg = b.db.Config(t)
	b.cfg.Now = b.clock.Now
	r := jobstest.New(t, b.cfg)
	r.Register("ok", func(ctx context.Context, j *jobs.Job) error { b.runs.record(j); return nil })
	return r, b
}

// forEachBackend runs fn as a parallel subtest on every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, backend jobs.Dialect)) {
	t.Helper()
	for _, backend := range jobstest.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			t.Parallel()
			fn(t, backend)
		})
	}
}

func mustEnqueue(t *testing.T, r *jobs.Runner, j jobs.Job) int64 {
	t.Helper()
	id, err := r.Enqueue(context.Background(), j)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return id
}

func runDue(t *testing.T, r *jobs.Runner, want int) {
	t.Helper()
	n, err := r.RunDue(context.Background())
	if err != nil {
		t.Fatalf("run due: %v", err)
	}
	if n != want {
		t.Fatalf("run due: ran %d jobs, want %d", n, want)
	}
}

func mustGet(t *testing.T, r *jobs.Runner, id int64) *jobs.Info {
	t.Helper()
	in, err := r.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get job %d: %v", id, err)
	}
	return in
}

func wantState(t *testing.T, r *jobs.Runner, id int64, want jobs.State) *jobs.Info {
	t.Helper()
	in := mustGet(t, r, id)
	if in.State != want {
		t.Fatalf("job %d state = %s, want %s (last error %q)", id, in.State, want, in.LastError)
	}
	return in
}

// waitFor waits on ch, failing the test after a generous timeout.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func TestDelayed(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure a delayed job runs at its time, not before, with its args and tenant.
		r, b := setup(t, backend)
		id := mustEnqueue(t, r, jobs.Job{Kind: "ok", Args: json.RawMessage(`{"approval":42}`), TenantID: "t1", RunAt: t0.Add(5 * time.Minute)})
		runDue(t, r, 0)
		b.clock.Set(t0.Add(5*time.Minute - time.Microsecond))
		runDue(t, r, 0)
		b.clock.Set(t0.Add(5 * time.Minute))
		runDue(t, r, 1)
		runDue(t, r, 0)
		got := b.runs.jobs[0]
		if got.ID != id || got.TenantID != "t1" || string(got.Args) != `{"approval":42}` || got.Attempt != 1 || !got.RunAt.Equal(t0.Add(5*time.Minute)) {
			t.Fatalf("handler got %+v", got)
		}
		in := wantState(t, r, id, jobs.Done)
		if !in.FinishedAt.Equal(t0.Add(5 * time.Minute)) {
			t.Fatalf("finished at %s", in.FinishedAt)
		}
	})
}

func TestImmediateRunsInOrder(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure a job without RunAt is due at once, and that due jobs are claimed oldest first (by run_at,
		// then by id). One worker claims one job at a time, so the handler sees the claim order.
		_, b := setup(t, backend)
		cfg := b.cfg
		cfg.Workers = 1
		r := jobstest.New(t, cfg)
		var order []int64
		r.Register("seq", func(ctx context.Context, j *jobs.Job) error { order = append(order, j.ID); return nil })
		now := mustEnqueue(t, r, jobs.Job{Kind: "seq"})
		early := mustEnqueue(t, r, jobs.Job{Kind: "seq", RunAt: t0.Add(-time.Hour)})
		middle := mustEnqueue(t, r, jobs.Job{Kind: "seq", RunAt: t0.Add(-30 * time.Minute)})
		sameAsNow := mustEnqueue(t, r, jobs.Job{Kind: "seq", RunAt: t0})
		later := mustEnqueue(t, r, jobs.Job{Kind: "seq", RunAt: t0.Add(time.Minute)})
		n, err := r.RunDue(context.Background())
		if err != nil || n != 4 {
			t.Fatalf("run due = %d, %v", n, err)
		}
		if want := []int64{early, middle, now, sameAsNow}; !slices.Equal(order, want) {
			t.Fatalf("ran %v, want %v (early, middle, now, then the same time by id)", order, want)
		}
		wantState(t, r, later, jobs.Pending)
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		ctx := context.Background()
		r, b := setup(t, backend)

		// Ensure a cancelled job never runs, and cancelling it again is a no-op.
		id := mustEnqueue(t, r, jobs.Job{Kind: "ok", RunAt: t0.Add(time.Minute)})
		if err := r.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := r.Cancel(ctx, id); err != nil {
			t.Fatalf("second cancel: %v", err)
		}
		b.clock.Advance(time.Hour)
		runDue(t, r, 0)
		wantState(t, r, id, jobs.Cancelled)

		// Ensure cancelling by unique key cancels the live job of that tenant only.
		a := mustEnqueue(t, r, jobs.Job{Kind: "ok", TenantID: "a", UniqueKey: "approval-timeout:7"})
		other := mustEnqueue(t, r, jobs.Job{Kind: "ok", TenantID: "b", UniqueKey: "approval-timeout:7"})
		if err := r.CancelKey(ctx, "a", "approval-timeout:7"); err != nil {
			t.Fatal(err)
		}
		if err := r.CancelKey(ctx, "a", "no-such-key"); err != nil {
			t.Fatalf("cancel missing key: %v", err)
		}
		runDue(t, r, 1)
		wantState(t, r, a, jobs.Cancelled)
		wantState(t, r, other, jobs.Done)

		// Ensure cancelling a finished job changes nothing, and an unknown id is ErrNotFound.
		if err := r.Cancel(ctx, other); err != nil {
			t.Fatal(err)
		}
		wantState(t, r, other, jobs.Done)
		if err := r.Cancel(ctx, 987654321); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("cancel unknown = %v, want ErrNotFound", err)
		}
		if _, err := r.Get(ctx, 987654321); !errors.Is(err, jobs.ErrNotFound) {
			t.Fatalf("get unknown = %v, want ErrNotFound", err)
		}
	})
}

func TestCancelRunning(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure Cancel on a running job cancels its handler's context and the job is not retried.
		r, _ := setup(t, backend)
		started := make(chan struct{})
		r.Register("block", func(ctx context.Context, j *jobs.Job) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})
		id := mustEnqueue(t, r, jobs.Job{Kind: "block"})
		done := make(chan error, 1)
		go func() { _, err := r.RunDue(context.Background()); done <- err }()
		waitFor(t, started, "handler start")
		if err := r.Cancel(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if err := waitFor(t, done, "RunDue"); err != nil {
			t.Fatal(err)
		}
		wantState(t, r, id, jobs.Cancelled)
		runDue(t, r, 0)
	})
}

func TestRetry(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		clock := jobstest.NewClock(t0)
		cfg := jobstest.Open(t, backend).Config(t)
		cfg.Now = clock.Now
		cfg.Backoff = func(attempt int) time.Duration { return time.Duration(attempt) * time.Minute }
		r := jobstest.New(t, cfg)
		var (
			mu       sync.Mutex
			attempts []int
		)
		r.Register("flaky", func(ctx context.Context, j *jobs.Job) error {
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, j.Attempt)
			if string(j.Args) == `"recover"` && j.Attempt == 2 {
				return nil
			}
			return fmt.Errorf("smtp down (attempt %d)", j.Attempt)
		})
		r.Register("permanent", func(ctx context.Context, j *jobs.Job) error {
			return jobs.Permanent(errors.New("bad args"))
		})
		r.Register("panics", func(ctx context.Context, j *jobs.Job) error { panic("boom") })

		// Ensure a failing job retries after the backoff, then gives up after MaxAttempts.
		id := mustEnqueue(t, r, jobs.Job{Kind: "flaky", MaxAttempts: 3})
		runDue(t, r, 1)
		in := wantState(t, r, id, jobs.Pending)
		if !in.RunAt.Equal(t0.Add(time.Minute)) || in.Attempt != 1 || in.LastError != "smtp down (attempt 1)" {
			t.Fatalf("after first failure: %+v", in)
		}
		clock.Advance(time.Minute - time.Second)
		runDue(t, r, 0)
		clock.Advance(time.Second)
		runDue(t, r, 1)
		clock.Advance(2*time.Minute - time.Second)
		runDue(t, r, 0)
		clock.Advance(time.Second)
		runDue(t, r, 1)
		in = wantState(t, r, id, jobs.Failed)
		if in.Attempt != 3 || in.LastError != "smtp down (attempt 3)" {
			t.Fatalf("after giving up: %+v", in)
		}
		clock.Advance(24 * time.Hour)
		runDue(t, r, 0)
		if fmt.Sprint(attempts) != "[1 2 3]" {
			t.Fatalf("attempts = %v", attempts)
		}

		// Ensure a job that succeeds on retry ends done.
		id = mustEnqueue(t, r, jobs.Job{Kind: "flaky", Args: json.RawMessage(`"recover"`), MaxAttempts: 3})
		runDue(t, r, 1)
		clock.Advance(time.Minute)
		runDue(t, r, 1)
		wantState(t, r, id, jobs.Done)

		// Ensure a Permanent error fails at once.
		id = mustEnqueue(t, r, jobs.Job{Kind: "permanent"})
		runDue(t, r, 1)
		if in := wantState(t, r, id, jobs.Failed); in.Attempt != 1 || in.MaxAttempts != jobs.DefaultMaxAttempts {
			t.Fatalf("permanent: %+v", in)
		}

		// Ensure a panicking handler is a failed attempt, not a crash.
		id = mustEnqueue(t, r, jobs.Job{Kind: "panics", MaxAttempts: 1})
		runDue(t, r, 1)
		if in := wantState(t, r, id, jobs.Failed); !strings.HasPrefix(in.LastError, "panic: boom") {
			t.Fatalf("panic: last error %q", in.LastError)
		}
	})
}

func TestUniqueKey(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure a unique key is enqueued once while pending, per tenant, and is free again once the job
		// has finished.
		r, b := setup(t, backend)
		j := jobs.Job{Kind: "ok", TenantID: "t1", UniqueKey: "escalation:9:step:2", RunAt: t0.Add(2 * time.Minute)}
		first := mustEnqueue(t, r, j)
		if again := mustEnqueue(t, r, j); again != first {
			t.Fatalf("duplicate enqueue returned %d, want %d", again, first)
		}
		j.TenantID = "t2"
		if other := mustEnqueue(t, r, j); other == first {
			t.Fatal("same key in another tenant was deduplicated")
		}
		j.TenantID = "t1"
		if plain := mustEnqueue(t, r, jobs.Job{Kind: "ok", TenantID: "t1"}); plain == first {
			t.Fatal("job without key was deduplicated")
		}
		runDue(t, r, 1) // the job without a key
		b.clock.Advance(2 * time.Minute)
		runDue(t, r, 2)
		if b.runs.count(first) != 1 {
			t.Fatalf("keyed job ran %d times", b.runs.count(first))
		}
		next := mustEnqueue(t, r, j)
		if next == first {
			t.Fatal("key still taken after the job finished")
		}
	})
}

func TestRestart(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		ctx := context.Background()
		clock := jobstest.NewClock(t0)
		db := jobstest.Open(t, backend)
		cfg := db.Config(t)
		cfg.Now = clock.Now
		before, err := jobs.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		later := mustEnqueue(t, before, jobs.Job{Kind: "ok", RunAt: t0.Add(10 * time.Minute)})
		overdue := mustEnqueue(t, before, jobs.Job{Kind: "ok", RunAt: t0.Add(time.Minute)})
		if err := before.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		cfg.DB.Close()

		// Ensure jobs enqueued before a restart run after it: the overdue one promptly on Start, the
		// later one at its time.
		clock.Set(t0.Add(5 * time.Minute))
		cfg = db.Config(t)
		cfg.Now = clock.Now
		cfg.PollInterval = 10 * time.Millisecond
		after := jobstest.New(t, cfg)
		ran := make(chan int64, 2)
		after.Register("ok", func(ctx context.Context, j *jobs.Job) error { ran <- j.ID; return nil })
		if err := after.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if got := waitFor(t, ran, "overdue job"); got != overdue {
			t.Fatalf("ran job %d first, want the overdue %d", got, overdue)
		}
		if err := after.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := after.RunDue(ctx); err != nil || n != 0 {
			t.Fatalf("run due before the later job's time = %d, %v", n, err)
		}
		clock.Set(t0.Add(10 * time.Minute))
		runDue(t, after, 1)
		if got := <-ran; got != later {
			t.Fatalf("ran job %d, want %d", got, later)
		}
	})
}

func TestInterruptedJobRescued(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure a job whose worker died mid-run (here: hangs, and its lease expires) runs again on
		// another runner, and the stale worker's late outcome changes nothing.
		ctx := context.Background()
		clock := jobstest.NewClock(t0)
		db := jobstest.Open(t, backend)
		cfgA, cfgB := db.Config(t), db.Config(t)
		cfgA.Now, cfgB.Now = clock.Now, clock.Now
		a, b := jobstest.New(t, cfgA), jobstest.New(t, cfgB)
		started, release := make(chan struct{}), make(chan struct{})
		a.Register("work", func(ctx context.Context, j *jobs.Job) error {
			close(started)
			<-release
			return errors.New("stale worker's outcome")
		})
		var attemptOnB int
		b.Register("work", func(ctx context.Context, j *jobs.Job) error { attemptOnB = j.Attempt; return nil })
		id := mustEnqueue(t, a, jobs.Job{Kind: "work"})
		done := make(chan error, 1)
		go func() { _, err := a.RunDue(ctx); done <- err }()
		waitFor(t, started, "first worker")

		runDue(t, b, 0) // leased to a
		clock.Advance(jobs.DefaultTimeout + 30*time.Second)
		runDue(t, b, 1)
		if attemptOnB != 2 {
			t.Fatalf("rescued run attempt = %d, want 2", attemptOnB)
		}
		close(release)
		if err := waitFor(t, done, "first worker's RunDue"); err != nil {
			t.Fatal(err)
		}
		wantState(t, b, id, jobs.Done)
	})
}

func TestSQLiteRestartRescuesAtOnce(t *testing.T) {
	t.Parallel()
	// Ensure that on SQLite, where one process owns the file, a job left running by a crash is pending
	// again as soon as the next runner opens, without waiting for its lease.
	ctx := context.Background()
	clock := jobstest.NewClock(t0)
	db := jobstest.Open(t, jobs.SQLite)
	cfg := db.Config(t)
	cfg.Now = clock.Now
	crashed := jobstest.New(t, cfg)
	started, release := make(chan struct{}), make(chan struct{})
	crashed.Register("work", func(ctx context.Context, j *jobs.Job) error { close(started); <-release; return nil })
	id := mustEnqueue(t, crashed, jobs.Job{Kind: "work"})
	done := make(chan error, 1)
	go func() { _, err := crashed.RunDue(ctx); done <- err }()
	waitFor(t, started, "handler")

	cfg2 := db.Config(t)
	cfg2.Now = clock.Now
	next := jobstest.New(t, cfg2)
	ran := 0
	next.Register("work", func(ctx context.Context, j *jobs.Job) error { ran++; return nil })
	runDue(t, next, 1)
	if ran != 1 {
		t.Fatalf("the next runner ran the rescued job %d times, want 1", ran)
	}
	close(release)
	waitFor(t, done, "crashed runner")
	wantState(t, next, id, jobs.Done)
	runDue(t, next, 0) // the crashed runner's late finish does not make it due again
	if ran != 1 {
		t.Errorf("the rescued job ran %d times, want 1", ran)
	}
}

func TestTwoRunnersRunEachJobOnce(t *testing.T) {
	t.Parallel()
	// Ensure that with several processes on one PostgreSQL database each job runs exactly once.
	ctx := context.Background()
	db := jobstest.Open(t, jobs.Postgres)
	clock := jobstest.NewClock(t0)
	rec := &recorder{}
	const n = 400
	var runners []*jobs.Runner
	for range 3 {
		cfg := db.Config(t)
		cfg.Now, cfg.Workers = clock.Now, 4
		r := jobstest.New(t, cfg)
		r.Register("count", func(ctx context.Context, j *jobs.Job) error { rec.record(j); return nil })
		runners = append(runners, r)
	}
	ids := map[int64]bool{}
	for i := range n {
		ids[mustEnqueue(t, runners[i%3], jobs.Job{Kind: "count", RunAt: t0.Add(time.Duration(i%5) * time.Second)})] = true
	}
	clock.Advance(time.Minute)
	var wg sync.WaitGroup
	counts := make([]int, len(runners))
	for i, r := range runners {
		wg.Go(func() {
			got, err := r.RunDue(ctx)
			if err != nil {
				t.Errorf("runner %d: %v", i, err)
			}
			counts[i] = got
		})
	}
	wg.Wait()
	if rec.total() != n {
		t.Fatalf("%d runs for %d jobs (per runner %v)", rec.total(), n, counts)
	}
	for id := range ids {
		if c := rec.count(id); c != 1 {
			t.Fatalf("job %d ran %d times", id, c)
		}
	}
	t.Logf("runs per runner: %v", counts)
}

func TestRunnerClaimsOnlyItsKinds(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure a runner leaves alone kinds it has no handler for (another module's process runs them).
		r, _ := setup(t, backend)
		id := mustEnqueue(t, r, jobs.Job{Kind: "report.daily"})
		runDue(t, r, 0)
		wantState(t, r, id, jobs.Pending)
	})
}

func TestStop(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		// Ensure Stop with an expired context interrupts running handlers and puts their jobs back to
		// pending without using an attempt.
		ctx := context.Background()
		r, _ := setup(t, backend)
		started := make(chan struct{})
		r.Register("long", func(ctx context.Context, j *jobs.Job) error { close(started); <-ctx.Done(); return ctx.Err() })
		id := mustEnqueue(t, r, jobs.Job{Kind: "long"})
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx); err == nil {
			t.Fatal("second Start succeeded")
		}
		waitFor(t, started, "handler")
		expired, cancel := context.WithCancel(ctx)
		cancel()
		if err := r.Stop(expired); !errors.Is(err, context.Canceled) {
			t.Fatalf("stop = %v, want context.Canceled", err)
		}
		if in := wantState(t, r, id, jobs.Pending); in.Attempt != 0 {
			t.Fatalf("interrupted job attempt = %d, want 0", in.Attempt)
		}
	})
}

func TestEnqueueInvalid(t *testing.T) {
	t.Parallel()
	r, _ := setup(t, jobs.SQLite)
	for _, tc := range []struct {
		name  string
		job   jobs.Job
		field string
	}{
		{"ErrKindRequired", jobs.Job{}, "kind"},
		{"ErrArgsNotJSON", jobs.Job{Kind: "ok", Args: json.RawMessage(`{nope`)}, "args"},
		{"ErrMaxAttemptsNegative", jobs.Job{Kind: "ok", MaxAttempts: -1}, "max_attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Enqueue(context.Background(), tc.job)
			var e *errs.Error
			if !errors.As(err, &e) || e.Code != errs.Invalid || e.Field != tc.field {
				t.Fatalf("enqueue = %v, want invalid %s", err, tc.field)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	db := jobstest.Open(t, jobs.SQLite).Config(t).DB
	for _, tc := range []struct {
		name string
		cfg  jobs.Config
		want string // substring of the error; empty for valid
	}{
		{"OK", jobs.Config{DB: db, Dialect: jobs.SQLite}, ""},
		{"ErrDBRequired", jobs.Config{Dialect: jobs.SQLite}, "DB is required"},
		{"ErrDialect", jobs.Config{DB: db, Dialect: "mysql"}, `dialect "mysql"`},
		{"ErrSchema", jobs.Config{DB: db, Dialect: jobs.Postgres, Schema: `x"; drop`}, "schema"},
		{"ErrNegative", jobs.Config{DB: db, Dialect: jobs.SQLite, Workers: -1}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDefaultBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{0, 10 * time.Second}, {1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second}, {9, 2560 * time.Second}, {10, time.Hour}, {50, time.Hour}} {
		if got := jobs.DefaultBackoff(tc.attempt); got != tc.want {
			t.Errorf("DefaultBackoff(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}

// TestSnooze: a handler that snoozes runs again once the jobs due before it have run, without using an
// attempt, and its job then finishes.
func TestSnooze(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend jobs.Dialect) {
		_, b := setup(t, backend)
		cfg := b.cfg
		cfg.Workers = 1 // one job at a time, so the order is the runner's
		r := jobstest.New(t, cfg)
		ctx := context.Background()
		var order []string
		r.Register("two-step", func(ctx context.Context, j *jobs.Job) error {
			if !slices.Contains(order, "first") {
				order = append(order, "first")
				return jobs.Snooze(0)
			}
			order = append(order, "second")
			return nil
		})
		r.Register("other", func(ctx context.Context, j *jobs.Job) error { order = append(order, "other"); return nil })
		step, err := r.Enqueue(ctx, jobs.Job{Kind: "two-step", RunAt: t0.Add(-2 * time.Second), MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Enqueue(ctx, jobs.Job{Kind: "other", RunAt: t0.Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if strings.Join(order, ",") != "first,other,second" {
			t.Fatalf("ran %v, want the snoozed job again after the other due job", order)
		}
		info, err := r.Get(ctx, step)
		if err != nil || info.State != jobs.Done || info.LastError != "" {
			t.Fatalf("snoozed job after its second run: %+v %v (one attempt allowed: a snooze must not use it)", info, err)
		}
	})
}
