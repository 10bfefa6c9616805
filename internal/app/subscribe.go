package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

// Consumer groups of the modules that react to domain events (approvals, run ends). Each module is one group: every event is
// handled once per module, by whichever replica of it takes the event.
const (
	groupAgent   = "agent"
	groupComm    = "comm"
	groupMetrics = "metrics"
	groupOps     = "ops"
	// groupReports sends the standing orders' run reports (ops owns them) from their
	// standing_order.executed events.
	groupReports = "reports"
)

// subscribeApprovals makes h handle the approval events as a member of group until the returned func is
// called (or the bus closes). The in-process bus of the embedded default carries them the same way.
func (a *App) subscribeApprovals(ctx context.Context, group string, h approval.Handler) func(context.Context) error {
	return a.subscribe(ctx, "approval", group, func(ctx context.Context) error {
		return approval.Consume(ctx, a.Bus, group, a.replicaID, a.log, h)
	})
}

// subscribeRuns makes h handle the agent.run_ended events as a member of group until the returned func
// is called (or the bus closes).
func (a *App) subscribeRuns(ctx context.Context, group string, h agentapi.RunHandler) func(context.Context) error {
	return a.subscribe(ctx, "run-ended", group, func(ctx context.Context) error {
		return agentapi.ConsumeRuns(ctx, a.Bus, group, a.replicaID, a.log, h)
	})
}

// subscribeMonitor makes h handle the monitor's events (check transitions, alerts) as a member of group
// until the returned func is called (or the bus closes).
func (a *App) subscribeMonitor(ctx context.Context, group string, h monitor.Handler) func(context.Context) error {
	return a.subscribe(ctx, "monitor", group, func(ctx context.Context) error {
		return monitor.Consume(ctx, a.Bus, group, a.replicaID, a.log, h)
	})
}

// subscribeExecuted makes h handle the standing_order.executed events as a member of group until the
// returned func is called (or the bus closes).
func (a *App) subscribeExecuted(ctx context.Context, group string, h func(context.Context, ops.Executed) error) func(context.Context) error {
	return a.subscribe(ctx, "standing-order-executed", group, func(ctx context.Context) error {
		return ops.ConsumeExecuted(ctx, a.Bus, group, a.replicaID, a.log, h)
	})
}

// subscribe runs consume (a subscription of group to the events of kind) in the background until the
// returned func is called.
func (a *App) subscribe(ctx context.Context, kind, group string, consume func(context.Context) error) func(context.Context) error {
	// Detached from the start-up ctx on purpose: the subscription lives until the module is stopped.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The bus closes only when the process stops, possibly before this subscription is told to.
		if err := consume(cctx); err != nil && cctx.Err() == nil && !errors.Is(err, bus.ErrClosed) {
			a.log.ErrorContext(cctx, "events subscription ended", slog.String("events", kind), slog.String("group", group),
				slog.String("error", err.Error()))
		}
	}()
	return func(context.Context) error {
		cancel()
		wg.Wait()
		return nil
	}
}

// notifyOutbox asks the outbox relay to publish the outbox of the tenant in ctx at once (after a change
// wrote events there).
func (a *App) notifyOutbox(ctx context.Context) {
	if a.Relay != nil {
		tid, _ := tenant.ID(ctx) // none: the relay's next poll finds the rows
		a.Relay.Notify(tid)
	}
}
