// Package nodeexporter reads a Prometheus node_exporter endpoint (the text exposition format, parsed with
// github.com/prometheus/common/expfmt) into a metrics.HostStats reading.
package nodeexporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/it0/it0/internal/monitor/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxBody bounds a scrape: node_exporter pages are tens of KiB; a multi-megabyte answer is not one.
const maxBody = 16 << 20

// ErrNoNodeMetrics means the page parsed but held none of the node_* series IT0 reads.
var ErrNoNodeMetrics = errors.New("no node_exporter series (node_cpu_seconds_total, node_memory_*, node_load1, node_filesystem_*, node_network_*)")

// Scraper fetches node_exporter pages.
type Scraper struct {
	HTTP *http.Client
}

var _ metrics.NodeScraper = (*Scraper)(nil)

// New returns a scraper using hc (default: a client with a 15s timeout).
func New(hc *http.Client) *Scraper {
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	return &Scraper{HTTP: hc}
}

// Scrape GETs url, asking for the text format, and parses it.
func (s *Scraper) Scrape(ctx context.Context, url string) (*metrics.HostStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return Parse(io.LimitReader(resp.Body, maxBody))
}

// pseudoFS are filesystem types that say nothing about disk space.
var pseudoFS = map[string]bool{"tmpfs": true, "devtmpfs": true, "overlay": true, "squashfs": true, "proc": true, "sysfs": true,
	"cgroup": true, "cgroup2": true, "ramfs": true, "nsfs": true, "autofs": true, "rootfs": true}

// Parse reads an exposition in the text format.
func Parse(r io.Reader) (*metrics.HostStats, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse node_exporter text: %w", err)
	}
	h := &metrics.HostStats{}
	found := false
	if f := fams["node_time_seconds"]; f != nil && len(f.Metric) > 0 {
		h.Clock = value(f.Metric[0])
	}
	if f := fams["node_cpu_seconds_total"]; f != nil {
		for _, m := range f.Metric {
			v := value(m)
			h.CPUTotal += v
			if mode := label(m, "mode"); mode == "idle" || mode == "iowait" {
				h.CPUIdle += v
			}
			h.HasCPU, found = true, true
		}
	}
	total, avail := gauge(fams, "node_memory_MemTotal_bytes"), gauge(fams, "node_memory_MemAvailable_bytes")
	if total > 0 {
		h.MemTotal, h.MemAvailable, h.HasMem, found = total, min(avail, total), true, true
	}
	if l1 := fams["node_load1"]; l1 != nil {
		h.Load = [3]float64{gauge(fams, "node_load1"), gauge(fams, "node_load5"), gauge(fams, "node_load15")}
		h.HasLoad, found = true, true
	}
	for _, dir := range []struct {
		name string
		dst  *float64
	}{{"node_network_receive_bytes_total", &h.RxBytes}, {"node_network_transmit_bytes_total", &h.TxBytes}} {
		if f := fams[dir.name]; f != nil {
			for _, m := range f.Metric {
				if label(m, "device") == "lo" {
					continue
				}
				*dir.dst += value(m)
				h.HasNet, found = true, true
			}
		}
	}
	h.Disks = disks(fams)
	if len(h.Disks) > 0 {
		found = true
	}
	if !found {
		return nil, ErrNoNodeMetrics
	}
	return h, nil
}

// disks computes df's Capacity per mount point: used/(used+avail), used = size-free.
func disks(fams map[string]*dto.MetricFamily) []metrics.DiskUsage {
	type fs struct{ size, free, avail float64 }
	byMount := map[string]*fs{}
	var order []string
	for _, n := range []string{"node_filesystem_size_bytes", "node_filesystem_free_bytes", "node_filesystem_avail_bytes"} {
		f := fams[n]
		if f == nil {
			continue
		}
		for _, m := range f.Metric {
			mount := label(m, "mountpoint")
			if pseudoFS[label(m, "fstype")] || !strings.HasPrefix(mount, "/") {
				continue
			}
			d := byMount[mount]
			if d == nil {
				d = &fs{}
				byMount[mount] = d
				order = append(order, mount)
			}
			switch n {
			case "node_filesystem_size_bytes":
				d.size = value(m)
			case "node_filesystem_free_bytes":
				d.free = value(m)
			default:
				d.avail = value(m)
			}
		}
	}
	var out []metrics.DiskUsage
	for _, mount := range order {
		d := byMount[mount]
		used := d.size - d.free
		if d.size <= 0 || used < 0 || used+d.avail <= 0 {
			continue
		}
		out = append(out, metrics.DiskUsage{Mount: mount, Percent: 100 * used / (used + d.avail)})
	}
	return out
}

func gauge(fams map[string]*dto.MetricFamily, name string) float64 {
	if f := fams[name]; f != nil && len(f.Metric) > 0 {
		return value(f.Metric[0])
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
