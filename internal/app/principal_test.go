package app

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestServicePrincipal: a tenant's service principal is created once, even when many system sessions ask
// at the same time, as an operator nobody can sign in as, and its creation is audited as the system's.
func TestServicePrincipal(t *testing.T) {
	t.Parallel()
	db := storetest.OpenSQLite(t)
	log, err := audit.New(db, bytes.Repeat([]byte{7}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := auth.New(auth.Config{JWTSecret: bytes.Repeat([]byte{9}, 32), Argon2: auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}}, db, log)
	if err != nil {
		t.Fatal(err)
	}
	tn := storetest.NewTenant(t, db, "principal")
	ctx := tenant.WithID(context.Background(), tn.ID)
	var wg sync.WaitGroup
	ids := make([]string, 4)
	for i := range ids {
		wg.Go(func() {
			id, err := servicePrincipal(ctx, svc)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] || id == "" {
			t.Fatalf("service principals: %v", ids)
		}
	}
	u, err := svc.User(ctx, ids[0])
	if err != nil || u.Role != auth.RoleOperator || !strings.HasSuffix(u.Email, ".invalid") || !strings.Contains(u.Name, "service principal") {
		t.Fatalf("principal: %+v %v", u, err)
	}
	if tok, err := svc.IssueToken(ctx, u.ID, 0); err != nil || tok == "" {
		t.Errorf("a token for the principal's sessions: %v", err)
	}
	entries, _ := log.List(ctx, audit.Filter{Limit: 100})
	created := 0
	for _, e := range entries {
		if e.ActionType == "user.created" {
			created++
			if e.ActorType != audit.ActorSystem || e.ActorID != "service-principal" {
				t.Errorf("creation audited as %s:%s", e.ActorType, e.ActorID)
			}
		}
	}
	if created != 1 {
		t.Errorf("created %d times", created)
	}
}
