package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/guard"
)

// riskRulesTopic carries the id of a tenant whose risk-rule overrides changed, to every replica.
const riskRulesTopic = "cache.risk_rules"

// sharedRiskRules is the tenant rules the agent's risk-rules API changes: forgetting a tenant's cached
// overrides forgets them on every replica, not only on the one that took the change (the others would use
// the old rules until their cache entry expires, up to 30 s).
type sharedRiskRules struct {
	*guard.TenantRules
	a *App
}

// riskRules returns the tenant rules with cross-replica forgetting.
func (a *App) riskRules() sharedRiskRules { return sharedRiskRules{TenantRules: a.Guard, a: a} }

// Forget forgets tenantID's overrides here and asks the other replicas to do the same. A failed broadcast
// is logged: the other replicas then catch up when their entry expires.
func (r sharedRiskRules) Forget(tenantID string) {
	r.TenantRules.Forget(tenantID)
	if r.a.cfg.RedisURL == "" || r.a.Bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := (bus.Topics{Bus: r.a.Bus}).Broadcast(ctx, riskRulesTopic, []byte(tenantID)); err != nil {
		r.a.log.Warn("broadcast the risk rules' change", slog.String("tenant_id", tenantID), slog.String("error", err.Error()))
	}
}

// listenInvalidations forgets what other replicas say changed, until the returned func is called.
func (a *App) listenInvalidations(ctx context.Context) (func(), error) {
	msgs, stop, err := (bus.Topics{Bus: a.Bus}).Listen(ctx, riskRulesTopic)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range msgs {
			a.Guard.Forget(string(b))
		}
	}()
	return func() { stop(); <-done }, nil
}
