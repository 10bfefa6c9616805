package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetrics: the it0_bus_* counters follow what the bus does, and the watched group's pending and lag
// gauges are read from the bus at scrape time.
func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := bus.NewMetrics(reg)
	b := bus.NewMemory(bus.Config{Metrics: m, ClaimIdle: 50 * time.Millisecond})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 3 {
		if _, err := b.Publish(ctx, "s", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	m.Watch(b, "s", "g")
	// The group does not exist yet: the gauges read zero.
	if v := gauge(t, reg, "it0_bus_lag"); v != 0 {
		t.Errorf("lag before the group exists: %v", v)
	}
	handled := make(chan struct{}, 3)
	failed := false
	go b.Consume(ctx, bus.Consumer{Stream: "s", Group: "g", Name: "c"}, func(context.Context, bus.Message) error {
		if !failed {
			failed = true
			return errors.New("first delivery fails")
		}
		handled <- struct{}{}
		return nil
	})
	for range 3 {
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			t.Fatal("not every message was handled")
		}
	}
	// The handler signals before it returns, and the ack follows the return: wait for the last ack.
	for deadline := time.Now().Add(10 * time.Second); gauge(t, reg, "it0_bus_pending") != 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for name, want := range map[string]float64{"it0_bus_published_total": 3, "it0_bus_failed_total": 1, "it0_bus_reclaimed_total": 1,
		"it0_bus_pending": 0, "it0_bus_lag": 0} {
		if v := gauge(t, reg, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if _, err := b.Publish(context.Background(), "s", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v := gauge(t, reg, "it0_bus_lag"); v != 1 {
		t.Errorf("lag with one message not handed out: %v", v)
	}
}

// gauge returns the value of the one series of metric name in reg (counter or gauge), 0 when absent.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name || len(f.GetMetric()) == 0 {
			continue
		}
		m := f.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return 0
}
