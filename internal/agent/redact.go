package agent

import (
	"context"
	"fmt"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/ops/approval"
)

// revealKey marks a context whose command an admin approved (see revealContext).
type revealKey struct{}

// revealContext returns ctx marked so that execTool shows the output of a read of credential material:
// only when approval a was approved by a user who, as the store has it now, is active and may approve L2
// (an admin). An operator's confirmation runs the read, but its output stays redacted. The decider is
// read from the approval, not from ctx, so whichever resumes the session (the deciding request's
// background run or the durable resume job) reveals alike; any doubt keeps it redacted.
func (s *Service) revealContext(ctx context.Context, a *approval.Approval) context.Context {
	if a.Status != approval.Approved || a.DecidedBy == "" {
		return ctx
	}
	u, err := s.tenants.User(ctx, a.DecidedBy)
	if err != nil || u.Status != auth.UserActive || !(auth.Principal{Role: u.Role}).Can(auth.PermApprove) {
		return ctx
	}
	return context.WithValue(ctx, revealKey{}, true)
}

func revealed(ctx context.Context) bool {
	v, _ := ctx.Value(revealKey{}).(bool)
	return v
}

// redactSecret replaces the output of a read of credential material (guard.Verdict.Secret) in what the
// model and the session's events see.
func redactSecret(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("[redacted: %d bytes of credential material; only an admin's approval of this command shows them]\n", len(s))
}
