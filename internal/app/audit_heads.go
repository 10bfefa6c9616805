package app

import (
	"context"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/it0/it0/internal/tenant"
)

// auditHeadLogInterval is how often every chain's anchored head is written to the log.
const auditHeadLogInterval = 5 * time.Minute

// logAuditHeads writes each audit chain's anchored head (seq and hash) to the log at start, every
// auditHeadLogInterval, and when stopped. Shipped off the host, these lines are the copy of the heads an
// attacker with the database cannot roll back: compare them with `it0 audit verify`.
func (a *App) logAuditHeads(ctx context.Context) func(context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		a.logAuditHeadsOnce(ctx)
		every(ctx, auditHeadLogInterval, auditHeadLogInterval, a.logAuditHeadsOnce)
	})
	return func(stop context.Context) error {
		cancel()
		wg.Wait()
		a.logAuditHeadsOnce(stop) // the last heads before the process goes
		return nil
	}
}

func (a *App) logAuditHeadsOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	chains := []string{tenant.Platform}
	ts, err := a.Store.TenantList(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("audit heads: list tenants", slog.String("error", err.Error()))
		}
		return
	}
	for _, t := range ts {
		chains = append(chains, t.ID)
	}
	for _, id := range chains {
		h, err := a.Store.AuditHead(tenant.WithID(ctx, id))
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("audit heads: read", slog.String("chain", id), slog.String("error", err.Error()))
			}
			continue
		}
		if h != nil {
			a.log.InfoContext(ctx, "audit head", slog.String("chain", id), slog.Int64("seq", h.Seq),
				slog.String("hash", hex.EncodeToString(h.Hash)))
		}
	}
}
