package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/tenant"
)

// Fleet is what metrics need from the inventory: the servers, and guarded command execution.
type Fleet interface {
	Servers(ctx context.Context, sel inventory.Selector) ([]inventory.Server, error)
	Exec(ctx context.Context, req inventory.ExecRequest, onResult func(inventory.ExecResult)) (inventory.Summary, error)
}

// NodeScraper reads a node_exporter endpoint (monitor/nodeexporter).
type NodeScraper interface {
	Scrape(ctx context.Context, url string) (*HostStats, error)
}

// PromSample is one series' value in a PromQL answer.
type PromSample struct {
	Labels map[string]string
	Value  float64
	At     time.Time
}

// PromQuerier runs PromQL against a Prometheus server (monitor/promapi).
type PromQuerier interface {
	Query(ctx context.Context, baseURL, query string, at time.Time) ([]PromSample, error)
	QueryRange(ctx context.Context, baseURL, query string, from, to time.Time, step time.Duration) ([]PromSample, error)
}

// Config configures metric collection.
type Config struct {
	// Now is the clock (default time.Now in UTC); tests control it.
	Now func() time.Time
	// Tenants lists the tenants the collector loop visits.
	Tenants func(ctx context.Context) ([]string, error)
	// OnSamples receives every batch of samples after it is stored, in the samples' tenant: alert
	// evaluation, and the batch's publication to the threshold-triggered standing orders (ops).
	OnSamples func(ctx context.Context, samples []monitor.Sample)
	// Tick is how often the loop looks for due sources (default 5s).
	Tick time.Duration
	// CollectTimeout bounds one source's collection (default 30s).
	CollectTimeout time.Duration
	// Retention policy (defaults: raw 7 days, 5-minute rollups 90 days, partitions 2 months ahead).
	RawRetention, RollupRetention, RollupStep time.Duration
	MonthsAhead                               int
	Logger                                    *slog.Logger
}

// Service collects, stores and answers queries on server metrics.
type Service struct {
	cfg   Config
	store Store
	fleet Fleet
	node  NodeScraper
	prom  PromQuerier
	audit monitor.AuditRecorder
	log   *slog.Logger

	mu   sync.Mutex
	prev map[string]prevReading // tenant/source/server → previous reading
}

type prevReading struct {
	stats *HostStats
	at    time.Time
}

// New returns the metrics service.
func New(cfg Config, store Store, fleet Fleet, node NodeScraper, prom PromQuerier, log monitor.AuditRecorder) *Service {
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Tick == 0 {
		cfg.Tick = 5 * time.Second
	}
	if cfg.CollectTimeout == 0 {
		cfg.CollectTimeout = 30 * time.Second
	}
	if cfg.RawRetention == 0 {
		cfg.RawRetention = 7 * 24 * time.Hour
	}
	if cfg.RollupRetention == 0 {
		cfg.RollupRetention = 90 * 24 * time.Hour
	}
	if cfg.RollupStep == 0 {
		cfg.RollupStep = 5 * time.Minute
	}
	if cfg.MonthsAhead == 0 {
		cfg.MonthsAhead = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, store: store, fleet: fleet, node: node, prom: prom, audit: log,
		log: cfg.Logger.With(slog.String("component", "metrics")), prev: map[string]prevReading{}}
}

func (m *Service) now() time.Time { return m.cfg.Now().UTC().Truncate(time.Microsecond) }

// CreateSource validates and stores a metric source.
func (m *Service) CreateSource(ctx context.Context, s *Source) error {
	if err := m.checkSource(ctx, s); err != nil {
		return err
	}
	tid, _ := tenant.ID(ctx)
	s.ID, s.TenantID, s.CreatedAt, s.UpdatedAt, s.LastCollectedAt, s.LastError = uuid.NewString(), tid, m.now(), m.now(), nil, ""
	if err := m.store.MetricSourceCreate(ctx, s); err != nil {
		return err
	}
	_, err := m.audit.Record(ctx, audit.Record{Action: "metric_source.created", ResourceType: "metric_source", ResourceID: s.ID,
		Description: s.Type + " source " + s.Name + " created", Detail: map[string]any{"type": s.Type, "url": s.URL, "server_id": s.ServerID}})
	return err
}

// checkSource validates s and that the servers it names exist.
func (m *Service) checkSource(ctx context.Context, s *Source) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.ServerID != "" {
		if found, err := m.fleet.Servers(ctx, inventory.Selector{ServerIDs: []string{s.ServerID}}); err != nil {
			return err
		} else if len(found) == 0 {
			return errs.Invalidf("server_id", "server %s does not exist", s.ServerID)
		}
	}
	return nil
}

// Source returns source id.
func (m *Service) Source(ctx context.Context, id string) (*Source, error) {
	return m.store.MetricSourceGet(ctx, id)
}

// Sources lists the tenant's sources.
func (m *Service) Sources(ctx context.Context) ([]Source, error) {
	return m.store.MetricSourceList(ctx)
}

// UpdateSource saves a changed source.
func (m *Service) UpdateSource(ctx context.Context, s *Source) error {
	if err := m.checkSource(ctx, s); err != nil {
		return err
	}
	s.UpdatedAt = m.now()
	if err := m.store.MetricSourceUpdate(ctx, s); err != nil {
		return err
	}
	_, err := m.audit.Record(ctx, audit.Record{Action: "metric_source.updated", ResourceType: "metric_source", ResourceID: s.ID,
		Description: s.Type + " source " + s.Name + " updated"})
	return err
}

// DeleteSource removes a source.
func (m *Service) DeleteSource(ctx context.Context, id string) error {
	s, err := m.store.MetricSourceGet(ctx, id)
	if err != nil {
		return err
	}
	if err := m.store.MetricSourceDelete(ctx, id); err != nil {
		return err
	}
	_, err = m.audit.Record(ctx, audit.Record{Action: "metric_source.deleted", ResourceType: "metric_source", ResourceID: id,
		Description: s.Type + " source " + s.Name + " deleted"})
	return err
}

// Ingest stores pushed samples (from an agent or script outside IT0) and evaluates them like collected
// ones. Every sample needs a known server and metric type; At defaults to now.
func (m *Service) Ingest(ctx context.Context, samples []monitor.Sample) error {
	if len(samples) == 0 || len(samples) > 10000 {
		return errs.Invalidf("samples", "send 1 to 10000 samples")
	}
	ids := map[string]bool{}
	now := m.now()
	for i := range samples {
		s := &samples[i]
		if s.ServerID == "" {
			return errs.Invalidf("samples", "samples[%d].server_id is required", i)
		}
		if !monitor.ValidMetricType(s.Metric) {
			return errs.Invalidf("samples", "samples[%d].metric_type %q is not a metric type", i, s.Metric)
		}
		if s.At.IsZero() {
			s.At = now
		}
		s.At = s.At.UTC().Truncate(time.Microsecond)
		ids[s.ServerID] = true
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	found, err := m.fleet.Servers(ctx, inventory.Selector{ServerIDs: list})
	if err != nil {
		return err
	}
	if len(found) != len(list) {
		return errs.Invalidf("samples", "%d of the server ids do not exist", len(list)-len(found))
	}
	return m.deliver(ctx, samples)
}

// deliver stores samples and hands them on.
func (m *Service) deliver(ctx context.Context, samples []monitor.Sample) error {
	if len(samples) == 0 {
		return nil
	}
	if err := m.store.MetricInsert(ctx, samples); err != nil {
		return fmt.Errorf("store samples: %w", err)
	}
	if m.cfg.OnSamples != nil {
		m.cfg.OnSamples(ctx, samples)
	}
	return nil
}

// Query returns a server's metric over a time range, one series per label, averaged into steps when
// q.Step is set.
func (m *Service) Query(ctx context.Context, q Query) ([]Series, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	raw, err := m.store.MetricPoints(ctx, q.ServerID, q.Metric, q.Label, q.From, q.To)
	if err != nil {
		return nil, err
	}
	byLabel := map[string][]RawPoint{}
	var labels []string
	for _, p := range raw {
		if _, ok := byLabel[p.Label]; !ok {
			labels = append(labels, p.Label)
		}
		byLabel[p.Label] = append(byLabel[p.Label], p)
	}
	sort.Strings(labels)
	out := make([]Series, 0, len(labels))
	for _, l := range labels {
		pts := bucket(byLabel[l], q.From, q.Step)
		if len(pts) > q.Limit {
			pts = pts[len(pts)-q.Limit:]
		}
		out = append(out, Series{ServerID: q.ServerID, Metric: q.Metric, Label: l, Points: pts})
	}
	return out, nil
}

// bucket averages points (oldest first) into steps aligned on from; step 0 keeps every point. Rollups
// weigh by the samples they hold.
func bucket(raw []RawPoint, from time.Time, step time.Duration) []Point {
	out := make([]Point, 0, len(raw))
	var sum float64
	for _, p := range raw {
		at := p.At
		if step > 0 {
			at = from.Add(p.At.Sub(from) / step * step)
		}
		n := max(p.Count, 1)
		if len(out) > 0 && out[len(out)-1].At.Equal(at) {
			last := &out[len(out)-1]
			sum += p.Avg * float64(n)
			last.Count += n
			last.Value = sum / float64(last.Count)
			last.Min, last.Max = min(last.Min, p.Min), max(last.Max, p.Max)
			continue
		}
		sum = p.Avg * float64(n)
		out = append(out, Point{At: at, Value: p.Avg, Min: p.Min, Max: p.Max, Count: n})
	}
	return out
}

// Latest returns the newest value of every series of a server (every server when serverID is empty).
func (m *Service) Latest(ctx context.Context, serverID string) ([]monitor.Sample, error) {
	return m.store.MetricLatest(ctx, serverID)
}

// Maintain applies the retention policy in the tenant of ctx: folds old raw samples into 5-minute
// rollups, deletes expired rollups and (PostgreSQL) creates the coming months' partitions.
func (m *Service) Maintain(ctx context.Context) (MaintainResult, error) {
	return m.store.MetricMaintain(ctx, MaintainParams{Now: m.now(), RawRetention: m.cfg.RawRetention,
		RollupRetention: m.cfg.RollupRetention, RollupStep: m.cfg.RollupStep, MonthsAhead: m.cfg.MonthsAhead})
}

// CollectDue collects every due source of the tenant in ctx and returns how many it collected. Each
// source is claimed first, so with several replicas running the loop one of them collects it. A source's
// failure is recorded on it (last_error), not returned.
func (m *Service) CollectDue(ctx context.Context) (int, error) {
	list, err := m.store.MetricSourceList(ctx)
	if err != nil {
		return 0, err
	}
	now := m.now()
	var wg sync.WaitGroup
	n := 0
	for i := range list {
		if !list[i].Enabled {
			continue
		}
		won, err := m.store.MetricSourceClaim(ctx, list[i].ID, now, now.Add(time.Duration(list[i].IntervalSeconds)*time.Second))
		if err != nil {
			return n, err
		}
		if !won {
			continue
		}
		n++
		wg.Go(func() {
			if _, err := m.Collect(ctx, &list[i]); err != nil && !errors.Is(err, context.Canceled) {
				m.log.WarnContext(ctx, "collect metrics", slog.String("source_id", list[i].ID), slog.String("error", err.Error()))
			}
		})
	}
	wg.Wait()
	return n, nil
}

// Collect reads source s once, stores and hands on what it read, and records the outcome on the source.
// Commands and alerts are audited as the actor in ctx (the collector loop acts as system "monitor").
func (m *Service) Collect(ctx context.Context, s *Source) ([]monitor.Sample, error) {
	cctx, cancel := context.WithTimeout(ctx, m.cfg.CollectTimeout)
	defer cancel()
	var samples []monitor.Sample
	var err error
	switch s.Type {
	case SourceSSH:
		samples, err = m.collectSSH(cctx, s)
	case SourceNodeExporter:
		samples, err = m.collectNode(cctx, s)
	case SourcePrometheus:
		samples, err = m.collectProm(cctx, s)
	default:
		err = fmt.Errorf("unknown source type %q", s.Type)
	}
	if derr := m.deliver(ctx, samples); derr != nil {
		err = errors.Join(err, derr)
	}
	at := m.now()
	s.LastCollectedAt, s.LastError = &at, ""
	if err != nil {
		s.LastError = err.Error()
	}
	// Recorded even when the caller has gone: the collection happened.
	if uerr := m.store.MetricSourceCollected(context.WithoutCancel(ctx), s.ID, at, s.LastError); uerr != nil && !errs.Is(uerr, errs.NotFound) {
		err = errors.Join(err, uerr)
	}
	return samples, err
}

func (m *Service) prevKey(ctx context.Context, sourceID, serverID string) string {
	tid, _ := tenant.ID(ctx)
	return tid + "/" + sourceID + "/" + serverID
}

// reading turns a host reading into samples against the previous reading of the same source and server.
func (m *Service) reading(ctx context.Context, sourceID, serverID string, h *HostStats, at time.Time) []monitor.Sample {
	key := m.prevKey(ctx, sourceID, serverID)
	m.mu.Lock()
	prev, ok := m.prev[key]
	m.prev[key] = prevReading{stats: h, at: at}
	m.mu.Unlock()
	var p *HostStats
	var elapsed time.Duration
	if ok {
		p, elapsed = prev.stats, at.Sub(prev.at)
	}
	return HostSamples(serverID, p, h, at, elapsed)
}

// collectSSH runs the one /proc and df command on the source's servers through the guarded executor.
func (m *Service) collectSSH(ctx context.Context, s *Source) ([]monitor.Sample, error) {
	var mu sync.Mutex
	var out []monitor.Sample
	var failed []string
	_, err := m.fleet.Exec(ctx, inventory.ExecRequest{Selector: *s.Selector, Command: procCommand, Timeout: m.cfg.CollectTimeout,
		Parallelism: 50, SessionID: "monitor:" + s.ID}, func(r inventory.ExecResult) {
		h, perr := ParseProc(r.Stdout)
		if perr != nil {
			mu.Lock()
			failed = append(failed, fmt.Sprintf("%s: %s %s%s", r.Server, r.Status, r.Error, firstLine(r.Stderr)))
			mu.Unlock()
			return
		}
		samples := m.reading(ctx, s.ID, r.ServerID, h, m.now())
		mu.Lock()
		out = append(out, samples...)
		mu.Unlock()
	})
	if err != nil {
		return out, err
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return out, fmt.Errorf("%d server(s) gave no metrics: %s", len(failed), strings.Join(failed, "; "))
	}
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s != "" {
		return " " + s
	}
	return ""
}

func (m *Service) collectNode(ctx context.Context, s *Source) ([]monitor.Sample, error) {
	if m.node == nil {
		return nil, errs.New(errs.Unavailable, "node_exporter scraping is not available in this process")
	}
	h, err := m.node.Scrape(ctx, s.URL)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", s.URL, err)
	}
	return m.reading(ctx, s.ID, s.ServerID, h, m.now()), nil
}

// collectProm runs the source's queries and maps each result series to a server: the pinned server, or
// the one whose name or host equals the ServerLabel value (without its port).
func (m *Service) collectProm(ctx context.Context, s *Source) ([]monitor.Sample, error) {
	if m.prom == nil {
		return nil, errs.New(errs.Unavailable, "Prometheus queries are not available in this process")
	}
	queries := s.Queries
	if len(queries) == 0 {
		queries = DefaultPromQueries
	}
	byKey := map[string]string{}
	if s.ServerID == "" {
		servers, err := m.fleet.Servers(ctx, inventory.Selector{})
		if err != nil {
			return nil, err
		}
		for _, srv := range servers {
			byKey[srv.Name], byKey[srv.Host] = srv.ID, srv.ID
		}
	}
	serverOf := func(r PromSample) string {
		if s.ServerID != "" {
			return s.ServerID
		}
		v := r.Labels[s.ServerLabel]
		if host, _, err := net.SplitHostPort(v); err == nil {
			v = host
		}
		return byKey[v]
	}
	now := m.now()
	interval := time.Duration(s.IntervalSeconds) * time.Second
	var out []monitor.Sample
	var problems []error
	for _, q := range queries {
		if err := m.backfillProm(ctx, s, q, now, interval, serverOf); err != nil {
			problems = append(problems, fmt.Errorf("%s backfill: %w", q.Metric, err))
		}
		res, err := m.prom.Query(ctx, s.URL, q.Query, now)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", q.Metric, err))
			continue
		}
		for _, r := range res {
			if id := serverOf(r); id != "" {
				out = append(out, monitor.Sample{ServerID: id, Metric: q.Metric, Label: r.Labels[q.LabelFrom], Value: round2(r.Value), At: now})
			}
		}
	}
	return out, errors.Join(problems...)
}

// maxBackfill bounds how far back a Prometheus source fills a gap in collection.
const maxBackfill = 6 * time.Hour

// backfillProm fills a gap left while IT0 was not collecting (down, or the source failing) from
// Prometheus' own history with a range query at the source's interval. Backfilled samples are stored but
// not evaluated: alerts judge the present.
func (m *Service) backfillProm(ctx context.Context, s *Source, q PromQuery, now time.Time, interval time.Duration, serverOf func(PromSample) string) error {
	if s.LastCollectedAt == nil || now.Sub(*s.LastCollectedAt) < 2*interval {
		return nil
	}
	from := s.LastCollectedAt.Add(interval)
	if now.Sub(from) > maxBackfill {
		from = now.Add(-maxBackfill)
	}
	res, err := m.prom.QueryRange(ctx, s.URL, q.Query, from, now.Add(-interval), interval)
	if err != nil {
		return err
	}
	var fill []monitor.Sample
	for _, r := range res {
		if id := serverOf(r); id != "" {
			fill = append(fill, monitor.Sample{ServerID: id, Metric: q.Metric, Label: r.Labels[q.LabelFrom], Value: round2(r.Value), At: r.At.UTC().Truncate(time.Microsecond)})
		}
	}
	if len(fill) == 0 {
		return nil
	}
	return m.store.MetricInsert(ctx, fill)
}

// Run collects due sources of every tenant each Tick and applies the retention policy hourly, until ctx
// ends.
func (m *Service) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Tick)
	defer t.Stop()
	var lastMaintain time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tenants, err := m.cfg.Tenants(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.log.ErrorContext(ctx, "list tenants", slog.String("error", err.Error()))
			}
			continue
		}
		maintain := m.now().Sub(lastMaintain) >= time.Hour
		for _, id := range tenants {
			tctx := audit.WithActor(tenant.WithID(ctx, id), audit.Actor{Type: audit.ActorSystem, ID: "monitor"})
			if _, err := m.CollectDue(tctx); err != nil && ctx.Err() == nil {
				m.log.ErrorContext(tctx, "collect due sources", slog.String("tenant_id", id), slog.String("error", err.Error()))
			}
			if maintain {
				mctx, cancel := context.WithTimeout(tctx, 10*time.Minute)
				if _, err := m.Maintain(mctx); err != nil && ctx.Err() == nil {
					m.log.ErrorContext(tctx, "metric retention", slog.String("tenant_id", id), slog.String("error", err.Error()))
				}
				cancel()
			}
		}
		if maintain {
			lastMaintain = m.now()
		}
	}
}
