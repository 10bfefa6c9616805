package checks

import (
	"strings"
	"testing"
	"time"
)

// TestCheckObserve walks the retries policy over sequences of results.
func TestCheckObserve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		retries int
		results string // u = up, d = down
		states  string // state after each result
		changes int
	}{
		{"FirstResultSetsStateAtOnce", 3, "d", "d", 1},
		{"FirstUpThenDownAfterRetries", 3, "uddd", "uuud", 2},
		{"OneAgreeingResultResetsTheCount", 3, "uddudddu", "uuuuuudd", 2},
		{"BackUpAfterRetries", 2, "udduu", "uuddu", 3},
		{"RetriesZeroMeansOne", 0, "udu", "udu", 3},
		{"RetriesOne", 1, "uudd", "uudd", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &Check{ID: "c1", State: Unknown, Retries: tc.retries}
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var got strings.Builder
			changes := 0
			for i, ch := range tc.results {
				st := Up
				if ch == 'd' {
					st = Down
				}
				tr := c.observe(&Result{Status: st, CheckedAt: at.Add(time.Duration(i) * time.Minute), Message: string(ch)})
				if tr != nil {
					changes++
					if tr.To != c.State || tr.From == tr.To {
						t.Errorf("result %d: transition %+v with state %s", i, tr, c.State)
					}
				}
				got.WriteByte(string(c.State)[0])
			}
			if got.String() != tc.states || changes != tc.changes {
				t.Errorf("states %s (%d changes), want %s (%d)", got.String(), changes, tc.states, tc.changes)
			}
		})
	}
}

// TestCheckSlots ensures slots sit on the check's phase, once per interval, and that phases spread.
func TestCheckSlots(t *testing.T) {
	t.Parallel()
	interval := time.Minute
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	phase := checkPhase("tenant/check-1", interval)
	s := slotAtOrAfter(base, interval, phase)
	if s.Before(base) || s.Sub(base) >= interval {
		t.Fatalf("slot %s not within an interval after %s", s, base)
	}
	if again := slotAtOrAfter(s, interval, phase); !again.Equal(s) {
		t.Errorf("a slot is its own next slot: %s vs %s", again, s)
	}
	if next := slotAtOrAfter(s.Add(time.Nanosecond), interval, phase); next.Sub(s) != interval {
		t.Errorf("next slot %s after %s", next, s)
	}
	// 600 checks over a minute: every 10-second bucket holds a fair share.
	buckets := make([]int, 6)
	for i := range 600 {
		p := checkPhase("tenant/check-"+strings.Repeat("x", i%7)+time.Duration(i).String(), interval)
		buckets[p/(10*time.Second)]++
	}
	for i, n := range buckets {
		if n < 60 || n > 140 {
			t.Errorf("bucket %d holds %d of 600 phases: not spread", i, n)
		}
	}
}
