package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
)

// TestStats ensures the backlog is counted by kind: due and scheduled pending jobs, and the age of the
// oldest due one, on both backends.
func TestStats(t *testing.T) {
	t.Parallel()
	for _, be := range jobstest.Backends() {
		t.Run(string(be), func(t *testing.T) {
			t.Parallel()
			clock := jobstest.NewClock(time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC))
			cfg := jobstest.Open(t, be).Config(t)
			cfg.Now = clock.Now
			r := jobstest.New(t, cfg)
			r.Register("c", func(context.Context, *jobs.Job) error { return nil })
			ctx := context.Background()
			if st, err := r.Stats(ctx); err != nil || len(st) != 1 || st[0] != (jobs.KindStats{Kind: "c"}) {
				t.Fatalf("empty queue: %v %v, want kind c with zeros", st, err)
			}
			for _, j := range []struct {
				kind string
				at   time.Duration
			}{{"a", time.Minute}, {"a", 3 * time.Minute}, {"a", time.Hour}, {"b", 2 * time.Minute}} {
				if _, err := r.Enqueue(ctx, jobs.Job{Kind: j.kind, RunAt: clock.Now().Add(j.at)}); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(5 * time.Minute)
			st, err := r.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []jobs.KindStats{{Kind: "a", Due: 2, Scheduled: 1, OldestDue: 4 * time.Minute}, {Kind: "b", Due: 1, OldestDue: 3 * time.Minute}, {Kind: "c"}}
			if len(st) != len(want) {
				t.Fatalf("stats = %+v, want %+v", st, want)
			}
			for i := range want {
				if st[i] != want[i] {
					t.Errorf("stats[%d] = %+v, want %+v", i, st[i], want[i])
				}
			}
		})
	}
}
