package nodeexporter_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/monitor/metrics"
	"github.com/it0/it0/internal/monitor/nodeexporter"
)

func near(a, b float64) bool { return math.Abs(a-b) < 0.01 }

// TestScrape ensures a node_exporter page served over HTTP is read into the same metrics the SSH
// collector computes: memory and disk (df's formula) at once, CPU and network from the next scrape.
func TestScrape(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile("testdata/node.prom")
	if err != nil {
		t.Fatal(err)
	}
	var second atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || !strings.Contains(r.Header.Get("Accept"), "text/plain") {
			http.Error(w, "want GET /metrics accepting text/plain", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		body := string(page)
		if second.Load() { // 10 seconds later: +2 s busy of 20 s CPU time, 1 MB in, 0.5 MB out on eth0
			body = strings.Replace(body, `node_cpu_seconds_total{cpu="0",mode="idle"} 152301.45`, `node_cpu_seconds_total{cpu="0",mode="idle"} 152310.45`, 1)
			body = strings.Replace(body, `node_cpu_seconds_total{cpu="1",mode="idle"} 151899.03`, `node_cpu_seconds_total{cpu="1",mode="idle"} 151908.03`, 1)
			body = strings.Replace(body, `node_cpu_seconds_total{cpu="0",mode="user"} 5120.61`, `node_cpu_seconds_total{cpu="0",mode="user"} 5122.61`, 1)
			body = strings.Replace(body, `node_network_receive_bytes_total{device="eth0"} 1.23456789e+09`, `node_network_receive_bytes_total{device="eth0"} 1.23556789e+09`, 1)
			body = strings.Replace(body, `node_network_transmit_bytes_total{device="eth0"} 9.8765432e+08`, `node_network_transmit_bytes_total{device="eth0"} 9.8815432e+08`, 1)
			body = strings.Replace(body, `node_time_seconds 1.7641500001234e+09`, `node_time_seconds 1.7641500101234e+09`, 1)
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	sc := nodeexporter.New(srv.Client())
	first, err := sc.Scrape(context.Background(), srv.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]float64{}
	for _, s := range metrics.HostSamples("s1", nil, first, monitorAt, 0) {
		samples[s.Metric+s.Label] = s.Value
	}
	want := map[string]float64{"memory_usage": 75, "load_1m": 0.42, "load_5m": 0.38, "load_15m": 0.31,
		// used = size-free = 80 GiB of used+avail = 100 GiB… as df computes Capacity.
		"disk_usage/":             100 * (1.07374182e+11 - 2.6843545e+10) / (1.07374182e+11 - 2.6843545e+10 + 2.1474836e+10),
		"disk_usage/var/lib/data": 90}
	for k, v := range want {
		if !near(samples[k], v) {
			t.Errorf("%s = %v, want %v (all: %v)", k, samples[k], v, samples)
		}
	}
	if _, ok := samples["disk_usage/run"]; ok {
		t.Error("tmpfs /run counted as a disk")
	}
	if _, ok := samples["cpu_usage"]; ok {
		t.Error("cpu usage from a single scrape")
	}
	second.Store(true)
	next, err := sc.Scrape(context.Background(), srv.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range metrics.HostSamples("s1", first, next, monitorAt, 0) {
		samples[s.Metric+s.Label] = s.Value
	}
	if !near(samples["cpu_usage"], 10) || !near(samples["network_in"], 100000) || !near(samples["network_out"], 50000) {
		t.Errorf("rates = cpu %v in %v out %v, want 10%%, 100000 B/s, 50000 B/s", samples["cpu_usage"], samples["network_in"], samples["network_out"])
	}
}

// TestScrapeErrors ensures awkward answers are errors that say what was wrong.
func TestScrapeErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, want string
		status           int
	}{
		{"NotFound", "404 page not found", "404", http.StatusNotFound},
		{"NotExposition", "<html>login</html>", "parse", 200},
		{"NoNodeSeries", "# TYPE go_goroutines gauge\ngo_goroutines 8\n", "no node_exporter series", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			_, err := nodeexporter.New(srv.Client()).Scrape(context.Background(), srv.URL+"/metrics")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// FuzzParse ensures no exposition text panics the parser.
func FuzzParse(f *testing.F) {
	page, _ := os.ReadFile("testdata/node.prom")
	f.Add(string(page))
	f.Add("node_load1 NaN\n")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := nodeexporter.Parse(strings.NewReader(s))
		if err == nil && h == nil {
			t.Fatal("nil reading without an error")
		}
	})
}

var monitorAt = mustTime("2026-11-26T10:00:00Z")

func mustTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}
