package approval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

var auditKey = []byte("0123456789abcdef0123456789abcdef")

// fixture is an approval service over a real store, on a fake clock.
type fixture struct {
	db    *store.DB
	log   *audit.Log
	svc   *approval.Service
	clock *jobstest.Clock
	ctx   context.Context
}

func setup(tb testing.TB, open func(testing.TB) *store.DB, cfg approval.Config) *fixture {
	tb.Helper()
	db := open(tb)
	tn := storetest.NewTenant(tb, db, "sweep")
	clock := jobstest.NewClock(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	cfg.Now = clock.Now
	log := newAuditLog(tb, db, clock)
	return &fixture{db: db, log: log, svc: approval.New(cfg, db, log), clock: clock, ctx: tenant.WithID(context.Background(), tn.ID)}
}

// open opens an approval of level for a session of origin.
func (f *fixture) open(tb testing.TB, level guard.Level, origin string) *approval.Approval {
	tb.Helper()
	a, err := f.svc.Open(f.ctx, approval.Request{SessionID: fmt.Sprintf("s-%d", time.Now().UnixNano()), Origin: origin, Tool: "run_command",
		Command: fmt.Sprintf("systemctl restart app-%d", time.Now().UnixNano()), Input: json.RawMessage(`{}`), Level: level, Reason: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// decidedEvents relays the outbox and returns the approval.decided events by approval id.
func (f *fixture) decidedEvents(tb testing.TB) map[string]approval.Event {
	tb.Helper()
	mem := bus.NewMemory(bus.Config{})
	defer mem.Close()
	tid, _ := tenant.ID(f.ctx)
	r := outbox.NewRelay(outbox.RelayConfig{}, f.db, mem, func(context.Context) ([]string, error) { return []string{tid}, nil })
	n, err := r.RunOnce(f.ctx)
	if err != nil {
		tb.Fatal(err)
	}
	got := map[string]approval.Event{}
	if n == 0 {
		return got
	}
	ctx, cancel := context.WithCancel(context.Background())
	seen := 0
	approval.Consume(ctx, mem, "test", "t", nil, func(_ context.Context, e approval.Event) error {
		if e.Type == approval.EventDecided {
			got[e.ApprovalID] = e
		}
		if seen++; seen == n {
			cancel()
		}
		return nil
	})
	cancel()
	return got
}

// TestSweep: the sweeper decides every approval due, in one go, by the timeout rule (L1 approved unless
// unattended, anything else expired), with an audit entry and an approval.decided event each; the audit
// chain stays intact; approvals not due, and approvals decided already, are left alone; a second sweep
// decides nothing.
func TestSweep(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, be.Open, approval.Config{L1Timeout: time.Minute, L2Timeout: time.Minute, UnattendedTimeout: time.Minute})
			l1 := f.open(t, guard.L1, "manual")
			l2 := f.open(t, guard.L2, "manual")
			l1u := f.open(t, guard.L1, approval.OriginStandingOrder)
			answered := f.open(t, guard.L1, "manual")
			if _, err := f.svc.Decide(withAdmin(f.ctx), answered.ID, approval.Decision{Approve: false, Reason: "no"}); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(30 * time.Second)
			later := f.open(t, guard.L2, "manual") // due 30 s after the others
			f.decidedEvents(t)                     // only what the sweep writes is looked at below

			f.clock.Advance(30 * time.Second)
			n, err := f.svc.Sweep(f.ctx)
			if err != nil || n != 3 {
				t.Fatalf("sweep: %d, %v", n, err)
			}
			want := map[string]string{l1.ID: approval.Approved, l2.ID: approval.Expired, l1u.ID: approval.Expired,
				answered.ID: approval.Rejected, later.ID: approval.Pending}
			for id, st := range want {
				a, err := f.svc.Get(f.ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if a.Status != st {
					t.Errorf("approval %s: %s, want %s", id, a.Status, st)
				}
				// The SQL rule and Approval.Expire agree.
				if st != approval.Pending && id != answered.ID {
					if a.DecidedBy != approval.DecidedByTimeout || a.DecidedAt == nil || !a.DecidedAt.Equal(f.clock.Now()) {
						t.Errorf("approval %s decided by %s at %v", id, a.DecidedBy, a.DecidedAt)
					}
					b := *a
					b.Status, b.DecidedBy, b.DecidedAt, b.DecisionReason = approval.Pending, "", nil, ""
					if !b.Expire(f.clock.Now()) || b.Status != a.Status || b.DecisionReason != a.DecisionReason {
						t.Errorf("approval %s: the sweeper decided %s (%s), Expire %s (%s)", id, a.Status, a.DecisionReason, b.Status, b.DecisionReason)
					}
				}
			}
			evs := f.decidedEvents(t)
			if len(evs) != 3 || evs[l1.ID].Status != approval.Approved || evs[l2.ID].Status != approval.Expired {
				t.Errorf("decided events: %+v", evs)
			}
			entries, err := f.log.List(f.ctx, audit.Filter{ActionType: "approval.timed_out", Limit: 100})
			if err != nil || len(entries) != 3 {
				t.Fatalf("audit entries: %d, %v", len(entries), err)
			}
			if entries[0].ActorID != "timeout" || entries[0].ActorType != audit.ActorSystem {
				t.Errorf("audit actor: %s %s", entries[0].ActorType, entries[0].ActorID)
			}
			// An entry appended the usual way after the batch continues the chain.
			if _, err := f.log.Record(f.ctx, audit.Record{Action: "test.after", ResourceType: "test"}); err != nil {
				t.Fatal(err)
			}
			if res, err := f.log.Verify(f.ctx); err != nil || !res.OK {
				t.Fatalf("audit chain after the sweep: %+v, %v", res, err)
			}
			if n, err := f.svc.Sweep(f.ctx); err != nil || n != 0 {
				t.Errorf("second sweep: %d, %v", n, err)
			}
		})
	}
}

// TestSweepBatches: a sweep larger than one transaction's batch goes on until nothing is due.
func TestSweepBatches(t *testing.T) {
	t.Parallel()
	f := setup(t, storetest.OpenSQLite, approval.Config{SweepBatch: 7})
	for range 20 {
		f.open(t, guard.L2, "manual")
	}
	f.clock.Advance(time.Hour)
	if n, err := f.svc.Sweep(f.ctx); err != nil || n != 20 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if res, err := f.log.Verify(f.ctx); err != nil || !res.OK {
		t.Fatalf("audit chain: %+v, %v", res, err)
	}
}

// TestSweepConcurrent: sweepers running at once on PostgreSQL (replicas, or a trigger and the tick) decide
// each approval exactly once, and the audit chain stays intact.
func TestSweepConcurrent(t *testing.T) {
	t.Parallel()
	f := setup(t, storetest.OpenPostgres, approval.Config{SweepBatch: 25})
	const n = 200
	for range n {
		f.open(t, guard.L2, "manual")
	}
	f.clock.Advance(time.Hour)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := f.svc.Sweep(f.ctx)
			if err != nil {
				t.Error(err)
			}
			counts[i] = c
		}()
	}
	wg.Wait()
	total := 0
	for _, c := range counts {
		total += c
	}
	if total != n {
		t.Fatalf("decided %d (%v), want %d", total, counts, n)
	}
	if evs := f.decidedEvents(t); len(evs) != n {
		t.Errorf("%d decided events, want %d", len(evs), n)
	}
	if res, err := f.log.Verify(f.ctx); err != nil || !res.OK {
		t.Fatalf("audit chain: %+v, %v", res, err)
	}
}

// withAdmin returns ctx with a tenant admin as the principal.
func withAdmin(ctx context.Context) context.Context {
	tid, _ := tenant.ID(ctx)
	return auth.WithPrincipal(ctx, auth.Principal{UserID: "admin-1", TenantID: tid, Role: auth.RoleAdmin})
}

func newAuditLog(tb testing.TB, db *store.DB, clock *jobstest.Clock) *audit.Log {
	tb.Helper()
	var now func() time.Time
	if clock != nil {
		now = clock.Now
	}
	log, err := audit.New(db, auditKey, now)
	if err != nil {
		tb.Fatal(err)
	}
	return log
}
