package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestSessionClaim ensures a session's status moves by compare-and-set on both backends: of many
// concurrent claims exactly one wins, a claim from a status the session is not in loses, an interruption
// names the runner it takes over from, and a context without a tenant is refused.
func TestSessionClaim(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db := be.Open(t)
			ten := storetest.NewTenant(t, db, "claims")
			ctx := tenant.WithID(context.Background(), ten.ID)
			now := time.Now().UTC().Truncate(time.Microsecond)
			s := &agent.Session{ID: uuid.NewString(), UserID: "u", Engine: "e", Status: agent.StatusFailed, Title: "t",
				ServerIDs: []string{}, AllowedTools: []string{}, CreatedAt: now, UpdatedAt: now}
			if err := db.SessionCreate(ctx, s); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SessionClaim(context.Background(), agent.ClaimParams{SessionID: s.ID, From: []string{agent.StatusFailed},
				To: agent.StatusRunning, Runner: "x", Now: now}); err == nil {
				t.Error("claim without a tenant: no error")
			}

			// Ensure two replicas resuming the same session at once: one wins.
			var wg sync.WaitGroup
			wins := make(chan string, 8)
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					runner := []string{"a", "b", "c", "d", "e", "f", "g", "h"}[i]
					ok, err := db.SessionClaim(ctx, agent.ClaimParams{SessionID: s.ID, From: []string{agent.StatusIdle, agent.StatusFailed},
						To: agent.StatusRunning, Runner: runner, Now: now.Add(time.Second)})
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins <- runner
					}
				}()
			}
			wg.Wait()
			close(wins)
			var won []string
			for r := range wins {
				won = append(won, r)
			}
			if len(won) != 1 {
				t.Fatalf("winners of concurrent claims: %v", won)
			}
			owners, err := db.SessionRunners(ctx)
			if err != nil || len(owners) != 1 || owners[0].SessionID != s.ID || owners[0].Runner != won[0] {
				t.Fatalf("runners: %+v %v", owners, err)
			}

			// Ensure an interruption names the runner: on the wrong one it does nothing.
			other := "not-" + won[0]
			for _, tc := range []struct {
				name   string
				runner string
				want   bool
			}{{"WrongRunner", other, false}, {"OK", won[0], true}, {"Again", won[0], false}} {
				ok, err := db.SessionClaim(ctx, agent.ClaimParams{SessionID: s.ID, From: []string{agent.StatusRunning}, FromRunner: &tc.runner,
					To: agent.StatusFailed, Error: "interrupted", Now: now.Add(2 * time.Second)})
				if err != nil || ok != tc.want {
					t.Fatalf("%s: interrupt = %v, %v; want %v", tc.name, ok, err, tc.want)
				}
			}
			got, err := db.SessionGet(ctx, s.ID)
			if err != nil || got.Status != agent.StatusFailed || got.Error != "interrupted" || !got.UpdatedAt.Equal(now.Add(2*time.Second)) {
				t.Fatalf("after the interruption: %+v %v", got, err)
			}
			if owners, err := db.SessionRunners(ctx); err != nil || len(owners) != 0 {
				t.Fatalf("runners after the interruption: %+v %v", owners, err)
			}
		})
	}
}
