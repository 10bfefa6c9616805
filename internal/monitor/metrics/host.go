package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/it0/it0/internal/monitor"
)

// HostStats is one reading of a host's counters and gauges, from /proc and df over SSH or from
// node_exporter. Rates and CPU usage need two readings: HostSamples compares consecutive ones.
type HostStats struct {
	// Clock is the host's own monotonic time in seconds (uptime, or node_time_seconds): rates are
	// counter deltas over its delta, whatever the collector's clock says. Zero when unknown.
	Clock float64
	// CPUTotal and CPUIdle are cumulative CPU time (any unit); HasCPU says they were read.
	CPUTotal, CPUIdle float64
	HasCPU            bool
	// MemTotal and MemAvailable are bytes; HasMem says they were read.
	MemTotal, MemAvailable float64
	HasMem                 bool
	Load                   [3]float64
	HasLoad                bool
	// RxBytes and TxBytes are cumulative bytes over every interface but loopback; HasNet says they were read.
	RxBytes, TxBytes float64
	HasNet           bool
	Disks            []DiskUsage
}

// DiskUsage is one mounted filesystem. Percent is used/(used+available), as df computes Capacity.
type DiskUsage struct {
	Mount   string
	Percent float64
}

// HostSamples turns a reading into samples, using prev (the server's previous reading, or nil) for CPU
// usage and network rates. elapsed is the collector's time between the readings, used when the host has
// no clock of its own.
func HostSamples(serverID string, prev, cur *HostStats, at time.Time, elapsed time.Duration) []monitor.Sample {
	out := make([]monitor.Sample, 0, 8+len(cur.Disks))
	add := func(metric, label string, v float64) {
		out = append(out, monitor.Sample{ServerID: serverID, Metric: metric, Label: label, Value: v, At: at})
	}
	if cur.HasMem && cur.MemTotal > 0 {
		add(monitor.MetricMemory, "", round2(100*(cur.MemTotal-cur.MemAvailable)/cur.MemTotal))
	}
	if cur.HasLoad {
		add(monitor.MetricLoad1, "", cur.Load[0])
		add(monitor.MetricLoad5, "", cur.Load[1])
		add(monitor.MetricLoad15, "", cur.Load[2])
	}
	for _, d := range cur.Disks {
		add(monitor.MetricDisk, d.Mount, round2(d.Percent))
	}
	if prev == nil {
		return out
	}
	if cur.HasCPU && prev.HasCPU {
		dt, di := cur.CPUTotal-prev.CPUTotal, cur.CPUIdle-prev.CPUIdle
		if dt > 0 && di >= 0 && di <= dt {
			add(monitor.MetricCPU, "", round2(100*(1-di/dt)))
		}
	}
	secs := elapsed.Seconds()
	if cur.Clock > 0 && prev.Clock > 0 {
		secs = cur.Clock - prev.Clock
	}
	if cur.HasNet && prev.HasNet && secs > 0 {
		// A counter that went down was reset (reboot, interface gone): no rate this time.
		if rx, tx := cur.RxBytes-prev.RxBytes, cur.TxBytes-prev.TxBytes; rx >= 0 && tx >= 0 {
			add(monitor.MetricNetworkIn, "", round2(rx/secs))
			add(monitor.MetricNetworkOut, "", round2(tx/secs))
		}
	}
	return out
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// ErrNoProcData means SSH output held none of the sections the collection command prints.
var ErrNoProcData = errors.New("no /proc data in the output")

// procCommand is the one read-only (L0) command an ssh source runs: each file after a marker line, then
// df in POSIX format (-P keeps one filesystem per line; -k fixes the unit).
const procCommand = "echo @@uptime; cat /proc/uptime; echo @@stat; cat /proc/stat; echo @@meminfo; cat /proc/meminfo; " +
	"echo @@loadavg; cat /proc/loadavg; echo @@netdev; cat /proc/net/dev; echo @@df; df -P -k"

// ProcCommand returns the command an ssh source runs on each server.
func ProcCommand() string { return procCommand }

// pseudoFS are df filesystems that say nothing about disk space.
var pseudoFS = map[string]bool{"tmpfs": true, "devtmpfs": true, "udev": true, "overlay": true, "shm": true, "none": true,
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "efivarfs": true, "squashfs": true}

// ParseProc parses the output of ProcCommand. Sections that are missing or malformed are left out (HasX
// false); only output with no section at all is an error.
func ParseProc(out string) (*HostStats, error) {
	sections := map[string][]string{}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "@@"); ok {
			cur = strings.TrimSpace(name)
			sections[cur] = sections[cur][:0]
			continue
		}
		if cur != "" {
			sections[cur] = append(sections[cur], line)
		}
	}
	if len(sections) == 0 {
		return nil, ErrNoProcData
	}
	h := &HostStats{}
	if l := sections["uptime"]; len(l) > 0 {
		if f := strings.Fields(l[0]); len(f) > 0 {
			h.Clock, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	parseStat(h, sections["stat"])
	parseMeminfo(h, sections["meminfo"])
	if l := sections["loadavg"]; len(l) > 0 {
		if f := strings.Fields(l[0]); len(f) >= 3 {
			var err error
			for i := range 3 {
				if h.Load[i], err = strconv.ParseFloat(f[i], 64); err != nil {
					break
				}
			}
			h.HasLoad = err == nil
		}
	}
	parseNetDev(h, sections["netdev"])
	h.Disks = parseDF(sections["df"])
	return h, nil
}

// parseStat reads the aggregate "cpu" line: user nice system idle iowait irq softirq steal guest
// guest_nice. Guest time is already counted in user and nice, so the total stops at steal; idle time
// includes iowait.
func parseStat(h *HostStats, lines []string) {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		var v [8]float64
		n := min(len(f)-1, 8)
		for i := range n {
			x, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil || x < 0 {
				return
			}
			v[i] = x
		}
		for i := range n {
			h.CPUTotal += v[i]
		}
		h.CPUIdle = v[3] + v[4]
		h.HasCPU = true
		return
	}
}

func parseMeminfo(h *HostStats, lines []string) {
	kv := map[string]float64{}
	for _, l := range lines {
		name, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if x, err := strconv.ParseFloat(f[0], 64); err == nil {
			kv[name] = x * 1024 // kB
		}
	}
	total, ok := kv["MemTotal"]
	if !ok || total <= 0 {
		return
	}
	avail, ok := kv["MemAvailable"]
	if !ok { // kernels before 3.14
		avail = kv["MemFree"] + kv["Buffers"] + kv["Cached"]
	}
	h.MemTotal, h.MemAvailable, h.HasMem = total, min(avail, total), true
}

// parseNetDev sums receive and transmit bytes (the first and ninth numbers after "iface:").
func parseNetDev(h *HostStats, lines []string) {
	for _, l := range lines {
		name, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if len(f) < 9 || name == "lo" || strings.Contains(name, "|") {
			continue
		}
		rx, err1 := strconv.ParseFloat(f[0], 64)
		tx, err2 := strconv.ParseFloat(f[8], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		h.RxBytes += rx
		h.TxBytes += tx
		h.HasNet = true
	}
}

// parseDF reads `df -P -k`: Filesystem 1024-blocks Used Available Capacity Mounted-on. The mount point is
// the rest of the line, so it may contain spaces.
func parseDF(lines []string) []DiskUsage {
	var out []DiskUsage
	seen := map[string]bool{}
	for i, l := range lines {
		f := strings.Fields(l)
		if i == 0 && len(f) > 0 && f[0] == "Filesystem" || len(f) < 6 || pseudoFS[f[0]] {
			continue
		}
		size, e1 := strconv.ParseFloat(f[1], 64)
		used, e2 := strconv.ParseFloat(f[2], 64)
		avail, e3 := strconv.ParseFloat(f[3], 64)
		if e1 != nil || e2 != nil || e3 != nil || size <= 0 || used+avail <= 0 {
			continue
		}
		mount := strings.Join(f[5:], " ")
		if !strings.HasPrefix(mount, "/") || seen[mount] {
			continue
		}
		seen[mount] = true
		out = append(out, DiskUsage{Mount: mount, Percent: 100 * used / (used + avail)})
	}
	return out
}

// String describes h briefly, for logs.
func (h *HostStats) String() string {
	return fmt.Sprintf("cpu=%v mem=%v load=%v net=%v disks=%d", h.HasCPU, h.HasMem, h.HasLoad, h.HasNet, len(h.Disks))
}
