package agent

import (
	"context"
	"fmt"
)

// EnsureApprovalTimeouts queues the timeout job of every pending approval of the tenant in ctx and returns
// how many approvals it checked. An approval is saved first and its timeout job queued after, in the job
// database: a crash (or a failed enqueue) in between would leave the approval pending for ever, and an
// unattended escalation never refused. This repair pass, run at startup and periodically like the standing
// orders' EnsureSchedules, closes that gap. The job's unique key makes it a no-op for approvals whose job
// is intact; an approval already overdue gets a job due now, which decides it at once.
func (s *Service) EnsureApprovalTimeouts(ctx context.Context) (int, error) {
	if s.cfg.Schedule == nil {
		return 0, nil
	}
	pending, err := s.store.ApprovalList(ctx, "", ApprovalPending, maxRepairedApprovals)
	if err != nil {
		return 0, fmt.Errorf("list pending approvals: %w", err)
	}
	for i := range pending {
		a := &pending[i]
		if err := s.cfg.Schedule(ctx, JobExpireApproval, map[string]string{"approval_id": a.ID}, a.ExpiresAt, "approval:"+a.ID); err != nil {
			return i, fmt.Errorf("schedule timeout of approval %s: %w", a.ID, err)
		}
	}
	return len(pending), nil
}

// maxRepairedApprovals bounds one repair pass; the next pass takes the rest (the list is newest first, and
// older approvals were checked by earlier passes).
const maxRepairedApprovals = 100_000
