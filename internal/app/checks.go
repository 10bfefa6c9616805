package app

import (
	"context"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/monitor/checks"
)

// Checks is the module that defines and runs health checks.
const Checks = "checks"

// initChecks builds the health check service; its scheduler is the monitor target's work
// (checkScheduler). Every transition is stored with a check.transitioned event (events.monitor), which ops
// turns into check_failed for event-triggered standing orders (ops.Orders.OnMonitorEvent); here a transition only
// tells the outbox relay to publish at once.
func (a *App) initChecks(ctx context.Context) (func(context.Context) error, error) {
	a.Checks = checks.New(checks.Config{Logger: a.log, Now: a.opts.Now, Registerer: a.registry,
		OnTransition: func(ctx context.Context, _ checks.Check, _ checks.Transition) { a.notifyOutbox(ctx) }},
		a.Store, a.Inventory, a.Guard, a.Audit)
	return nil, nil
}

// checkScheduler is the scheduler that runs the health checks that are due.
func (a *App) checkScheduler() *checks.Scheduler {
	return checks.NewScheduler(checks.SchedulerConfig{Logger: a.log, Now: a.opts.Now, Registerer: a.registry,
		Concurrency: a.cfg.CheckConcurrency, ResultRetention: a.cfg.CheckResultRetention,
		Tenants: func(ctx context.Context) ([]string, error) {
			list, err := a.Auth.Tenants(ctx)
			ids := make([]string, 0, len(list))
			for _, t := range list {
				if t.Status == auth.TenantActive {
					ids = append(ids, t.ID)
				}
			}
			return ids, err
		}}, a.Checks)
}
