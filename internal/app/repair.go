package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/it0/it0/internal/tenant"
)

// repairInterval is how often the repair pass runs after startup.
const repairInterval = 5 * time.Minute

// repairApprovals queues the missing timeout job of every pending approval in every tenant
// (agent.Service.EnsureApprovalTimeouts): the job is queued after the approval is committed, in the job
// database, so a crash in between would leave the approval pending for ever. Each replica runs it; the
// jobs' unique keys make every pass after the first a no-op.
func (a *App) repairApprovals(ctx context.Context) error {
	tenants, err := a.Auth.Tenants(ctx)
	if err != nil {
		return err
	}
	var list []error
	for _, t := range tenants {
		if _, err := a.Agent.EnsureApprovalTimeouts(tenant.WithID(ctx, t.ID)); err != nil {
			list = append(list, err)
		}
	}
	return errors.Join(list...)
}

// repairLoop runs repairApprovals every repairInterval until ctx ends.
func (a *App) repairLoop(ctx context.Context) {
	every(ctx, repairInterval, time.Minute, func(rctx context.Context) {
		if err := a.repairApprovals(rctx); err != nil && ctx.Err() == nil {
			a.log.WarnContext(ctx, "repair approval timeouts", slog.String("error", err.Error()))
		}
	})
}
