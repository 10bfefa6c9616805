package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/tenant"
)

// repairInterval is how often the repair pass runs after startup.
const repairInterval = 5 * time.Minute

// repairApprovals makes sure every tenant's periodic approval sweep is queued (approval.Service.EnsureTick:
// the sweep decides every overdue approval, whatever happened to its own trigger, queued in the job
// database after the approval's commit; the ops target's part), and resumes the paused sessions whose
// approvals are all decided (agent.Service.ResumeDecided: a decision whose event the in-process bus lost
// with the process; the agent target's part). Each replica runs its part; the tick's unique key and the
// resume's checks make every pass after the first a no-op.
func (a *App) repairApprovals(ctx context.Context) error {
	tenants, err := a.Auth.Tenants(ctx)
	if err != nil {
		return err
	}
	var list []error
	for _, t := range tenants {
		tctx := tenant.WithID(ctx, t.ID)
		if a.runs(Ops) {
			if err := a.Approvals.EnsureTick(tctx); err != nil {
				list = append(list, fmt.Errorf("tenant %s: queue the approval sweep: %w", t.ID, err))
			}
		}
		if a.runs(Agent) {
			if _, err := a.Agent.ResumeDecided(audit.WithActor(tctx, audit.Actor{Type: audit.ActorSystem, ID: "repair"})); err != nil {
				list = append(list, fmt.Errorf("tenant %s: resume decided sessions: %w", t.ID, err))
			}
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
