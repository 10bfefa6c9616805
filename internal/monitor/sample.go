package monitor

import (
	"context"
	"slices"
	"time"

	"github.com/it0/it0/internal/audit"
)

// Metric types IT0 collects. Usage metrics are percentages (0–100), load is the kernel's load average,
// network metrics are bytes per second summed over every interface but loopback.
const (
	MetricCPU        = "cpu_usage"
	MetricMemory     = "memory_usage"
	MetricDisk       = "disk_usage" // one series per mount point (Sample.Label)
	MetricLoad1      = "load_1m"
	MetricLoad5      = "load_5m"
	MetricLoad15     = "load_15m"
	MetricNetworkIn  = "network_in"
	MetricNetworkOut = "network_out"
)

// MetricTypes lists every metric type IT0 collects.
var MetricTypes = []string{MetricCPU, MetricMemory, MetricDisk, MetricLoad1, MetricLoad5, MetricLoad15, MetricNetworkIn, MetricNetworkOut}

// Operators a threshold compares a metric value with (alert rules, threshold-triggered standing orders).
var Operators = []string{">", ">=", "<", "<=", "==", "!="}

// Holds reports whether value op threshold; an unknown operator never holds.
func Holds(value float64, op string, threshold float64) bool {
	switch op {
	case ">":
		return value > threshold
	case ">=":
		return value >= threshold
	case "<":
		return value < threshold
	case "<=":
		return value <= threshold
	case "==":
		return value == threshold
	case "!=":
		return value != threshold
	}
	return false
}

// ValidMetricType reports whether t is a known metric type or a custom one (lowercase letters, digits and
// underscores, as PromQL-backed sources may define their own).
func ValidMetricType(t string) bool {
	if slices.Contains(MetricTypes, t) {
		return true
	}
	if t == "" || len(t) > 64 {
		return false
	}
	for _, c := range t {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return t[0] >= 'a' && t[0] <= 'z'
}

// Sample is one metric value of one server.
type Sample struct {
	ServerID string `json:"server_id"`
	Metric   string `json:"metric_type"`
	// Label distinguishes series of one metric on one server: the mount point of disk_usage, the series
	// labels of a PromQL result; empty otherwise.
	Label string    `json:"label,omitempty"`
	Value float64   `json:"value"`
	At    time.Time `json:"collected_at"`
}

// AuditRecorder records what monitoring does: changes to checks, sources and rules, commands run to collect metrics, alerts fired (audit.Log).
type AuditRecorder interface {
	Record(ctx context.Context, r audit.Record) (*audit.Entry, error)
}
