package approval

import (
	"testing"
	"time"
)

// TestExpire: at its timeout an L1 confirmation is approved, anything riskier rejected, and an unattended
// run's approval (an escalation, beyond its boundary) is rejected whatever its level.
func TestExpire(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		level  int
		origin string
		want   string
	}{
		{"L1", 1, "", Approved},
		{"L2", 2, "", Expired},
		{"L1Unattended", 1, OriginStandingOrder, Expired},
		{"L0Unattended", 0, OriginStandingOrder, Expired},
		{"L1Runbook", 1, "runbook", Approved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Approval{ID: "a", Status: Pending, RiskLevel: tc.level, Origin: tc.origin, ExpiresAt: at}
			if a.Expire(at.Add(-time.Second)) {
				t.Errorf("expired before its time")
			}
			if !a.Expire(at) || a.Status != tc.want || a.DecidedBy != DecidedByTimeout {
				t.Errorf("at its timeout: %s by %s, want %s", a.Status, a.DecidedBy, tc.want)
			}
			if a.Expire(at.Add(time.Hour)) {
				t.Errorf("expired twice")
			}
		})
	}
}

// TestDecide: only a pending, unexpired approval can be decided, once.
func TestDecide(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	a := &Approval{ID: "a", Status: Pending, ExpiresAt: at}
	if err := a.Decide(true, "u", "ok", at); err == nil {
		t.Error("decided at its expiry")
	}
	if err := a.Decide(false, "u", "no", at.Add(-time.Second)); err != nil || a.Status != Rejected || a.DecidedBy != "u" {
		t.Fatalf("decide: %v, %+v", err, a)
	}
	if err := a.Decide(true, "v", "", at.Add(-time.Millisecond)); err == nil {
		t.Error("decided twice")
	}
}
