package alerts_test

import (
	"fmt"
	"testing"

	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/store/storetest"
)

// BenchmarkAlertEvaluation measures one evaluation pass of 5 rules over the samples of 10,000 servers (a
// full collection round: 7 samples per server, two disk mounts), in steady state: 1% of the servers hold
// a condition that is pending, the rest are healthy. Report ns/op (one pass) and allocs/op.
func BenchmarkAlertEvaluation(b *testing.B) {
	a, bb := setupAlerts(b, storetest.OpenSQLite)
	const servers = 10000
	rules := []alerts.Rule{
		{Name: "cpu", Metric: monitor.MetricCPU, Severity: "critical", Condition: alerts.Condition{Operator: ">", Threshold: 90, DurationSeconds: 300}},
		{Name: "mem", Metric: monitor.MetricMemory, Severity: "warning", Condition: alerts.Condition{Operator: ">", Threshold: 95, DurationSeconds: 600}},
		{Name: "disk", Metric: monitor.MetricDisk, Severity: "critical", Condition: alerts.Condition{Operator: ">=", Threshold: 90, DurationSeconds: 0}},
		{Name: "load", Metric: monitor.MetricLoad1, Severity: "info", Condition: alerts.Condition{Operator: ">", Threshold: 16, DurationSeconds: 900}},
		{Name: "net", Metric: monitor.MetricNetworkIn, Severity: "warning", Condition: alerts.Condition{Operator: ">", Threshold: 1e9, DurationSeconds: 120}},
	}
	for i := range rules {
		rules[i].Active = true
		if err := a.CreateRule(bb.ctx, &rules[i]); err != nil {
			b.Fatal(err)
		}
	}
	at := bb.clock.Now()
	samples := make([]monitor.Sample, 0, servers*7)
	for i := range servers {
		id := fmt.Sprintf("srv-%05d", i)
		cpu := 40.0
		if i%100 == 0 {
			cpu = 95 // pending, never long enough within the benchmark's fixed clock
		}
		samples = append(samples,
			monitor.Sample{ServerID: id, Metric: monitor.MetricCPU, Value: cpu, At: at},
			monitor.Sample{ServerID: id, Metric: monitor.MetricMemory, Value: 60, At: at},
			monitor.Sample{ServerID: id, Metric: monitor.MetricDisk, Label: "/", Value: 50, At: at},
			monitor.Sample{ServerID: id, Metric: monitor.MetricDisk, Label: "/data", Value: 70, At: at},
			monitor.Sample{ServerID: id, Metric: monitor.MetricLoad1, Value: 1.5, At: at},
			monitor.Sample{ServerID: id, Metric: monitor.MetricLoad5, Value: 1.2, At: at},
			monitor.Sample{ServerID: id, Metric: monitor.MetricNetworkIn, Value: 1e6, At: at})
	}
	// Warm up: rules and states loaded, the pending states written.
	if _, err := a.Evaluate(bb.ctx, samples); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if ch, err := a.Evaluate(bb.ctx, samples); err != nil || len(ch) != 0 {
			b.Fatalf("steady pass changed %d alerts: %v", len(ch), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(servers*5), "ns/rule-server")
}
