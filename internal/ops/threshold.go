package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor"
)

// ThresholdTracker turns metric samples into threshold firings: a condition must hold on every sample for
// its duration before it fires, fires once, and re-arms only after a sample where it does not hold. It
// keeps its state in memory: after a restart a condition must hold for a full duration again, which can
// only delay a firing, never double one.
type ThresholdTracker struct {
	mu    sync.Mutex
	since map[string]time.Time // key → when the condition started to hold
	fired map[string]bool
}

// NewThresholdTracker returns an empty tracker.
func NewThresholdTracker() *ThresholdTracker {
	return &ThresholdTracker{since: map[string]time.Time{}, fired: map[string]bool{}}
}

// Observe feeds one sample for key (an order and a server) and reports whether the condition fires now.
func (t *ThresholdTracker) Observe(key string, c ThresholdCondition, value float64, at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !monitor.Holds(value, c.Operator, c.Value) {
		delete(t.since, key)
		delete(t.fired, key)
		return false
	}
	start, ok := t.since[key]
	if !ok {
		t.since[key], start = at, at
	}
	if t.fired[key] || at.Sub(start) < time.Duration(c.DurationSeconds)*time.Second {
		return false
	}
	t.fired[key] = true
	return true
}

// ObserveMetric feeds a metric sample of a server to every active threshold order of the tenant in ctx
// that watches that metric on that server, and triggers the orders whose condition has held long enough.
// It returns the executions it started.
func (s *Orders) ObserveMetric(ctx context.Context, serverID, metric string, value float64, at time.Time) ([]*Execution, error) {
	list, err := s.store.StandingOrderList(ctx, "active")
	if err != nil {
		return nil, err
	}
	var started []*Execution
	for i := range list {
		o := &list[i]
		c := o.Trigger.ThresholdCondition
		if o.Trigger.Type != "threshold" || c == nil || c.MetricType != metric {
			continue
		}
		ids, err := s.targetServers(ctx, o)
		if err != nil || !contains(ids, serverID) {
			continue
		}
		if !s.thresholds.Observe(tenantOf(ctx)+"/"+o.ID+"/"+serverID, *c, value, at) {
			continue
		}
		trig, _ := json.Marshal(map[string]any{"server_id": serverID, "metric": metric, "value": value,
			"condition": fmt.Sprintf("%s %s %g for %ds", metric, c.Operator, c.Value, c.DurationSeconds)})
		e, err := s.Trigger(ctx, o.ID, "threshold", trig)
		if err != nil {
			return started, err
		}
		started = append(started, e)
	}
	return started, nil
}

// HandleEvent triggers every active order of the tenant in ctx waiting for eventType; when serverID is set,
// only orders whose targets include it.
func (s *Orders) HandleEvent(ctx context.Context, eventType, serverID string, data json.RawMessage) ([]*Execution, error) {
	return s.handleEvent(ctx, "", eventType, serverID, data)
}

// HandleEventOnce is HandleEvent for a domain event delivered at least once: key names the event (unique
// in the tenant), and an order it already triggered is not triggered again.
func (s *Orders) HandleEventOnce(ctx context.Context, key, eventType, serverID string, data json.RawMessage) ([]*Execution, error) {
	if key == "" {
		return nil, errs.Invalidf("key", "an event delivered at least once needs a key").WithHint("pass the event's unique key")
	}
	return s.handleEvent(ctx, key, eventType, serverID, data)
}

func (s *Orders) handleEvent(ctx context.Context, key, eventType, serverID string, data json.RawMessage) ([]*Execution, error) {
	if !contains(EventTypes, eventType) {
		return nil, errInvalidEvent(eventType)
	}
	list, err := s.store.StandingOrderList(ctx, "active")
	if err != nil {
		return nil, err
	}
	var started []*Execution
	for i := range list {
		o := &list[i]
		if o.Trigger.Type != "event" || o.Trigger.EventType != eventType {
			continue
		}
		if serverID != "" {
			if ids, err := s.targetServers(ctx, o); err != nil || !contains(ids, serverID) {
				continue
			}
		}
		trig, _ := json.Marshal(map[string]any{"event_type": eventType, "server_id": serverID, "data": data})
		e, err := s.trigger(ctx, o.ID, "event", trig, key)
		if errors.Is(err, ErrTriggered) {
			continue
		}
		if err != nil {
			return started, err
		}
		started = append(started, e)
	}
	return started, nil
}
