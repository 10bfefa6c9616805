package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
)

// interruptEvery is how often a replica looks for sessions whose replica stopped mid-run. A replica
// counts as stopped replicaAliveFor after its last heartbeat, so a run cut off by a crash is marked
// interrupted within about replicaAliveFor + interruptEvery.
const interruptEvery = replicaBeatEvery

// withRunner wraps the agent module's init: the service names this replica on the sessions it runs, and
// asks the replica registry whether the replica named on another session is still alive.
func (a *App) withRunner(init InitFunc) InitFunc {
	return func(ctx context.Context) (func(context.Context) error, error) {
		stop, err := init(ctx)
		if err != nil {
			return stop, err
		}
		a.Agent.SetRunner(a.replicaID, a.replicaAlive)
		return stop, nil
	}
}

// replicaAlive reports whether replica id has sent a heartbeat recently. On SQLite there is one process
// per database, so any other runner is a previous incarnation of this one.
func (a *App) replicaAlive(ctx context.Context, id string) (bool, error) {
	if id == a.replicaID {
		return true, nil
	}
	if a.Store.Dialect() != store.Postgres {
		return false, nil
	}
	seen, err := a.Store.ReplicaSeen(ctx, id)
	if err != nil {
		return false, err
	}
	return !seen.IsZero() && time.Since(seen) < replicaAliveFor, nil
}

// interruptedRuns marks the sessions of tenant tid whose replica stopped mid-run interrupted, and ends the
// voice sessions whose stream such a replica carried.
func (a *App) interruptedRuns(ctx context.Context, tid string) error {
	tctx := audit.WithActor(tenant.WithID(ctx, tid), audit.Actor{Type: audit.ActorSystem, ID: "restart"})
	n, err := a.Agent.InterruptedRuns(tctx)
	if n > 0 {
		a.log.WarnContext(ctx, "marked interrupted sessions failed", slog.String("tenant_id", tid), slog.Int("sessions", n))
	}
	if a.Voice != nil {
		_, verr := a.Voice.InterruptedStreams(tctx)
		err = errors.Join(err, verr)
	}
	return err
}

// interruptLoop repeats interruptedRuns for every tenant until ctx ends: with several replicas, the
// sessions of one that crashed are taken over by whichever survivor looks first.
func (a *App) interruptLoop(ctx context.Context) {
	every(ctx, interruptEvery, time.Minute, func(rctx context.Context) {
		ids, err := a.tenantIDs(rctx)
		if err != nil {
			if ctx.Err() == nil {
				a.log.WarnContext(ctx, "interrupted sessions: list tenants", slog.String("error", err.Error()))
			}
			return
		}
		for _, id := range ids {
			if err := a.interruptedRuns(rctx, id); err != nil && ctx.Err() == nil {
				a.log.WarnContext(ctx, "interrupted sessions", slog.String("tenant_id", id), slog.String("error", err.Error()))
			}
		}
	})
}
