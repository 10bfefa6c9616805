package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
)

// cronArgs are the args of a chained cron job: which order, its schedule, and the occurrence this job is.
type cronArgs struct {
	Order  string    `json:"order"`
	Cron   string    `json:"cron"`
	TZ     string    `json:"tz"`
	Occurs time.Time `json:"occurs"`
}

// scheduleNext enqueues the occurrence of the order's schedule that follows after. The unique key names
// the occurrence, so enqueueing it twice (a retried run, a restart that "ensures" the schedule) is a no-op.
func scheduleNext(ctx context.Context, q jobs.Queue, tenantID string, a cronArgs, after time.Time) error {
	next, err := jobs.NextCron(a.Cron, a.TZ, after)
	if err != nil {
		return err
	}
	a.Occurs = next
	args, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = q.Enqueue(ctx, jobs.Job{
		Kind: "standing_order.cron", Args: args, RunAt: next, TenantID: tenantID,
		UniqueKey: "so-cron:" + a.Order + ":" + next.Format(time.RFC3339),
	})
	return err
}

// ExampleNextCron chains a cron job: each run enqueues the next occurrence before doing its work. A
// restart at 08:00:30 that ensures the schedule again does not double the next run.
func ExampleNextCron() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "jobs-example")
	defer os.RemoveAll(dir)
	db, _ := jobs.OpenSQLite(filepath.Join(dir, "jobs.db"))
	defer db.Close()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	clock := jobstest.NewClock(time.Date(2026, 11, 26, 7, 59, 0, 0, shanghai))
	r, err := jobs.New(ctx, jobs.Config{DB: db, Dialect: jobs.SQLite, Now: clock.Now})
	if err != nil {
		fmt.Println(err)
		return
	}
	r.Register("standing_order.cron", func(ctx context.Context, j *jobs.Job) error {
		var a cronArgs
		if err := json.Unmarshal(j.Args, &a); err != nil {
			return jobs.Permanent(err)
		}
		// Chain first: if the work below crashes the process, the next occurrence is already stored.
		if err := scheduleNext(ctx, r, j.TenantID, a, a.Occurs); err != nil {
			return err
		}
		fmt.Println("run", a.Order, "for", a.Occurs.In(shanghai).Format("2006-01-02 15:04 MST"))
		return nil
	})
	order := cronArgs{Order: "SO-20261126-001", Cron: "0 8 * * *", TZ: "Asia/Shanghai"}

	// When the order is saved (and on every start), ensure its next occurrence is scheduled.
	ensure := func() { _ = scheduleNext(ctx, r, "t1", order, clock.Now()) }
	ensure()
	n, _ := r.RunDue(ctx)
	fmt.Println("07:59 ran", n)

	clock.Set(time.Date(2026, 11, 26, 8, 0, 0, 0, shanghai))
	n, _ = r.RunDue(ctx)
	fmt.Println("08:00 ran", n)

	clock.Set(time.Date(2026, 11, 26, 8, 0, 30, 0, shanghai)) // restart
	ensure()
	n, _ = r.RunDue(ctx)
	fmt.Println("08:00:30 ran", n)

	clock.Set(time.Date(2026, 11, 27, 8, 0, 0, 0, shanghai))
	n, _ = r.RunDue(ctx)
	fmt.Println("next day ran", n)
	// Output:
	// 07:59 ran 0
	// run SO-20261126-001 for 2026-11-26 08:00 CST
	// 08:00 ran 1
	// 08:00:30 ran 0
	// run SO-20261126-001 for 2026-11-27 08:00 CST
	// next day ran 1
}
