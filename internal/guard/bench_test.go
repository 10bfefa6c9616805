package guard_test

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkClassifyP99 classifies the corpus round-robin (ns/op is the mean
// over the corpus) and then times every corpus command on its own to report
// its latency distribution over the commands:
//
//   - p99-µs/cmd (the target is ≤ 20 µs) and p50-µs/cmd: the 99th and 50th
//     percentile over the corpus commands of each command's cost per
//     Classify call. A command's cost is the median over rounds of the time
//     a batch of calls of it takes; the rounds go through the whole corpus
//     in turn, so a burst of noise hits one round of many commands rather
//     than every round of a few. On Linux the time is the thread's CPU time
//     (CLOCK_THREAD_CPUTIME_ID), which waiting for a CPU on a shared
//     machine does not inflate; elsewhere it is wall time.
//   - p99-wall-µs/cmd: the same with wall time (on Linux; equal to
//     p99-µs/cmd elsewhere).
//   - p99-call-µs: the 99th percentile of single calls in the round-robin
//     loop, which also counts GC pauses and scheduler noise.
func BenchmarkClassifyP99(b *testing.B) {
	c := mustDefault(b)
	cases := loadCorpus(b)
	// Single calls, a bounded sample of them (every call would need memory
	// in proportion to b.N, which the loop would then measure too).
	const keep = 1 << 16
	calls := make([]time.Duration, 0, keep)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		start := time.Now()
		c.Classify(cases[i%len(cases)].command)
		if d := time.Since(start); len(calls) < keep {
			calls = append(calls, d)
		} else {
			calls[i%keep] = d
		}
		i++
	}
	b.StopTimer()
	cpu, wall := perCommand(cases, c.Classify)
	b.ReportMetric(p99(cpu), "p99-µs/cmd")
	b.ReportMetric(p50(cpu), "p50-µs/cmd")
	b.ReportMetric(p99(wall), "p99-wall-µs/cmd")
	b.ReportMetric(p99(calls), "p99-call-µs")
}

// perCommand returns each corpus command's cost per call (see
// BenchmarkClassifyP99): by thread CPU time when the platform has it (else
// wall time), and by wall time.
func perCommand[V any](cases []corpusCase, classify func(string) V) (cpu, wall []time.Duration) {
	const (
		rounds = 9
		batch  = 8
	)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, haveCPU := threadCPU()
	cpuRounds := make([][]time.Duration, len(cases))
	wallRounds := make([][]time.Duration, len(cases))
	for range rounds {
		for k, tc := range cases {
			c0, _ := threadCPU()
			w0 := time.Now()
			for range batch {
				classify(tc.command)
			}
			w := time.Since(w0)
			c1, _ := threadCPU()
			wallRounds[k] = append(wallRounds[k], w/batch)
			if haveCPU {
				cpuRounds[k] = append(cpuRounds[k], (c1-c0)/batch)
			}
		}
	}
	for k := range cases {
		wall = append(wall, median(wallRounds[k]))
		if haveCPU {
			cpu = append(cpu, median(cpuRounds[k]))
		}
	}
	if !haveCPU {
		cpu = wall
	}
	return cpu, wall
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

func p99(d []time.Duration) float64 { return percentile(d, 99) }

func p50(d []time.Duration) float64 { return percentile(d, 50) }

// percentile returns the p-th percentile of d in µs.
func percentile(d []time.Duration, p int) float64 {
	d = slices.Clone(d)
	slices.Sort(d)
	return float64(d[min(len(d)-1, len(d)*p/100)].Nanoseconds()) / 1e3
}
