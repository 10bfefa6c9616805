package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/guard"
)

// invalidateTopic carries, to every replica, what one replica changed that the others cache: a tenant's
// risk-rule overrides, a tenant's status (suspension), a user (role, password, offboarding).
const invalidateTopic = "cache.invalidate"

// invalidation is one message on invalidateTopic.
type invalidation struct {
	Kind     string `json:"kind"` // "risk_rules" or "auth"
	TenantID string `json:"tenant_id"`
	UserID   string `json:"user_id,omitempty"` // auth: "" for the tenant's status
}

// broadcastInvalidation tells the other replicas to drop what inv names. A failed broadcast is logged:
// they then catch up when their entry expires (seconds for auth, 30 s for risk rules).
func (a *App) broadcastInvalidation(inv invalidation) {
	if a.cfg.RedisURL == "" || a.Bus == nil {
		return // no other replica to tell
	}
	b, _ := json.Marshal(inv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := (bus.Topics{Bus: a.Bus}).Broadcast(ctx, invalidateTopic, b); err != nil {
		a.log.Warn("broadcast a cache invalidation", slog.String("kind", inv.Kind), slog.String("tenant_id", inv.TenantID),
			slog.String("error", err.Error()))
	}
}

// sharedRiskRules is the tenant rules the agent's risk-rules API changes: forgetting a tenant's cached
// overrides forgets them on every replica, not only on the one that took the change.
type sharedRiskRules struct {
	*guard.TenantRules
	a *App
}

// riskRules returns the tenant rules with cross-replica forgetting.
func (a *App) riskRules() sharedRiskRules { return sharedRiskRules{TenantRules: a.Guard, a: a} }

// Forget forgets tenantID's overrides here and on the other replicas.
func (r sharedRiskRules) Forget(tenantID string) {
	r.TenantRules.Forget(tenantID)
	r.a.broadcastInvalidation(invalidation{Kind: "risk_rules", TenantID: tenantID})
}

// listenInvalidations makes this replica drop what the others say changed, and tells them what this one
// changes in auth, until the returned func is called.
func (a *App) listenInvalidations(ctx context.Context) (func(), error) {
	msgs, stop, err := (bus.Topics{Bus: a.Bus}).Listen(ctx, invalidateTopic)
	if err != nil {
		return nil, err
	}
	if a.Auth != nil {
		a.Auth.OnForget(func(tid, uid string) {
			// Not on the caller's goroutine: OnForget funcs must not block.
			go a.broadcastInvalidation(invalidation{Kind: "auth", TenantID: tid, UserID: uid})
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range msgs {
			var inv invalidation
			if err := json.Unmarshal(b, &inv); err != nil || inv.TenantID == "" {
				continue
			}
			switch inv.Kind {
			case "risk_rules":
				a.Guard.Forget(inv.TenantID)
			case "auth":
				if a.Auth != nil {
					a.Auth.Forget(inv.TenantID, inv.UserID)
				}
			}
		}
	}()
	return func() {
		if a.Auth != nil {
			a.Auth.OnForget(nil)
		}
		stop()
		<-done
	}, nil
}
