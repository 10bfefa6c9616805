package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/bus/redisbus"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// newApproval writes a pending approval (and so its approval.requested event) in the tenant in ctx.
func newApproval(t testing.TB, db *store.DB, ctx context.Context) *approval.Approval {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := &approval.Approval{ID: uuid.NewString(), SessionID: uuid.NewString(), Command: "systemctl restart nginx", RiskLevel: 1,
		Tool: "run_command", ToolInput: json.RawMessage(`{}`), Status: approval.Pending, RequestedBy: "test",
		ExpiresAt: now.Add(time.Minute), CreatedAt: now}
	if err := db.ApprovalCreate(ctx, a); err != nil {
		t.Fatal(err)
	}
	return a
}

// failingBus is a bus whose Publish fails while down is set.
type failingBus struct {
	bus.Bus
	down bool
}

func (f *failingBus) Publish(ctx context.Context, stream string, data []byte) (string, error) {
	if f.down {
		return "", errors.New("bus down")
	}
	return f.Bus.Publish(ctx, stream, data)
}

func (f *failingBus) PublishBatch(ctx context.Context, msgs []bus.Outgoing) error {
	if f.down {
		return errors.New("bus down")
	}
	return f.Bus.PublishBatch(ctx, msgs)
}

// TestRelay: an approval's events are written with it and published in order, once the bus takes them;
// while the bus is down they wait in the outbox.
func TestRelay(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db := be.Open(t)
			tn := storetest.NewTenant(t, db, "relay")
			ctx := tenant.WithID(context.Background(), tn.ID)
			mem := bus.NewMemory(bus.Config{})
			t.Cleanup(func() { mem.Close() })
			b := &failingBus{Bus: mem, down: true}
			reg := prometheus.NewRegistry()
			later := time.Now().Add(90 * time.Second) // the relay's clock: a minute and a half after the writes
			r := outbox.NewRelay(outbox.RelayConfig{Batch: 2, Metrics: bus.NewMetrics(reg), Now: func() time.Time { return later }},
				db, b, func(context.Context) ([]string, error) { return []string{tn.ID}, nil })

			a := newApproval(t, db, ctx)
			if err := a.Decide(true, "user:1", "ok", time.Now().UTC()); err != nil {
				t.Fatal(err)
			}
			if err := db.ApprovalDecide(ctx, a); err != nil {
				t.Fatal(err)
			}
			a2 := newApproval(t, db, ctx)
			if n, err := r.RunOnce(ctx); err == nil || n != 0 {
				t.Fatalf("relay with the bus down: %d, %v", n, err)
			}
			if age := gauge(t, reg, "it0_bus_outbox_oldest_seconds"); age < 80 || age > 100 {
				t.Errorf("oldest waiting event with the bus down: %.1f s, want about 90", age)
			}
			b.down = false
			if n, err := r.RunOnce(ctx); err != nil || n != 3 {
				t.Fatalf("relay: %d, %v", n, err)
			}
			if age := gauge(t, reg, "it0_bus_outbox_oldest_seconds"); age != 0 {
				t.Errorf("oldest waiting event once all are published: %.1f s, want 0", age)
			}
			if n, sum := histogram(t, reg, "it0_bus_outbox_delay_seconds"); n != 3 || sum < 3*80 {
				t.Errorf("outbox delays: %d observed, %.1f s in all; want 3 of about 90 s", n, sum)
			}
			if n, err := r.RunOnce(ctx); err != nil || n != 0 {
				t.Fatalf("second relay published %d, %v", n, err)
			}
			got := make(chan outbox.Envelope, 10)
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go mem.Consume(cctx, bus.Consumer{Stream: outbox.StreamApprovals, Group: "test", Name: "t"}, func(_ context.Context, m bus.Message) error {
				var e outbox.Envelope
				if err := json.Unmarshal(m.Data, &e); err != nil {
					t.Error(err)
				}
				got <- e
				return nil
			})
			want := []struct{ typ, subject string }{{"approval.requested", a.ID}, {"approval.decided", a.ID}, {"approval.requested", a2.ID}}
			for i, w := range want {
				select {
				case e := <-got:
					if e.Type != w.typ || e.Subject != w.subject || e.TenantID != tn.ID {
						t.Errorf("event %d: %+v, want %s of %s", i, e, w.typ, w.subject)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("event %d never came", i)
				}
			}
		})
	}
}

// gauge reads the one gauge called name from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metric(t, reg, name).GetGauge().GetValue()
}

// histogram reads the count and sum of the one histogram called name from reg.
func histogram(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	h := metric(t, reg, name).GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0]
		}
	}
	t.Fatalf("no single %s in the registry", name)
	return nil
}

// TestRelayRedisRestart: Redis is killed while events are written. The relay keeps them in the outbox
// and publishes them once Redis is back; a consumer gets every event exactly once.
func TestRelayRedisRestart(t *testing.T) {
	t.Parallel()
	srv := bustest.StartRedis(t)
	rb, err := redisbus.New(srv.URL(), bus.Config{ClaimIdle: time.Second, Block: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rb.Close() })
	db := storetest.OpenSQLite(t)
	tn := storetest.NewTenant(t, db, "restart")
	ctx := tenant.WithID(context.Background(), tn.ID)
	r := outbox.NewRelay(outbox.RelayConfig{}, db, rb, func(context.Context) ([]string, error) { return []string{tn.ID}, nil })

	ids := map[string]int{}
	for range 5 {
		ids[newApproval(t, db, ctx).ID] = 0
	}
	if n, err := r.RunOnce(ctx); err != nil || n != 5 {
		t.Fatalf("relay: %d, %v", n, err)
	}
	srv.Kill()
	for range 5 {
		ids[newApproval(t, db, ctx).ID] = 0
	}
	if _, err := r.RunOnce(ctx); err == nil {
		t.Fatal("relay to a dead Redis reported no error")
	}
	srv.Start()
	if n, err := r.RunOnce(ctx); err != nil || n != 5 {
		t.Fatalf("relay after the restart: %d, %v", n, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan string, 20)
	go rb.Consume(cctx, bus.Consumer{Stream: outbox.StreamApprovals, Group: "g", Name: "c"}, func(_ context.Context, m bus.Message) error {
		var e outbox.Envelope
		json.Unmarshal(m.Data, &e)
		got <- e.Subject
		return nil
	})
	for range 10 {
		select {
		case id := <-got:
			ids[id]++
		case <-time.After(10 * time.Second):
			t.Fatalf("events handled: %v", ids)
		}
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("approval %s: %d events, want 1", id, n)
		}
	}
}

// TestOutboxWaiting: the relay's probe names exactly the tenants with rows waiting, and a tenant it cannot
// probe (so that the relay's visit reports why).
func TestOutboxWaiting(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db := be.Open(t)
			busy, idle := storetest.NewTenant(t, db, "busy"), storetest.NewTenant(t, db, "idle")
			newApproval(t, db, tenant.WithID(context.Background(), busy.ID))
			got, err := db.OutboxWaiting(context.Background(), []string{idle.ID, busy.ID, "not a tenant"})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			want := []string{busy.ID, "not a tenant"}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("waiting: %q, want the busy tenant and the bad id", got)
			}
		})
	}
}
