package bus

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what a bus does (it0_bus_*). The zero value counts nothing.
type Metrics struct {
	published *prometheus.CounterVec
	handled   *prometheus.CounterVec
	failed    *prometheus.CounterVec
	reclaimed *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	// delay and oldest are the outbox relay's: how long domain events waited before they were published.
	delay  *prometheus.HistogramVec
	oldest prometheus.Gauge

	mu     sync.Mutex
	bus    Bus
	groups map[[2]string]struct{} // stream, group
}

// NewMetrics registers the bus metrics with reg: counters of published, handled, failed, reclaimed and
// dropped messages, and gauges of each consumer group's pending messages and lag, read from the bus when
// scraped (see Watch).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_bus_" + name, Help: help}, labels)
	}
	m := &Metrics{
		published: counter("published_total", "Messages published on a stream.", "stream"),
		handled:   counter("handled_total", "Messages a consumer group handled and acknowledged.", "stream", "group"),
		failed:    counter("failed_total", "Handler errors (the message stays pending and is handed out again).", "stream", "group"),
		reclaimed: counter("reclaimed_total", "Pending messages taken over after their consumer went idle or died.", "stream", "group"),
		dropped:   counter("dropped_total", "Topic messages a slow subscriber missed.", "topic"),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "it0_bus_outbox_delay_seconds",
			Help:    "Time from a domain event's write into the outbox to its publication on the bus.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"stream"}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "it0_bus_outbox_oldest_seconds",
			Help: "Age of the oldest domain event this process's relay failed to publish in its last pass (0: none waits)."}),
		groups: map[[2]string]struct{}{},
	}
	reg.MustRegister(m.published, m.handled, m.failed, m.reclaimed, m.dropped, m.delay, m.oldest, m)
	return m
}

// Watch makes the metrics report group's pending messages and lag on stream, read from b at each scrape.
func (m *Metrics) Watch(b Bus, stream, group string) {
	if m == nil || m.groups == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bus = b
	m.groups[[2]string{stream, group}] = struct{}{}
}

var (
	pendingDesc = prometheus.NewDesc("it0_bus_pending", "Messages handed out to a consumer group and not yet acknowledged.",
		[]string{"stream", "group"}, nil)
	lagDesc = prometheus.NewDesc("it0_bus_lag", "Messages of a stream not yet handed out to a consumer group.",
		[]string{"stream", "group"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- lagDesc
}

// Collect implements prometheus.Collector: it reads each watched group's backlog from the bus.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	b := m.bus
	groups := make([][2]string, 0, len(m.groups))
	for g := range m.groups {
		groups = append(groups, g)
	}
	m.mu.Unlock()
	if b == nil {
		return
	}
	for _, g := range groups {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := b.Stats(ctx, g[0], g[1])
		cancel()
		if err != nil {
			continue // an unreachable bus shows in /readyz; a scrape reports what it can
		}
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(st.Pending), g[0], g[1])
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(st.Lag), g[0], g[1])
	}
}

func add(m *Metrics, v func(*Metrics) *prometheus.CounterVec, n int, labels ...string) {
	if m != nil && v(m) != nil && n > 0 {
		v(m).WithLabelValues(labels...).Add(float64(n))
	}
}

// Published counts n messages published on stream.
func (m *Metrics) Published(n int, stream string) {
	add(m, func(m *Metrics) *prometheus.CounterVec { return m.published }, n, stream)
}

// Handled counts n messages group handled.
func (m *Metrics) Handled(n int, stream, group string) {
	add(m, func(m *Metrics) *prometheus.CounterVec { return m.handled }, n, stream, group)
}

// Failed counts n handler errors.
func (m *Metrics) Failed(n int, stream, group string) {
	add(m, func(m *Metrics) *prometheus.CounterVec { return m.failed }, n, stream, group)
}

// Reclaimed counts n pending messages taken over.
func (m *Metrics) Reclaimed(n int, stream, group string) {
	add(m, func(m *Metrics) *prometheus.CounterVec { return m.reclaimed }, n, stream, group)
}

// Dropped counts n topic messages a slow subscriber missed.
func (m *Metrics) Dropped(n int, topic string) {
	add(m, func(m *Metrics) *prometheus.CounterVec { return m.dropped }, n, topic)
}

// OutboxDelay records that an event of stream waited d in the outbox before it was published.
func (m *Metrics) OutboxDelay(stream string, d time.Duration) {
	if m != nil && m.delay != nil {
		m.delay.WithLabelValues(stream).Observe(d.Seconds())
	}
}

// OutboxOldest sets the age of the oldest event the relay could not publish (0 when none waits).
func (m *Metrics) OutboxOldest(d time.Duration) {
	if m != nil && m.oldest != nil {
		m.oldest.Set(max(d, 0).Seconds())
	}
}
