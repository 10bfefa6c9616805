package jobs_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
)

// drainN is how many no-op jobs BenchmarkDrain drains per round.
const drainN = 10_000

// BenchmarkDrain measures the runner's own cost: 10,000 no-op jobs due at once, drained by RunDue (what
// tests and the approval benchmark's floor use) and by the Start loop (production), on both backends, with
// the default 16 workers. "jobs/s" is the drain rate; "floor_s" is the bare SQL of the simplest durable
// batching, measured on the same server in the same run: the 10,000 rows claimed and then marked done, 16
// rows (one per worker) per statement, each statement its own commit; "ratio" = drain time / floor_s. The
// runner writes outcomes with its next claim and claims ahead while draining, so it can beat this floor
// (ratio < 1); on PostgreSQL both are bound by commits (fsyncs) per second, so the ratio is what to compare
// across machines and loads. Run with -benchtime=1x.
func BenchmarkDrain(b *testing.B) {
	for _, backend := range jobstest.Backends() {
		for _, mode := range []string{"rundue", "start"} {
			b.Run(string(backend)+"/"+mode, func(b *testing.B) {
				var took, floor time.Duration
				for range b.N {
					b.StopTimer()
					took += drain(b, backend, mode)
					floor += drainFloor(b, backend)
				}
				b.ReportMetric(float64(drainN*b.N)/took.Seconds(), "jobs/s")
				b.ReportMetric(took.Seconds()/float64(b.N), "drain_s")
				b.ReportMetric(floor.Seconds()/float64(b.N), "floor_s")
				b.ReportMetric(took.Seconds()/floor.Seconds(), "ratio")
			})
		}
	}
}

// drain enqueues drainN due no-op jobs on a fresh database and returns how long the runner takes to run
// them all and record them done.
func drain(b *testing.B, backend jobs.Dialect, mode string) time.Duration {
	ctx := context.Background()
	cfg := jobstest.Open(b, backend).Config(b)
	r := jobstest.New(b, cfg)
	var count atomic.Int64
	all := make(chan struct{})
	r.Register("noop", func(context.Context, *jobs.Job) error {
		if count.Add(1) == drainN {
			close(all)
		}
		return nil
	})
	enqueueNoops(b, r)
	start := time.Now()
	switch mode {
	case "rundue":
		n, err := r.RunDue(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n != drainN {
			b.Fatalf("RunDue ran %d jobs, want %d", n, drainN)
		}
	case "start":
		if err := r.Start(ctx); err != nil {
			b.Fatal(err)
		}
		select {
		case <-all:
		case <-time.After(5 * time.Minute):
			b.Fatalf("only %d of %d jobs ran within 5 min", count.Load(), drainN)
		}
		// Stop returns once every outcome is recorded.
		if err := r.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(start)
	var left int
	if err := cfg.DB.QueryRowContext(ctx, table(cfg, `SELECT COUNT(*) FROM %s WHERE state <> 'done'`)).Scan(&left); err != nil {
		b.Fatal(err)
	}
	if left != 0 || count.Load() != drainN {
		b.Fatalf("ran %d of %d jobs; %d rows not done", count.Load(), drainN, left)
	}
	return took
}

// enqueueNoops enqueues drainN due no-op jobs on r.
func enqueueNoops(b *testing.B, r *jobs.Runner) {
	ctx := context.Background()
	due := time.Now().Add(-time.Second)
	for i := range drainN {
		if _, err := r.Enqueue(ctx, jobs.Job{Kind: "noop", Args: []byte(`{}`), RunAt: due, UniqueKey: fmt.Sprint("noop-", i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// drainFloor returns how long bare SQL takes to claim drainN due rows and mark them done, 16 rows per
// autocommitted statement, on a fresh jobs table.
func drainFloor(b *testing.B, backend jobs.Dialect) time.Duration {
	ctx := context.Background()
	cfg := jobstest.Open(b, backend).Config(b)
	enqueueNoops(b, jobstest.New(b, cfg)) // never started: it only creates the table
	claim := table(cfg, `UPDATE %[1]s SET state = 'running', attempt = attempt + 1, locked_by = 'floor', locked_until = 1
		WHERE id IN (SELECT id FROM %[1]s WHERE state = 'pending' ORDER BY run_at, id LIMIT 16) RETURNING id`)
	if backend == jobs.Postgres {
		claim = table(cfg, `UPDATE %[1]s SET state = 'running', attempt = attempt + 1, locked_by = 'floor', locked_until = 1
		WHERE id IN (SELECT id FROM %[1]s WHERE state = 'pending' ORDER BY run_at, id LIMIT 16 FOR UPDATE SKIP LOCKED) RETURNING id`)
	}
	done := table(cfg, `UPDATE %[1]s SET state = 'done', finished_at = 1, locked_by = '' WHERE id IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) AND locked_by = 'floor'`)
	if backend == jobs.Postgres {
		done = table(cfg, `UPDATE %[1]s SET state = 'done', finished_at = 1, locked_by = '' WHERE id IN ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) AND locked_by = 'floor'`)
	}
	start := time.Now()
	for {
		rows, err := cfg.DB.QueryContext(ctx, claim)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]any, 0, 16)
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
		if len(ids) == 0 {
			break
		}
		for len(ids) < 16 {
			ids = append(ids, int64(0))
		}
		if _, err := cfg.DB.ExecContext(ctx, done, ids...); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// table puts the jobs table's name (schema-qualified on PostgreSQL) into query's %s.
func table(cfg jobs.Config, query string) string {
	name := "jobs"
	if cfg.Dialect == jobs.Postgres {
		name = `"` + cfg.Schema + `".jobs`
	}
	return fmt.Sprintf(query, name)
}
