package checks

import "github.com/prometheus/client_golang/prometheus"

// checkMetrics are the health checker's own metrics on /metrics.
type checkMetrics struct {
	runs     *prometheus.CounterVec
	failed   prometheus.Counter
	lateness prometheus.Histogram
}

func newCheckMetrics(reg prometheus.Registerer) checkMetrics {
	m := checkMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_checks_run_total",
			Help: "Health check runs by check type and result (up or down)."}, []string{"type", "result"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "it0_checks_failed_total",
			Help: "Health check runs whose result was down."}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "it0_check_lateness_seconds",
			Help:    "How long after its scheduled time each health check started.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.failed, m.lateness)
	}
	return m
}

func (m checkMetrics) observe(t Type, result State) {
	m.runs.WithLabelValues(string(t), string(result)).Inc()
	if result == Down {
		m.failed.Inc()
	}
}
