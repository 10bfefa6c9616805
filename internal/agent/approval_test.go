package agent

import (
	"testing"
	"time"
)

// TestApprovalExpire: at its timeout an L1 confirmation is approved, anything riskier rejected, and an
// unattended run's approval (an escalation, beyond its boundary) is rejected whatever its level.
func TestApprovalExpire(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		level      int
		unattended bool
		want       string
	}{
		{1, false, ApprovalApproved},
		{2, false, ApprovalExpired},
		{1, true, ApprovalExpired},
		{0, true, ApprovalExpired},
	} {
		a := &Approval{ID: "a", Status: ApprovalPending, RiskLevel: tc.level, ExpiresAt: at}
		if a.Expire(at.Add(-time.Second), tc.unattended) {
			t.Errorf("L%d expired before its time", tc.level)
		}
		if !a.Expire(at, tc.unattended) || a.Status != tc.want || a.DecidedBy != decidedByTimeout {
			t.Errorf("L%d unattended=%v at its timeout: %s by %s, want %s", tc.level, tc.unattended, a.Status, a.DecidedBy, tc.want)
		}
		if a.Expire(at.Add(time.Hour), tc.unattended) {
			t.Errorf("L%d expired twice", tc.level)
		}
	}
}
