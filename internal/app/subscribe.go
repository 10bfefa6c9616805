package app

import (
	"context"
	"log/slog"
	"sync"

	"github.com/it0/it0/internal/ops/approval"
)

// Consumer groups of the modules that react to approval events. Each module is one group: every event is
// handled once per module, by whichever replica of it takes the event.
const (
	groupAgent   = "agent"
	groupComm    = "comm"
	groupMetrics = "metrics"
)

// subscribeApprovals makes h handle the approval events as a member of group until the returned func is
// called (or the bus closes). The in-process bus of the embedded default carries them the same way.
func (a *App) subscribeApprovals(ctx context.Context, group string, h approval.Handler) func(context.Context) error {
	// Detached from the start-up ctx on purpose: the subscription lives until the module is stopped.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := approval.Consume(cctx, a.Bus, group, a.replicaID, a.log, h); err != nil && cctx.Err() == nil {
			a.log.ErrorContext(cctx, "approval events subscription ended", slog.String("group", group), slog.String("error", err.Error()))
		}
	}()
	return func(context.Context) error {
		cancel()
		wg.Wait()
		return nil
	}
}

// notifyOutbox asks the outbox relay to publish at once (after a change wrote events).
func (a *App) notifyOutbox() {
	if a.Relay != nil {
		a.Relay.Notify()
	}
}
