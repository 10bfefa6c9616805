// Command fanout benchmarks IT0's SSH fan-out: it runs a command (uptime)
// on N loopback sshd targets, once cold (new connections) and again over the
// pooled connections, and reports wall time, client CPU per host and peak
// RSS. run.sh runs it next to ../shared/bench/fanout-baseline.sh (OpenSSH,
// xargs, Ansible) and prints the ratios.
//
// Usage: go run ./bench/fanout -n 200 [-p 64] [-runs 3] [-cmd uptime]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/inventory/sshtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

// report is the JSON line run.sh parses.
type report struct {
	N              int     `json:"n"`
	Parallelism    int     `json:"parallelism"`
	Runs           int     `json:"runs"`
	ColdSeconds    float64 `json:"cold_s"`     // median over runs, fresh Executor each
	ColdMinSeconds float64 `json:"cold_min_s"` // fastest cold run
	WarmSeconds    float64 `json:"warm_s"`     // median over runs on the pooled Executor
	ColdCPUms      float64 `json:"cold_cpu_ms_per_host"`
	WarmCPUms      float64 `json:"warm_cpu_ms_per_host"`
	MaxRSSMB       float64 `json:"max_rss_mb"`
	Failures       int     `json:"failures"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 200, "number of targets")
	par := fs.Int("p", sshexec.DefaultParallelism, "fan-out parallelism")
	runs := fs.Int("runs", 3, "timed runs of each kind (cold, pooled)")
	cmd := fs.String("cmd", "uptime", "command to run on every target")
	addr := fs.String("addr", "127.0.0.1", "loopback address the sshd targets listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *runs < 1 {
		return errors.New("-n and -runs must be >= 1")
	}

	dir, err := os.MkdirTemp("", "it0-fanout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(stderr, "starting %d sshd targets...\n", *n)
	servers, stopServers, err := sshtest.LaunchMany(dir, *n, sshtest.Options{Addr: *addr, LogLevel: "INFO"})
	if err != nil {
		return err
	}
	defer stopServers()
	targets := make([]sshexec.Target, len(servers))
	for i, s := range servers {
		targets[i] = sshexec.Target{Hops: []sshexec.Hop{s.Hop()}}
	}
	command := sshexec.Command{Cmd: *cmd, Timeout: time.Minute}
	newExecutor := func() *sshexec.Executor {
		return sshexec.New(sshexec.Config{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}

	var failures atomic.Int64
	fanOut := func(e *sshexec.Executor) (wall, cpu time.Duration) {
		cpu0 := cpuTime()
		start := time.Now()
		e.FanOut(ctx, targets, command, *par, func(i int, r sshexec.Result, err error) {
			if err != nil || r.ExitCode != 0 {
				if failures.Add(1) <= 5 {
					fmt.Fprintf(stderr, "target %d: exit %d: %v\n", i, r.ExitCode, err)
				}
			}
		})
		return time.Since(start), cpuTime() - cpu0
	}

	// Warm-up: one untimed cold run so the first timed run does not pay
	// for page faults in sshd and the Go runtime.
	warmup := newExecutor()
	fanOut(warmup)
	warmup.Close()

	var cold, coldCPU, warm, warmCPU []time.Duration
	var pooled *sshexec.Executor
	for i := range *runs {
		if pooled != nil {
			pooled.Close()
		}
		pooled = newExecutor()
		w, c := fanOut(pooled)
		cold, coldCPU = append(cold, w), append(coldCPU, c)
		fmt.Fprintf(stderr, "cold run %d: %.3fs\n", i+1, w.Seconds())
	}
	for i := range *runs {
		w, c := fanOut(pooled)
		warm, warmCPU = append(warm, w), append(warmCPU, c)
		fmt.Fprintf(stderr, "pooled run %d: %.3fs\n", i+1, w.Seconds())
	}
	pooled.Close()
	if err := ctx.Err(); err != nil {
		return err
	}

	perHost := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(*n) }
	rep := report{
		N: *n, Parallelism: *par, Runs: *runs,
		ColdSeconds:    median(cold).Seconds(),
		ColdMinSeconds: slices.Min(cold).Seconds(),
		WarmSeconds:    median(warm).Seconds(),
		ColdCPUms:      perHost(median(coldCPU)),
		WarmCPUms:      perHost(median(warmCPU)),
		MaxRSSMB:       maxRSSMB(),
		Failures:       int(failures.Load()),
	}
	b, _ := json.Marshal(rep)
	fmt.Fprintln(stdout, string(b))
	if rep.Failures > 0 {
		return fmt.Errorf("%d target runs failed", rep.Failures)
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpuTime is this process's user+system CPU time (the sshd targets are
// separate processes and not counted).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxRSSMB is this process's peak resident set size.
func maxRSSMB() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}
