package checks_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/monitor/checks"
	"github.com/it0/it0/internal/monitor/monitortest"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	benchChecks    = flag.Int("checks.n", 10000, "BenchmarkTCPChecks10kPerMinute: number of tcp checks")
	benchInterval  = flag.Duration("checks.interval", time.Minute, "BenchmarkTCPChecks10kPerMinute: interval of every check")
	benchWindow    = flag.Duration("checks.window", 20*time.Second, "BenchmarkTCPChecks10kPerMinute: measured window (1m for the full minute)")
	benchListeners = flag.Int("checks.listeners", 8, "BenchmarkTCPChecks10kPerMinute: loopback listeners the checks spread over")
	benchBackend   = flag.String("checks.store", "sqlite", "BenchmarkTCPChecks10kPerMinute: sqlite or postgres")
)

// listenerEnv makes the test binary a listener process for the benchmark (see TestCheckBenchListeners).
const listenerEnv = "IT0_CHECK_BENCH_LISTENERS"

// TestCheckBenchListeners is not a test of its own: BenchmarkTCPChecks10kPerMinute runs the test binary
// with IT0_CHECK_BENCH_LISTENERS=n to serve n loopback listeners in a separate process, so that the CPU
// the benchmark measures is the checker's alone. It accepts and closes connections until stdin closes.
func TestCheckBenchListeners(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(listenerEnv))
	if n == 0 {
		t.Skip("helper process of BenchmarkTCPChecks10kPerMinute")
	}
	for range n {
		fmt.Printf("LISTEN %s\n", monitortest.Listen(t, "127.0.0.21:0").Addr())
	}
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin)
}

// startListeners runs TestCheckBenchListeners in a child process and returns its addresses.
func startListeners(b *testing.B, n int) []string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckBenchListeners$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", listenerEnv, n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	var addrs []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if a, ok := strings.CutPrefix(line, "LISTEN "); ok {
			addrs = append(addrs, a)
		}
		if line == "READY" {
			break
		}
	}
	go io.Copy(io.Discard, out)
	if len(addrs) != n {
		b.Fatalf("listener process reported %d of %d listeners", len(addrs), n)
	}
	return addrs
}

// latenessRecorder is the real store, noting the lateness and status of every result it records.
type latenessRecorder struct {
	*store.DB
	mu       sync.Mutex
	from     time.Time // results checked before this are left out (warm-up)
	lateness []time.Duration
	down     int
}

func (l *latenessRecorder) CheckRecord(ctx context.Context, c *checks.Check, r *checks.Result, t *checks.Transition) error {
	err := l.DB.CheckRecord(ctx, c, r, t)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.from.IsZero() && !r.CheckedAt.Before(l.from) {
		l.lateness = append(l.lateness, time.Duration(r.LatenessMS)*time.Millisecond)
		if r.Status != checks.Up {
			l.down++
		}
	}
	return err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTCPChecks10kPerMinute runs 10,000 tcp checks a minute (by default) through the real scheduler,
// probes and store against loopback listeners in another process, on real time. It reports the process
// CPU used during the measured window as a percentage of one core (target < 50) and the p99 lateness of
// the checks that started in it (target < 1 s). Defaults measure 20 s after a 3 s warm-up; use
// -checks.window=1m for the full minute, -checks.n and -checks.interval to scale, -checks.store=postgres
// for PostgreSQL. Run with -benchtime=1x: one window is one measurement.
func BenchmarkTCPChecks10kPerMinute(b *testing.B) {
	open := storetest.OpenSQLite
	if *benchBackend == "postgres" {
		open = storetest.OpenPostgres
	}
	db := open(b)
	ten := storetest.NewTenant(b, db, "bench")
	ctx := tenant.WithID(context.Background(), ten.ID)
	addrs := startListeners(b, *benchListeners)
	rec := &latenessRecorder{DB: db}
	svc := checks.New(checks.Config{Registerer: prometheus.NewRegistry()}, rec, nil, nil, nopAudit{})
	now := time.Now().UTC().Truncate(time.Microsecond)
	interval := int(benchInterval.Seconds())
	for i := range *benchChecks {
		c := &checks.Check{ID: uuid.NewString(), Name: fmt.Sprintf("tcp-%05d", i), Type: checks.TypeTCP, Target: addrs[i%len(addrs)],
			IntervalSeconds: interval, TimeoutSeconds: 5, Retries: 2, Enabled: true, State: checks.Unknown, CreatedAt: now, UpdatedAt: now}
		if err := db.CheckCreate(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	sched := checks.NewScheduler(checks.SchedulerConfig{Registerer: prometheus.NewRegistry(),
		Tenants: func(context.Context) ([]string, error) { return []string{ten.ID}, nil }}, svc)

	for b.Loop() {
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); sched.Run(rctx) }()
		warmup := 3 * time.Second
		start := time.Now().Add(warmup)
		rec.mu.Lock()
		rec.from, rec.lateness, rec.down = start.UTC(), nil, 0
		rec.mu.Unlock()
		time.Sleep(warmup)
		cpu0 := cpuTime()
		t0 := time.Now()
		time.Sleep(*benchWindow)
		cpu := cpuTime() - cpu0
		elapsed := time.Since(t0)
		cancel()
		<-done

		rec.mu.Lock()
		lat := slices.Clone(rec.lateness)
		down := rec.down
		rec.mu.Unlock()
		if len(lat) == 0 {
			b.Fatal("no check ran in the window")
		}
		slices.Sort(lat)
		p99 := lat[min(len(lat)-1, len(lat)*99/100)]
		rate := float64(len(lat)) / elapsed.Minutes()
		want := float64(*benchChecks) / benchInterval.Minutes()
		b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "cpu-%-of-core")
		b.ReportMetric(float64(p99.Milliseconds()), "p99-lateness-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-lateness-ms")
		b.ReportMetric(rate, "checks/min")
		b.ReportMetric(float64(down), "down-results")
		b.Logf("%d checks every %s: %d runs in %s (%.0f/min, want %.0f), %d down; CPU %s = %.1f%% of one core; lateness p50 %s p99 %s max %s",
			*benchChecks, *benchInterval, len(lat), elapsed.Round(time.Millisecond), rate, want, down, cpu.Round(time.Millisecond),
			100*cpu.Seconds()/elapsed.Seconds(), lat[len(lat)/2], p99, lat[len(lat)-1])
		if rate < want*0.95 {
			b.Errorf("ran %.0f checks a minute, want %.0f", rate, want)
		}
	}
}

// nopAudit stands in for the audit log: the benchmark creates no checks through the service.
type nopAudit struct{}

func (nopAudit) Record(context.Context, audit.Record) (*audit.Entry, error) { return nil, nil }
