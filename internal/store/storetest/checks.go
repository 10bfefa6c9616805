package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor/checks"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
)

// runChecks covers health checks: definitions, results, transitions, slot claims and pruning.
func runChecks(t *testing.T, open func(testing.TB) *store.DB) {
	t.Run("Checks", func(t *testing.T) {
		// Ensure the health check store keeps definitions, results and transitions apart per tenant.
		t.Parallel()
		db := open(t)
		a, b := NewTenant(t, db, "checks-a"), NewTenant(t, db, "checks-b")
		ctxA, ctxB := tenant.WithID(context.Background(), a.ID), tenant.WithID(context.Background(), b.ID)
		now := time.Now().UTC().Truncate(time.Microsecond)
		c := &checks.Check{ID: uuid.NewString(), Name: "web", Type: checks.TypeHTTP, Target: "http://127.0.0.1/health",
			IntervalSeconds: 30, TimeoutSeconds: 5, Retries: 3, Enabled: true, BodyContains: "ok", State: checks.Unknown,
			CreatedAt: now, UpdatedAt: now}
		if err := db.CheckCreate(ctxA, c); err != nil {
			t.Fatal(err)
		}
		// Ensure a second check with the same name is a validation error on name.
		dup := *c
		dup.ID = uuid.NewString()
		if err := db.CheckCreate(ctxA, &dup); !errs.Is(err, errs.Invalid) {
			t.Errorf("duplicate name: %v", err)
		}
		got, err := db.CheckGet(ctxA, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "web" || got.BodyContains != "ok" || got.State != checks.Unknown || got.LastCheckedAt != nil || !got.CreatedAt.Equal(now) {
			t.Errorf("round trip: %+v", got)
		}
		// Ensure another tenant sees nothing.
		if _, err := db.CheckGet(ctxB, c.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("tenant b reads tenant a's check: %v", err)
		}
		if list, _ := db.CheckList(ctxB); len(list) != 0 {
			t.Errorf("tenant b lists %d checks", len(list))
		}

		// Record a result and a transition; the state columns follow.
		at := now.Add(time.Second)
		days := 12
		c.State, c.StateChangedAt, c.LastCheckedAt, c.LastStatus, c.LastMessage = checks.Down, &at, &at, checks.Down, "HTTP 500"
		r := &checks.Result{Status: checks.Down, CheckedAt: at, DurationMS: 3, LatenessMS: 7, Message: "HTTP 500", StatusCode: 500, TLSDaysLeft: &days}
		tr := &checks.Transition{From: checks.Unknown, To: checks.Down, At: at, Results: 1, Message: "HTTP 500"}
		if err := db.CheckRecord(ctxA, c, r, tr); err != nil {
			t.Fatal(err)
		}
		if r.ID == 0 || tr.ID == 0 {
			t.Errorf("ids not set: result %d transition %d", r.ID, tr.ID)
		}
		r2 := &checks.Result{Status: checks.Down, CheckedAt: at.Add(30 * time.Second), Message: "HTTP 500", StatusCode: 500}
		if err := db.CheckRecord(ctxA, c, r2, nil); err != nil {
			t.Fatal(err)
		}
		got, _ = db.CheckGet(ctxA, c.ID)
		if got.State != checks.Down || got.StateChangedAt == nil || !got.StateChangedAt.Equal(at) || got.LastMessage != "HTTP 500" {
			t.Errorf("state after record: %+v", got)
		}
		res, err := db.CheckResultList(ctxA, c.ID, 10)
		if err != nil || len(res) != 2 {
			t.Fatalf("results: %v %d", err, len(res))
		}
		if res[0].ID != r2.ID || res[1].StatusCode != 500 || res[1].TLSDaysLeft == nil || *res[1].TLSDaysLeft != 12 || res[1].LatenessMS != 7 {
			t.Errorf("results: %+v", res)
		}
		trs, err := db.CheckTransitionList(ctxA, c.ID, 10)
		if err != nil || len(trs) != 1 || trs[0].From != checks.Unknown || trs[0].To != checks.Down || !trs[0].At.Equal(at) {
			t.Errorf("transitions: %v %+v", err, trs)
		}
		// Ensure a slot is claimed once, an earlier slot never, and a later one again.
		slot := at.Add(time.Minute)
		for i, tc := range []struct {
			slot time.Time
			want bool
		}{{slot, true}, {slot, false}, {slot.Add(-time.Minute), false}, {slot.Add(time.Minute), true}} {
			if got, err := db.CheckClaim(ctxA, c.ID, tc.slot); err != nil || got != tc.want {
				t.Errorf("claim %d: %v %v, want %v", i, got, err, tc.want)
			}
		}
		if got, err := db.CheckClaim(ctxB, c.ID, slot.Add(time.Hour)); err != nil || got {
			t.Errorf("tenant b claims tenant a's check: %v %v", got, err)
		}
		// Ensure an update keeps the state and a prune drops only old results.
		c.Name, c.UpdatedAt = "web-2", now.Add(time.Minute)
		c.State = checks.Up // the update must not write state
		if err := db.CheckUpdate(ctxA, c); err != nil {
			t.Fatal(err)
		}
		got, _ = db.CheckGet(ctxA, c.ID)
		if got.Name != "web-2" || got.State != checks.Down {
			t.Errorf("after update: name %s state %s", got.Name, got.State)
		}
		if n, err := db.CheckResultPrune(ctxA, at.Add(time.Second)); err != nil || n != 1 {
			t.Errorf("prune: %d %v", n, err)
		}
		if err := db.CheckDelete(ctxB, c.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("tenant b deletes: %v", err)
		}
		if err := db.CheckDelete(ctxA, c.ID); err != nil {
			t.Fatal(err)
		}
		if res, _ := db.CheckResultList(ctxA, c.ID, 10); len(res) != 0 {
			t.Errorf("results survive the check: %d", len(res))
		}
		// Ensure recording for a deleted check is not found.
		if err := db.CheckRecord(ctxA, c, &checks.Result{Status: checks.Up, CheckedAt: at}, nil); !errs.Is(err, errs.NotFound) {
			t.Errorf("record on deleted check: %v", err)
		}
	})
}
