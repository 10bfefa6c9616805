// Package limittest is the contract suite every auth.LimitStore passes.
package limittest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/auth"
)

// Run runs the contract suite against the stores newStore returns (a fresh, empty one per call).
func Run(t *testing.T, newStore func(t *testing.T) auth.LimitStore) {
	ctx := context.Background()
	th := auth.Throttle{Free: 2, Base: time.Second, Max: 4 * time.Second, Forget: time.Hour}
	// Real time, truncated to the millisecond a store may keep: a shared store's keys expire on its clock.
	start := time.Now().Truncate(time.Millisecond)

	// Ensure the free failures cost nothing, then the delay doubles up to the cap, counted from the last
	// failure, and failures are forgotten Forget after the last one.
	t.Run("Throttle", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, want := range []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
			if got := mustWait(t, s, th, "k", start); got != want {
				t.Fatalf("wait %v, want %v", got, want)
			}
			if err := s.ThrottleFail(ctx, th, "k", start); err != nil {
				t.Fatal(err)
			}
		}
		if mustWait(t, s, th, "other", start) != 0 {
			t.Error("keys are not independent")
		}
		if got := mustWait(t, s, th, "k", start.Add(3*time.Second)); got != time.Second {
			t.Errorf("the delay counts from the last failure: %v", got)
		}
		if got := mustWait(t, s, th, "k", start.Add(time.Hour)); got != 0 {
			t.Errorf("failures are not forgotten: %v", got)
		}
		// A failure after the forget time starts the count over.
		if err := s.ThrottleFail(ctx, th, "k", start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := mustWait(t, s, th, "k", start.Add(time.Hour)); got != 0 {
			t.Errorf("one failure after the old ones were forgotten: wait %v", got)
		}
	})

	// Ensure a reset forgets the key's failures, and only that key's.
	t.Run("Reset", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for range 3 {
			for _, k := range []string{"a", "b"} {
				if err := s.ThrottleFail(ctx, th, k, start); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.ThrottleReset(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if got := mustWait(t, s, th, "a", start); got != 0 {
			t.Errorf("reset did not clear: %v", got)
		}
		if got := mustWait(t, s, th, "b", start); got != 2*time.Second {
			t.Errorf("reset of a cleared b: %v", got)
		}
	})

	// Ensure an earlier clock (another replica's) does not shorten the delay.
	t.Run("ClockSkew", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for range 3 {
			if err := s.ThrottleFail(ctx, th, "k", start); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ThrottleFail(ctx, th, "k", start.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := mustWait(t, s, th, "k", start); got != 4*time.Second {
			t.Errorf("wait after a failure stamped a second early: %v, want 4s from the latest failure", got)
		}
	})

	// Ensure concurrent failures are all counted (the store's update is atomic).
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		const n = 40
		th := auth.Throttle{Free: n, Base: time.Minute, Max: time.Hour, Forget: time.Hour}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n - 1 {
			wg.Go(func() { errs <- s.ThrottleFail(ctx, th, "k", start) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := mustWait(t, s, th, "k", start); got != 0 {
			t.Fatalf("after %d of %d free failures: wait %v", n-1, n, got)
		}
		if err := s.ThrottleFail(ctx, th, "k", start); err != nil {
			t.Fatal(err)
		}
		if got := mustWait(t, s, th, "k", start); got != time.Minute {
			t.Fatalf("after %d concurrent failures and one more: wait %v, want 1m (a failure was lost)", n-1, got)
		}
	})

	// Ensure a remembered key is known for its ttl, and no longer.
	t.Run("Known", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if err := s.Remember(ctx, "pair", time.Hour, start); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			key  string
			at   time.Time
			want bool
		}{{"pair", start, true}, {"pair", start.Add(59 * time.Minute), true}, {"pair", start.Add(time.Hour), false}, {"other", start, false}} {
			got, err := s.Known(ctx, tc.key, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Known(%q) at +%v = %v, want %v", tc.key, tc.at.Sub(start), got, tc.want)
			}
		}
	})
}

func mustWait(t *testing.T, s auth.LimitStore, th auth.Throttle, key string, now time.Time) time.Duration {
	t.Helper()
	d, err := s.ThrottleWait(context.Background(), th, key, now)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
