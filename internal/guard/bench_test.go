package guard_test

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkClassifyP99 classifies the corpus round-robin and reports, next to
// ns/op (the mean over the corpus), the 99th percentile over the corpus
// commands of each command's median latency (p99-µs/cmd; the target is
// ≤ 20 µs) and the 99th percentile of every single call (p99-call-µs, which
// also counts GC pauses and scheduler noise of a shared machine). On Linux it
// also reports p99-cpu-µs/cmd: the 99th percentile over the corpus of each
// command's CPU time per classification (thread CPU time over a batch), which
// waiting for a CPU on a loaded machine does not inflate.
func BenchmarkClassifyP99(b *testing.B) {
	c := mustDefault(b)
	cases := loadCorpus(b)
	per := make([][]time.Duration, len(cases))
	var all []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k := i % len(cases)
		start := time.Now()
		c.Classify(cases[k].command)
		d := time.Since(start)
		per[k] = append(per[k], d)
		all = append(all, d)
		i++
	}
	b.StopTimer()
	var medians []time.Duration
	for _, l := range per {
		if len(l) > 0 {
			slices.Sort(l)
			medians = append(medians, l[len(l)/2])
		}
	}
	b.ReportMetric(p99(medians), "p99-µs/cmd")
	b.ReportMetric(p99(all), "p99-call-µs")
	if cpu, ok := cpuPerCommand(cases, c.Classify); ok {
		b.ReportMetric(p99(cpu), "p99-cpu-µs/cmd")
	}
}

// cpuPerCommand measures each command's CPU time per call over a batch.
func cpuPerCommand[V any](cases []corpusCase, classify func(string) V) ([]time.Duration, bool) {
	const batch = 64
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := make([]time.Duration, 0, len(cases))
	for _, tc := range cases {
		start, ok := threadCPU()
		if !ok {
			return nil, false
		}
		for range batch {
			classify(tc.command)
		}
		end, _ := threadCPU()
		out = append(out, (end-start)/batch)
	}
	return out, true
}

func p99(d []time.Duration) float64 {
	slices.Sort(d)
	return float64(d[min(len(d)-1, len(d)*99/100)].Nanoseconds()) / 1e3
}
