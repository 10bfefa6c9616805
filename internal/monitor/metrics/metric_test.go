package metrics_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/metrics"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// procFixture is /proc and df output as ProcCommand prints it (a 2-CPU VM).
const procFixture = `@@uptime
35021.51 66410.02
@@stat
cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0
cpu0 1393280 32966 572056 13180618 6402 0 10020 0 0 0
intr 1462898 0 0
ctxt 1990473
@@meminfo
MemTotal:        4194304 kB
MemFree:          524288 kB
MemAvailable:    1048576 kB
Buffers:          102400 kB
Cached:           819200 kB
@@loadavg
1.25 0.80 0.50 2/345 12345
@@netdev
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9999999   10000    0    0    0     0          0         0  9999999   10000    0    0    0     0       0          0
  eth0: 1000000    2000    0    0    0     0          0         0   500000    1500    0    0    0     0       0          0
@@df
Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/vda1         41152736 30000000   9039136      77% /
tmpfs              2017480        0   2017480       0% /dev/shm
/dev/vdb1        103081248 10308124  87530604      11% /srv/my data
`

// TestParseProc ensures the /proc and df sections turn into the documented metrics, with rates from the
// second reading over the host's own uptime.
func TestParseProc(t *testing.T) {
	t.Parallel()
	h, err := metrics.ParseProc(procFixture)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	got := map[string]float64{}
	for _, s := range metrics.HostSamples("s", nil, h, at, 0) {
		got[s.Metric+s.Label] = s.Value
	}
	want := map[string]float64{"memory_usage": 75, "load_1m": 1.25, "load_5m": 0.8, "load_15m": 0.5,
		"disk_usage/": 76.85, "disk_usage/srv/my data": 10.54}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all %v)", k, got[k], v, got)
		}
	}
	if _, ok := got["disk_usage/dev/shm"]; ok {
		t.Error("tmpfs counted")
	}
	next := strings.NewReplacer("35021.51 ", "35031.51 ", "cpu  10132153 290696 3084719 46828483", "cpu  10132253 290696 3084719 46828883",
		"eth0: 1000000", "eth0: 2000000", "  500000    1500", "  600000    1500").Replace(procFixture)
	h2, err := metrics.ParseProc(next)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range metrics.HostSamples("s", h, h2, at.Add(time.Minute), time.Minute) {
		got[s.Metric+s.Label] = s.Value
	}
	// 100 busy of 500 jiffies; 1 MB in and 100 kB out over 10 s of uptime (not the collector's minute).
	if got["cpu_usage"] != 20 || got["network_in"] != 100000 || got["network_out"] != 10000 {
		t.Errorf("cpu %v in %v out %v", got["cpu_usage"], got["network_in"], got["network_out"])
	}
	if _, err := metrics.ParseProc("bash: cat: command not found\n"); err == nil {
		t.Error("output without sections parsed")
	}
}

// TestParseLocalProc ensures the parser reads this machine's real /proc and df output.
func TestParseLocalProc(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("sh", "-c", metrics.ProcCommand()).Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("run %q: %v", metrics.ProcCommand(), err)
	}
	h, err := metrics.ParseProc(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if !h.HasCPU || !h.HasMem || !h.HasLoad || h.Clock <= 0 || len(h.Disks) == 0 {
		t.Errorf("local reading incomplete: %s clock=%v", h, h.Clock)
	}
}

// FuzzParseProc ensures no output panics the parser and percentages stay in range.
func FuzzParseProc(f *testing.F) {
	f.Add(procFixture)
	f.Add("@@df\n/dev/x 1 2 -3 x /\n@@stat\ncpu -1 -2 -3 -4\n")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := metrics.ParseProc(s)
		if err != nil {
			return
		}
		for _, d := range h.Disks {
			if d.Percent < 0 || d.Percent > 100.0001 {
				t.Fatalf("disk %q at %v%%", d.Mount, d.Percent)
			}
		}
		if h.HasMem && (h.MemAvailable > h.MemTotal || h.MemTotal <= 0) {
			t.Fatalf("memory %v of %v", h.MemAvailable, h.MemTotal)
		}
	})
}

// TestCollectDue ensures the collector collects a source when its interval has passed, not before, and
// hands every batch on.
func TestCollectDue(t *testing.T) {
	t.Parallel()
	b := setupMetrics(t, storetest.OpenSQLite)
	var got [][]monitor.Sample
	scraper := scraperFunc(func(ctx context.Context, url string) (*metrics.HostStats, error) {
		return &metrics.HostStats{HasLoad: true, Load: [3]float64{1, 2, 3}}, nil
	})
	m := metrics.New(metrics.Config{Now: b.clock.Now, OnSamples: func(ctx context.Context, s []monitor.Sample) { got = append(got, s) }},
		b.db, fleetWith("srv-1"), scraper, nil, b.log)
	src := &metrics.Source{Name: "n", Type: metrics.SourceNodeExporter, URL: "http://node:9100/metrics", ServerID: "srv-1", IntervalSeconds: 60, Enabled: true}
	if err := m.CreateSource(b.ctx, src); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		advance time.Duration
		want    int
	}{{0, 1}, {30 * time.Second, 0}, {30 * time.Second, 1}, {59 * time.Second, 0}} {
		b.clock.Advance(step.advance)
		n, err := m.CollectDue(b.ctx)
		if err != nil || n != step.want {
			t.Fatalf("after %v: collected %d (%v), want %d", step.advance, n, err, step.want)
		}
	}
	if len(got) != 2 || len(got[0]) != 3 || got[0][0].ServerID != "srv-1" {
		t.Errorf("batches = %+v", got)
	}
	// Cancellation stops the loop promptly.
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	go func() {
		metrics.New(metrics.Config{Tick: time.Hour, Tenants: func(context.Context) ([]string, error) { return nil, nil }},
			b.db, fleetWith(), nil, nil, b.log).Run(ctx)
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop when its context ended")
	}
}

// metricBundle is what a metrics test works with: a store with one tenant, its clock and audit log.
type metricBundle struct {
	db    *store.DB
	ctx   context.Context
	clock *jobstest.Clock
	log   *audit.Log
}

func setupMetrics(t testing.TB, open func(testing.TB) *store.DB) *metricBundle {
	t.Helper()
	db := open(t)
	ten := storetest.NewTenant(t, db, "mon")
	b := &metricBundle{db: db, clock: jobstest.NewClock(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))}
	b.ctx = tenant.WithID(context.Background(), ten.ID)
	var err error
	if b.log, err = audit.New(db, []byte("0123456789abcdef0123456789abcdef"), b.clock.Now); err != nil {
		t.Fatal(err)
	}
	return b
}

// scraperFunc is a NodeScraper made of a func.
type scraperFunc func(ctx context.Context, url string) (*metrics.HostStats, error)

func (f scraperFunc) Scrape(ctx context.Context, url string) (*metrics.HostStats, error) {
	return f(ctx, url)
}

// fakeFleet is an inventory of named servers that cannot run commands.
type fakeFleet struct{ servers []inventory.Server }

var _ metrics.Fleet = (*fakeFleet)(nil)

func fleetWith(ids ...string) *fakeFleet {
	f := &fakeFleet{}
	for _, id := range ids {
		f.servers = append(f.servers, inventory.Server{ID: id, Name: id, Host: id})
	}
	return f
}

func (f *fakeFleet) Servers(ctx context.Context, sel inventory.Selector) ([]inventory.Server, error) {
	if len(sel.ServerIDs) == 0 {
		return f.servers, nil
	}
	var out []inventory.Server
	for _, s := range f.servers {
		for _, id := range sel.ServerIDs {
			if s.ID == id {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func (f *fakeFleet) Exec(ctx context.Context, req inventory.ExecRequest, onResult func(inventory.ExecResult)) (inventory.Summary, error) {
	return inventory.Summary{}, errors.New("the fake fleet runs no commands")
}

// promFunc is a PromQuerier made of funcs.
type promFunc struct {
	query      func(query string, at time.Time) []metrics.PromSample
	queryRange func(query string, from, to time.Time, step time.Duration) []metrics.PromSample
}

func (p promFunc) Query(ctx context.Context, baseURL, query string, at time.Time) ([]metrics.PromSample, error) {
	return p.query(query, at), nil
}

func (p promFunc) QueryRange(ctx context.Context, baseURL, query string, from, to time.Time, step time.Duration) ([]metrics.PromSample, error) {
	return p.queryRange(query, from, to, step), nil
}

// TestPromBackfill ensures a Prometheus source fills a gap in collection from Prometheus' history with a
// range query at its interval, and maps series to servers by the instance label's host.
func TestPromBackfill(t *testing.T) {
	t.Parallel()
	b := setupMetrics(t, storetest.OpenSQLite)
	var ranges []string
	prom := promFunc{
		query: func(q string, at time.Time) []metrics.PromSample {
			return []metrics.PromSample{{Labels: map[string]string{"instance": "web-1:9100"}, Value: 1, At: at}}
		},
		queryRange: func(q string, from, to time.Time, step time.Duration) []metrics.PromSample {
			ranges = append(ranges, from.Format("15:04")+"-"+to.Format("15:04")+"/"+step.String())
			var out []metrics.PromSample
			for at := from; !at.After(to); at = at.Add(step) {
				out = append(out, metrics.PromSample{Labels: map[string]string{"instance": "web-1:9100"}, Value: 2, At: at})
			}
			return out
		}}
	var evaluated int
	m := metrics.New(metrics.Config{Now: b.clock.Now, OnSamples: func(ctx context.Context, s []monitor.Sample) { evaluated += len(s) }},
		b.db, fleetWith("web-1"), nil, prom, b.log)
	src := &metrics.Source{Name: "p", Type: metrics.SourcePrometheus, URL: "http://prom:9090", IntervalSeconds: 60, Enabled: true,
		Queries: []metrics.PromQuery{{Metric: monitor.MetricLoad1, Query: "node_load1"}}}
	if err := m.CreateSource(b.ctx, src); err != nil {
		t.Fatal(err)
	}
	start := b.clock.Now()
	if _, err := m.Collect(b.ctx, src); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(90 * time.Second) // within two intervals: no backfill
	if _, err := m.Collect(b.ctx, src); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(10 * time.Minute) // a gap
	if _, err := m.Collect(b.ctx, src); err != nil {
		t.Fatal(err)
	}
	if len(ranges) != 1 || ranges[0] != "10:02-10:10/1m0s" {
		t.Fatalf("range queries = %v, want one over the gap", ranges)
	}
	series, err := m.Query(b.ctx, metrics.Query{ServerID: "web-1", Metric: monitor.MetricLoad1, From: start, To: b.clock.Now().Add(time.Second)})
	if err != nil || len(series) != 1 {
		t.Fatalf("%+v %v", series, err)
	}
	if n := len(series[0].Points); n != 3+9 {
		t.Errorf("points = %d, want 3 collected and 9 backfilled", n)
	}
	if evaluated != 3 {
		t.Errorf("%d samples evaluated, want only the 3 collected ones", evaluated)
	}
}

// TestCollectOnceAcrossReplicas ensures two replicas' loops over one database collect a due source once.
func TestCollectOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			b := setupMetrics(t, be.Open)
			var mu sync.Mutex
			scrapes := 0
			scraper := scraperFunc(func(ctx context.Context, url string) (*metrics.HostStats, error) {
				mu.Lock()
				scrapes++
				mu.Unlock()
				return &metrics.HostStats{HasLoad: true}, nil
			})
			replica := func() *metrics.Service {
				return metrics.New(metrics.Config{Now: b.clock.Now}, b.db, fleetWith("srv-1"), scraper, nil, b.log)
			}
			r1, r2 := replica(), replica()
			if err := r1.CreateSource(b.ctx, &metrics.Source{Name: "n", Type: metrics.SourceNodeExporter, URL: "http://node/metrics",
				ServerID: "srv-1", IntervalSeconds: 60, Enabled: true}); err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				var wg sync.WaitGroup
				for _, r := range []*metrics.Service{r1, r2} {
					wg.Go(func() {
						if _, err := r.CollectDue(b.ctx); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				if scrapes != round+1 {
					t.Fatalf("round %d: %d scrapes, want %d", round, scrapes, round+1)
				}
				b.clock.Advance(time.Minute)
			}
		})
	}
}
