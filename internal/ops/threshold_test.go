package ops

import (
	"testing"
	"time"

	"github.com/it0/it0/internal/monitor"
)

// TestThresholdTracker: 85% disk held for the duration fires once; a dip resets it; it fires again only
// after holding for a full duration once more.
func TestThresholdTracker(t *testing.T) {
	t.Parallel()
	c := ThresholdCondition{MetricType: "disk_usage", Operator: ">=", Value: 85, DurationSeconds: 300}
	tr := NewThresholdTracker()
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	samples := []struct {
		at    time.Duration
		value float64
		fires bool
	}{
		{0, 86, false},
		{2 * time.Minute, 90, false},
		{4*time.Minute + 59*time.Second, 88, false},
		{5 * time.Minute, 87, true},  // held for 5 minutes
		{6 * time.Minute, 97, false}, // fired already: once
		{7 * time.Minute, 80, false}, // a dip resets
		{8 * time.Minute, 95, false},
		{12 * time.Minute, 95, false},
		{13 * time.Minute, 95, true}, // held again for 5 minutes since 8m
	}
	for _, s := range samples {
		if got := tr.Observe("so/srv", c, s.value, t0.Add(s.at)); got != s.fires {
			t.Errorf("at +%s value %g: fired=%v, want %v", s.at, s.value, got, s.fires)
		}
	}
	if tr.Observe("other", c, 99, t0) {
		t.Error("keys are not independent")
	}
	for op, cases := range map[string][3]bool{">": {false, false, true}, "<": {true, false, false}, "!=": {true, false, true}} {
		for i, v := range []float64{84, 85, 86} {
			if monitor.Holds(v, op, 85) != cases[i] {
				t.Errorf("%g %s 85 = %v", v, op, !cases[i])
			}
		}
	}
}
