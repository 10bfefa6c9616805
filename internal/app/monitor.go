package app

import (
	"context"
	"log/slog"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/httpapi"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/monitor/metrics"
	"github.com/it0/it0/internal/monitor/nodeexporter"
	"github.com/it0/it0/internal/monitor/promapi"
	"github.com/it0/it0/internal/tenant"
)

// Monitoring modules: Metrics is the service that collects server metrics and evaluates alert rules on
// them; Monitor is the design's monitor target, which runs the collectors and the health checks.
const (
	Metrics = "metrics"
	Monitor = "monitor"
)

// initMetrics builds metrics and alerting; the collector loop is the monitor target's work
// (initMonitorWork). Alerts reach event-triggered standing orders as domain events (alert.fired,
// alert.resolved on events.monitor, see ops.Orders.OnMonitorEvent); a rule's runbook is started through ops; every
// sample also feeds threshold-triggered standing orders.
func (a *App) initMetrics(ctx context.Context) (func(context.Context) error, error) {
	log := a.log.With(slog.String("component", "monitor"))
	a.Alerts = alerts.New(alerts.Config{Logger: a.log, Now: a.opts.Now,
		Remediator: alerts.NewRunbookRemediator(a.Ops, a.cfg.RemediationMaxRisk).WithServerNames(a.serverName),
		CheckRunbook: func(ctx context.Context, id string) error {
			_, err := a.Ops.Runbook(ctx, id)
			return err
		},
		// The alert's event waits in the outbox (alert.fired, alert.resolved): publish it at once.
		OnAlert: func(ctx context.Context, _ alerts.Event) { a.notifyOutbox(ctx) }}, a.Store, a.Audit)
	a.Metrics = metrics.New(metrics.Config{Logger: a.log, Now: a.opts.Now,
		Tenants: func(ctx context.Context) ([]string, error) {
			list, err := a.Auth.Tenants(ctx)
			ids := make([]string, 0, len(list))
			for _, t := range list {
				ids = append(ids, t.ID)
			}
			return ids, err
		},
		OnSamples: func(ctx context.Context, samples []monitor.Sample) {
			if _, err := a.Alerts.Evaluate(ctx, samples); err != nil {
				log.ErrorContext(ctx, "evaluate alert rules", slog.String("error", err.Error()))
			}
			// Threshold-triggered standing orders judge the samples in ops (monitor.samples, group ops).
			tid, err := tenant.ID(ctx)
			if err == nil {
				err = monitor.PublishSamples(ctx, a.Bus, tid, samples)
			}
			if err != nil {
				log.ErrorContext(ctx, "publish samples to threshold orders", slog.String("error", err.Error()))
			}
		}}, a.Store, a.Inventory, nodeexporter.New(nil), promapi.New(nil), a.Audit)
	a.Agent.AddTools(alerts.NewTools(a.Alerts))
	// Runs are counted where they end (the agent target).
	a.Agent.OnRunEnd(a.metrics.runEnded)
	return nil, nil
}

// monitoring is the API's view of the module (nil when it is not running here).
func (a *App) monitoring() *httpapi.MonitoringDeps {
	if a.Metrics == nil || a.Alerts == nil {
		return nil
	}
	return &httpapi.MonitoringDeps{Metrics: a.Metrics, Alerts: a.Alerts}
}

// serverName is the name of server id in the tenant in ctx.
func (a *App) serverName(ctx context.Context, id string) (string, error) {
	list, err := a.Inventory.Servers(ctx, inventory.Selector{ServerIDs: []string{id}})
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "", errs.New(errs.NotFound, "server %s not found", id)
	}
	return list[0].Name, nil
}
