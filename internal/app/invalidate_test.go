package app

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/tenant"
)

// TestRiskRulesForgottenEverywhere ensures a change of a tenant's risk rules on one replica drops the
// cached rules on the others at once (through the shared bus), not when their cache entry expires.
func TestRiskRulesForgottenEverywhere(t *testing.T) {
	t.Parallel()
	base, err := guard.Default()
	if err != nil {
		t.Fatal(err)
	}
	rb := bustest.OpenRedis(t, bus.Config{})
	var loads [2]atomic.Int32
	replica := func(i int) *App {
		a := &App{cfg: Config{RedisURL: bustest.RedisURL()}, log: slog.New(slog.DiscardHandler), Bus: rb}
		// An hour-long TTL: only the invalidation can make the rules load again within the test.
		a.Guard = guard.NewTenantRules(base, func(context.Context) ([]byte, error) { loads[i].Add(1); return nil, nil }, time.Hour)
		stop, err := a.listenInvalidations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		return a
	}
	a, b := replica(0), replica(1)
	ctx := tenant.WithID(context.Background(), "t1")
	b.Guard.Classify(ctx, "ls")
	b.Guard.Classify(ctx, "ls")
	if n := loads[1].Load(); n != 1 {
		t.Fatalf("replica B loaded the rules %d times before the change, want 1 (cached)", n)
	}
	a.riskRules().Forget("t1")
	deadline := time.After(10 * time.Second)
	for loads[1].Load() < 2 {
		select {
		case <-deadline:
			t.Fatal("replica B still uses the rules cached before the change")
		case <-time.After(10 * time.Millisecond):
		}
		b.Guard.Classify(ctx, "ls")
	}
}
