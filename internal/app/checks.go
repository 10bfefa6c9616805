package app

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/monitor/checks"
)

// Checks is the module that defines and runs health checks.
const Checks = "checks"

// initChecks builds the health check service; its scheduler is the monitor target's work
// (checkScheduler). Every transition to down is published to event-triggered standing orders as
// check_failed.
func (a *App) initChecks(ctx context.Context) (func(context.Context) error, error) {
	log := a.log.With(slog.String("component", "checks"))
	a.Checks = checks.New(checks.Config{Logger: a.log, Now: a.opts.Now, Registerer: a.registry,
		OnTransition: func(ctx context.Context, c checks.Check, t checks.Transition) {
			if t.To != checks.Down {
				return
			}
			data, _ := json.Marshal(map[string]any{"check_id": c.ID, "check": c.Name, "type": c.Type, "target": c.Target,
				"from": t.From, "to": t.To, "at": t.At, "results": t.Results, "message": t.Message})
			if _, err := a.Orders.HandleEvent(ctx, "check_failed", c.ServerID, data); err != nil {
				log.ErrorContext(ctx, "deliver check_failed to standing orders", slog.String("check_id", c.ID), slog.String("error", err.Error()))
			}
		}}, a.Store, a.Inventory, a.Guard, a.Audit)
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
