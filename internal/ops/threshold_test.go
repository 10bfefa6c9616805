package ops

import (
	"testing"
	"time"

	"github.com/it0/it0/internal/monitor"
)

// TestThresholdState: 85% disk held for the duration fires once; a dip resets it; it fires again only
// after holding for a full duration once more; a late sample is ignored; a firing not yet recorded is due
// again (the trigger's key makes that a no-op).
func TestThresholdState(t *testing.T) {
	t.Parallel()
	c := ThresholdCondition{MetricType: "disk_usage", Operator: ">=", Value: 85, DurationSeconds: 300}
	var st ThresholdState
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	samples := []struct {
		at    time.Duration
		value float64
		fires bool
	}{
		{0, 86, false},
		{2 * time.Minute, 90, false},
		{4*time.Minute + 59*time.Second, 88, false},
		{5 * time.Minute, 87, true},                 // held for 5 minutes
		{6 * time.Minute, 97, false},                // fired already: once
		{5*time.Minute + 30*time.Second, 10, false}, // late: ignored, no reset
		{7 * time.Minute, 80, false},                // a dip resets
		{8 * time.Minute, 95, false},
		{12 * time.Minute, 95, false},
		{13 * time.Minute, 95, true}, // held again for 5 minutes since 8m
	}
	for _, s := range samples {
		got := st.Observe(c, s.value, t0.Add(s.at))
		if got != s.fires {
			t.Errorf("at +%s value %g: fired=%v, want %v", s.at, s.value, got, s.fires)
		}
		if got {
			st.Fired = st.Since // what the caller records once the run is triggered
		}
	}
	// Due but not recorded (a crash before the caller saved Fired): due again on the next sample.
	var fresh ThresholdState
	if fresh.Observe(c, 90, t0) || !fresh.Observe(c, 90, t0.Add(5*time.Minute)) || !fresh.Observe(c, 90, t0.Add(6*time.Minute)) {
		t.Errorf("an unrecorded firing is not due again: %+v", fresh)
	}
	for op, cases := range map[string][3]bool{">": {false, false, true}, "<": {true, false, false}, "!=": {true, false, true}} {
		for i, v := range []float64{84, 85, 86} {
			if monitor.Holds(v, op, 85) != cases[i] {
				t.Errorf("%g %s 85 = %v", v, op, !cases[i])
			}
		}
	}
}
