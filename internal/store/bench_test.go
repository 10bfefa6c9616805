package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

var benchKey = bytes.Repeat([]byte{9}, 32)

// BenchmarkAuditAppend measures appends to one hash chain, each its own transaction, as the API does.
// Target: ≥ 5,000 appends/s on SQLite on a 2-core machine.
func BenchmarkAuditAppend(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			db := be.Open(b)
			tn := storetest.NewTenant(b, db, "bench")
			ctx := tenant.WithID(context.Background(), tn.ID)
			log, _ := audit.New(db, benchKey, nil)
			rec := audit.Record{Action: "command.executed", ResourceType: "server", ResourceID: "web-1",
				Description: "df -h", Detail: map[string]any{"exit_code": 0, "duration_ms": 12}}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if _, err := log.Record(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}

// BenchmarkAuditVerify measures `audit verify` over a chain of 1,000,000 rows (target < 10 s on SQLite).
// The chain is written once per backend with multi-row transactions, outside the timer.
func BenchmarkAuditVerify(b *testing.B) {
	const rows = 1_000_000
	for _, be := range storetest.Backends() {
		b.Run(fmt.Sprintf("%s/rows=%d", be.Name, rows), func(b *testing.B) {
			db := be.Open(b)
			tn := storetest.NewTenant(b, db, "verify")
			ctx := tenant.WithID(context.Background(), tn.ID)
			if err := db.AuditBulkLoadForBench(ctx, benchKey, rows); err != nil {
				b.Fatal(err)
			}
			log, _ := audit.New(db, benchKey, nil)
			b.ResetTimer()
			for b.Loop() {
				res, err := log.Verify(ctx)
				if err != nil || !res.OK || res.Checked != rows {
					b.Fatalf("verify: %+v %v", res, err)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

var _ = store.SQLite
