package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/it0/it0/internal/jobs"
	"github.com/it0/it0/internal/jobs/jobstest"
)

// TestLag ensures the queue lag is the age of the oldest due pending job, and 0 when nothing is due.
func TestLag(t *testing.T) {
	t.Parallel()
	for _, be := range jobstest.Backends() {
		t.Run(string(be), func(t *testing.T) {
			t.Parallel()
			clock := jobstest.NewClock(time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC))
			cfg := jobstest.Open(t, be).Config(t)
			cfg.Now = clock.Now
			r := jobstest.New(t, cfg)
			ctx := context.Background()
			if lag, err := r.Lag(ctx); err != nil || lag != 0 {
				t.Fatalf("empty queue: %v %v", lag, err)
			}
			for _, at := range []time.Duration{time.Minute, 3 * time.Minute} {
				if _, err := r.Enqueue(ctx, jobs.Job{Kind: "lagged", RunAt: clock.Now().Add(at)}); err != nil {
					t.Fatal(err)
				}
			}
			if lag, _ := r.Lag(ctx); lag != 0 {
				t.Errorf("nothing due yet: lag %v", lag)
			}
			clock.Advance(5 * time.Minute)
			if lag, err := r.Lag(ctx); err != nil || lag != 4*time.Minute {
				t.Errorf("lag = %v %v, want 4m (the job due first)", lag, err)
			}
		})
	}
}
