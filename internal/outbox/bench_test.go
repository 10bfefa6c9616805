package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/outbox"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// BenchmarkRelay measures outbox relay throughput on PostgreSQL (target ≥ 5,000 events/s on this
// machine): b.N events wait in one tenant's outbox and the relay publishes them all, to the in-process
// bus and to Redis. "floor" publishes the same payloads straight to the bus in the same batches, with no database, in the
// same run; ratio = relay time / floor time.
func BenchmarkRelay(b *testing.B) {
	payload := []byte(`{"type":"approval.requested","tenant_id":"00000000-0000-0000-0000-000000000000","subject":"00000000-0000-0000-0000-000000000000","time":"2026-12-07T00:00:00Z","data":{"session_id":"00000000-0000-0000-0000-000000000000","risk_level":1,"status":"pending"}}`)
	buses := map[string]func(b *testing.B) bus.Bus{
		"memory": func(b *testing.B) bus.Bus {
			m := bus.NewMemory(bus.Config{MaxLen: 10_000})
			b.Cleanup(func() { m.Close() })
			return m
		},
		"redis": func(b *testing.B) bus.Bus { return bustest.OpenRedis(b, bus.Config{MaxLen: 10_000}) },
	}
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			db := storetest.OpenPostgres(b)
			tn := storetest.NewTenant(b, db, "bench")
			ctx := tenant.WithID(context.Background(), tn.ID)
			bb := buses[name](b)
			r := outbox.NewRelay(outbox.RelayConfig{}, db, bb, func(context.Context) ([]string, error) { return []string{tn.ID}, nil })
			if err := db.OutboxFillForBench(ctx, "bench", payload, b.N); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			n, err := r.RunOnce(ctx)
			relay := time.Since(start)
			b.StopTimer()
			if err != nil || n != b.N {
				b.Fatalf("relayed %d of %d: %v", n, b.N, err)
			}
			start = time.Now()
			batch := make([]bus.Outgoing, 500)
			for i := range batch {
				batch[i] = bus.Outgoing{Stream: "floor", Data: payload}
			}
			for i := 0; i < b.N; i += len(batch) {
				if err := bb.PublishBatch(ctx, batch[:min(len(batch), b.N-i)]); err != nil {
					b.Fatal(err)
				}
			}
			floor := time.Since(start)
			b.ReportMetric(float64(b.N)/relay.Seconds(), "events/s")
			b.ReportMetric(relay.Seconds()/floor.Seconds(), "ratio")
		})
	}
}
