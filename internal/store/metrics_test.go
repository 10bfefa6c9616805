package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/metrics"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestMetricRetention ensures raw samples older than the raw retention are folded into 5-minute rollups
// (averages weighted by count, min and max kept), expired rollups are deleted, and queries read both.
func TestMetricRetention(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db := be.Open(t)
			ten := storetest.NewTenant(t, db, "metrics")
			ctx := tenant.WithID(context.Background(), ten.ID)
			now := time.Now().UTC().Truncate(time.Hour)
			db.Now = func() time.Time { return now } // "latest" is relative to the store's clock
			old := now.Add(-8 * 24 * time.Hour)      // beyond the 7-day raw retention
			var samples []monitor.Sample
			for i := range 10 { // 10 samples a minute apart: buckets [old, old+5m) and [old+5m, old+10m)
				samples = append(samples, monitor.Sample{ServerID: "s1", Metric: monitor.MetricCPU, Value: float64(i), At: old.Add(time.Duration(i) * time.Minute)})
			}
			samples = append(samples,
				monitor.Sample{ServerID: "s1", Metric: monitor.MetricDisk, Label: "/", Value: 50, At: old},
				monitor.Sample{ServerID: "s1", Metric: monitor.MetricCPU, Value: 42, At: now.Add(-time.Minute)},         // recent: stays raw
				monitor.Sample{ServerID: "s1", Metric: monitor.MetricCPU, Value: 7, At: now.Add(-100 * 24 * time.Hour)}) // beyond rollup retention
			if err := db.MetricInsert(ctx, samples); err != nil {
				t.Fatal(err)
			}
			p := metrics.MaintainParams{Now: now, RawRetention: 7 * 24 * time.Hour, RollupRetention: 90 * 24 * time.Hour,
				RollupStep: 5 * time.Minute, MonthsAhead: 2}
			res, err := db.MetricMaintain(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if res.RolledUp != 12 || res.RollupsWritten != 4 || res.RollupsDeleted != 1 {
				t.Errorf("maintain = %+v, want 12 folded into 4 rollups, 1 expired", res)
			}
			pts, err := db.MetricPoints(ctx, "s1", monitor.MetricCPU, "", now.Add(-30*24*time.Hour), now)
			if err != nil {
				t.Fatal(err)
			}
			if len(pts) != 3 {
				t.Fatalf("points = %+v, want two rollups and one raw sample", pts)
			}
			if pts[0].Count != 5 || pts[0].Avg != 2 || pts[0].Min != 0 || pts[0].Max != 4 || !pts[0].At.Equal(old) {
				t.Errorf("first rollup = %+v, want avg 2 of 5 (0..4) at %v", pts[0], old)
			}
			if pts[1].Avg != 7 || pts[2].Avg != 42 || pts[2].Count != 1 {
				t.Errorf("points = %+v", pts)
			}
			// A late sample for an old bucket merges into the rollup.
			if err := db.MetricInsert(ctx, []monitor.Sample{{ServerID: "s1", Metric: monitor.MetricCPU, Value: 12, At: old.Add(30 * time.Second)}}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.MetricMaintain(ctx, p); err != nil {
				t.Fatal(err)
			}
			pts, _ = db.MetricPoints(ctx, "s1", monitor.MetricCPU, "", old, old.Add(time.Minute))
			if len(pts) != 1 || pts[0].Count != 6 || pts[0].Avg != 22.0/6 || pts[0].Max != 12 {
				t.Errorf("merged rollup = %+v, want 6 samples averaging 22/6, max 12", pts)
			}
			latest, err := db.MetricLatest(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			if len(latest) != 1 || latest[0].Value != 42 {
				t.Errorf("latest = %+v, want the one recent cpu sample", latest)
			}
			if be.Name == "postgres" {
				parts, err := db.MetricPartitions(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					m := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, i, 0)
					want := "metric_snapshots_y" + m.Format("2006") + "m" + m.Format("01")
					if !slices.Contains(parts, want) {
						t.Errorf("partitions %v lack %s", parts, want)
					}
				}
				// A month beyond the created ones lands in the default partition, and is moved into its own
				// partition when maintenance reaches it.
				far := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 4, 3)
				if err := db.MetricInsert(ctx, []monitor.Sample{{ServerID: "s1", Metric: monitor.MetricCPU, Value: 1, At: far}}); err != nil {
					t.Fatal(err)
				}
				p.Now, p.MonthsAhead = far, 0
				p.RawRetention = 365 * 24 * time.Hour
				res, err := db.MetricMaintain(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.PartitionsCreated) != 1 {
					t.Errorf("created %v, want the far month's partition", res.PartitionsCreated)
				}
				pts, _ := db.MetricPoints(ctx, "s1", monitor.MetricCPU, "", far, far.Add(time.Second))
				if len(pts) != 1 {
					t.Errorf("the moved sample is gone: %+v", pts)
				}
			}
		})
	}
}
