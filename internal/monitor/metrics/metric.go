// Package metrics collects server metrics: from sources that read /proc over SSH, scrape node_exporter
// endpoints or query Prometheus, and from clients that push samples. The collector loop visits every
// tenant's due sources; each round of a source is claimed by one replica.
//
// Storage policy: raw samples are kept for 7 days; older samples are folded into 5-minute averages (with
// min, max and count) that are kept for 90 days. On PostgreSQL the raw table is partitioned by month and
// the maintenance job creates the coming months' partitions ahead of time.
package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/monitor"
)

// Point is one value of a queried series: a raw sample, or the average of a step.
type Point struct {
	At    time.Time `json:"t"`
	Value float64   `json:"v"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
	Count int       `json:"count"`
}

// Series is a queried metric of one server and label.
type Series struct {
	ServerID string  `json:"server_id"`
	Metric   string  `json:"metric_type"`
	Label    string  `json:"label,omitempty"`
	Points   []Point `json:"points"`
}

// Query selects stored samples. Step, when set, averages them into buckets of that width.
type Query struct {
	ServerID string
	Metric   string
	Label    string // optional: one series
	From, To time.Time
	Step     time.Duration
	Limit    int // points per series at most; 0 = 11,000 (Prometheus' own cap)
}

// maxPoints bounds a query's answer per series, as Prometheus does.
const maxPoints = 11000

// Validate checks q, naming the bad parameter.
func (q *Query) Validate() error {
	var list []error
	if q.ServerID == "" {
		list = append(list, errs.Invalidf("server_id", "server_id is required"))
	}
	if !monitor.ValidMetricType(q.Metric) {
		list = append(list, errs.Invalidf("metric_type", "metric_type %q is not one of %s (or a custom lowercase name)", q.Metric, strings.Join(monitor.MetricTypes, ", ")))
	}
	if !q.To.After(q.From) {
		list = append(list, errs.Invalidf("to", "to must be after from"))
	}
	if q.Step < 0 {
		list = append(list, errs.Invalidf("step", "step must be positive"))
	}
	if q.Limit == 0 {
		q.Limit = maxPoints
	}
	if q.Step > 0 && q.To.Sub(q.From)/q.Step > maxPoints {
		list = append(list, errs.Invalidf("step", "from..to at this step gives more than %d points; widen the step", maxPoints))
	}
	return errs.Join(list...)
}

// RawPoint is a stored value as the store returns it: a raw sample (Count 1) or a 5-minute rollup.
type RawPoint struct {
	Label string
	At    time.Time
	Avg   float64
	Min   float64
	Max   float64
	Count int
}

// MaintainParams say what the metric maintenance job keeps.
type MaintainParams struct {
	Now             time.Time
	RawRetention    time.Duration // raw samples older than this are folded into rollups
	RollupRetention time.Duration // rollups older than this are deleted
	RollupStep      time.Duration // width of a rollup bucket
	MonthsAhead     int           // PostgreSQL partitions to create beyond the current month
}

// MaintainResult reports what a maintenance run did.
type MaintainResult struct {
	RolledUp          int      `json:"rolled_up"`
	RollupsWritten    int      `json:"rollups_written"`
	RollupsDeleted    int      `json:"rollups_deleted"`
	PartitionsCreated []string `json:"partitions_created,omitempty"`
	PartitionsDropped []string `json:"partitions_dropped,omitempty"`
}

// Source types.
const (
	SourceSSH          = "ssh"
	SourceNodeExporter = "node_exporter"
	SourcePrometheus   = "prometheus"
)

// SourceTypes lists the source types.
var SourceTypes = []string{SourceSSH, SourceNodeExporter, SourcePrometheus}

// PromQuery maps a PromQL expression to a metric type.
type PromQuery struct {
	Metric string `json:"metric_type"`
	Query  string `json:"query"`
	// LabelFrom names the result label that becomes Sample.Label (mountpoint for disk usage).
	LabelFrom string `json:"label_from,omitempty"`
}

// DefaultPromQueries compute IT0's metric types from node_exporter series in Prometheus.
var DefaultPromQueries = []PromQuery{
	{Metric: monitor.MetricCPU, Query: `100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))`},
	{Metric: monitor.MetricMemory, Query: `100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)`},
	{Metric: monitor.MetricDisk, LabelFrom: "mountpoint", Query: `100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs"}` +
		` / (node_filesystem_avail_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs"} + node_filesystem_size_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs"}` +
		` - node_filesystem_free_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs"}))`},
	{Metric: monitor.MetricLoad1, Query: `node_load1`},
	{Metric: monitor.MetricLoad5, Query: `node_load5`},
	{Metric: monitor.MetricLoad15, Query: `node_load15`},
	{Metric: monitor.MetricNetworkIn, Query: `sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}[5m]))`},
	{Metric: monitor.MetricNetworkOut, Query: `sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[5m]))`},
}

// Source is where metrics come from: servers over SSH (a selection of the inventory), a node_exporter
// endpoint of one server, or a Prometheus server answering PromQL.
type Source struct {
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	// Selector chooses the servers of an ssh source.
	Selector *inventory.Selector `json:"selector,omitempty"`
	// ServerID is the server a node_exporter source describes; for prometheus, it pins every result to one
	// server instead of matching ServerLabel.
	ServerID string `json:"server_id,omitempty"`
	// URL is the node_exporter /metrics URL or the Prometheus base URL.
	URL string `json:"url,omitempty"`
	// Queries of a prometheus source; empty means DefaultPromQueries.
	Queries []PromQuery `json:"queries,omitempty"`
	// ServerLabel names the result label matched against server names and hosts (default "instance").
	ServerLabel     string     `json:"server_label,omitempty"`
	IntervalSeconds int        `json:"interval_seconds"`
	Enabled         bool       `json:"enabled"`
	LastCollectedAt *time.Time `json:"last_collected_at,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// Validate checks s, naming each bad field, and fills defaults.
func (s *Source) Validate() error {
	var list []error
	if strings.TrimSpace(s.Name) == "" || len(s.Name) > 100 {
		list = append(list, errs.Invalidf("name", "name is required (at most 100 characters)"))
	}
	if s.IntervalSeconds == 0 {
		s.IntervalSeconds = 60
	}
	if s.IntervalSeconds < 10 || s.IntervalSeconds > 86400 {
		list = append(list, errs.Invalidf("interval_seconds", "interval_seconds must be from 10 to 86400"))
	}
	httpURL := func() {
		if !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") || len(s.URL) > 2000 {
			list = append(list, errs.Invalidf("url", "url must be an http:// or https:// URL"))
		}
	}
	switch s.Type {
	case SourceSSH:
		if s.Selector == nil || s.Selector.Empty() {
			list = append(list, errs.Invalidf("selector", "an ssh source needs a selector: server_ids, environment, role, tags or all"))
		}
		if s.URL != "" {
			list = append(list, errs.Invalidf("url", "an ssh source has no url"))
		}
	case SourceNodeExporter:
		httpURL()
		if s.ServerID == "" {
			list = append(list, errs.Invalidf("server_id", "a node_exporter source needs the server_id its series describe"))
		}
	case SourcePrometheus:
		httpURL()
		if s.ServerLabel == "" {
			s.ServerLabel = "instance"
		}
		for i, q := range s.Queries {
			if !monitor.ValidMetricType(q.Metric) {
				list = append(list, errs.Invalidf("queries", "queries[%d].metric_type %q is not a metric type", i, q.Metric))
			}
			if strings.TrimSpace(q.Query) == "" {
				list = append(list, errs.Invalidf("queries", "queries[%d].query is empty", i))
			}
		}
	default:
		list = append(list, errs.Invalidf("type", "type %q is not one of %s", s.Type, strings.Join(SourceTypes, ", ")))
	}
	return errs.Join(list...)
}

// Store is what metrics need from storage; every method acts on the tenant in ctx.
type Store interface {
	MetricInsert(ctx context.Context, samples []monitor.Sample) error
	// MetricPoints returns the stored values of a server's metric in [from, to), oldest first: raw samples
	// and 5-minute rollups of older data.
	MetricPoints(ctx context.Context, serverID, metric, label string, from, to time.Time) ([]RawPoint, error)
	// MetricLatest returns the newest sample of every series of serverID (every server when empty).
	MetricLatest(ctx context.Context, serverID string) ([]monitor.Sample, error)
	MetricMaintain(ctx context.Context, p MaintainParams) (MaintainResult, error)
	MetricSourceCreate(ctx context.Context, s *Source) error
	MetricSourceGet(ctx context.Context, id string) (*Source, error) // errs.NotFound
	MetricSourceList(ctx context.Context) ([]Source, error)
	MetricSourceUpdate(ctx context.Context, s *Source) error // errs.NotFound
	// MetricSourceCollected records a collection's time and error on source id, leaving the rest as it is
	// now (an edit made during the collection stays). errs.NotFound when the source is gone.
	MetricSourceCollected(ctx context.Context, id string, at time.Time, lastError string) error
	MetricSourceDelete(ctx context.Context, id string) error // errs.NotFound
	// MetricSourceClaim moves source id's next collection to next if it was due at now, and reports
	// whether this caller did (so that one replica collects each round).
	MetricSourceClaim(ctx context.Context, id string, now, next time.Time) (bool, error)
}
