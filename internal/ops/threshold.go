package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/monitor"
)

// ThresholdState is what a threshold order remembers of one server's samples. It is stored per order and
// server (OrderStore.ThresholdUpdate), so any replica judges the next sample and a restart forgets nothing.
type ThresholdState struct {
	// Since is when the condition started to hold on every sample since (zero: it does not hold).
	Since time.Time
	// Fired is the Since of the last hold that fired: a hold fires once.
	Fired time.Time
	// LastAt is the newest sample judged; an older one that arrives late is ignored.
	LastAt time.Time
}

// Observe judges one sample: the condition must hold on every sample for its duration before it is due,
// is due once per hold, and re-arms only after a sample where it does not hold. It reports whether the
// order is due to fire now; the caller records the firing (Fired = Since) once the run is triggered.
func (st *ThresholdState) Observe(c ThresholdCondition, value float64, at time.Time) bool {
	if !st.LastAt.IsZero() && !at.After(st.LastAt) {
		return false
	}
	st.LastAt = at
	if !monitor.Holds(value, c.Operator, c.Value) {
		st.Since = time.Time{}
		return false
	}
	if st.Since.IsZero() {
		st.Since = at
	}
	return !st.Fired.Equal(st.Since) && at.Sub(st.Since) >= time.Duration(c.DurationSeconds)*time.Second
}

// ObserveMetric feeds one metric sample of a server to the tenant's threshold orders (ObserveSamples).
func (s *Orders) ObserveMetric(ctx context.Context, serverID, metric string, value float64, at time.Time) ([]*Execution, error) {
	return s.ObserveSamples(ctx, []monitor.Sample{{ServerID: serverID, Metric: metric, Value: value, At: at}})
}

// ObserveSamples feeds metric samples (one per server and metric: monitor.Highest) to every active
// threshold order of the tenant in ctx that watches their metric on their server, and triggers the orders
// whose condition has held long enough. A firing is keyed on the order, the server and the start of the
// hold, so a sample judged twice (a redelivered batch, two replicas) never starts a second run. It returns
// the executions it started.
func (s *Orders) ObserveSamples(ctx context.Context, samples []monitor.Sample) ([]*Execution, error) {
	list, err := s.store.StandingOrderList(ctx, "active")
	if err != nil {
		return nil, err
	}
	var started []*Execution
	for i := range list {
		o := &list[i]
		c := o.Trigger.ThresholdCondition
		if o.Trigger.Type != "threshold" || c == nil {
			continue
		}
		var servers []string // resolved once per order, when a sample needs them
		for _, smp := range samples {
			if smp.Metric != c.MetricType {
				continue
			}
			if servers == nil {
				if servers, err = s.targetServers(ctx, o); err != nil {
					return started, err
				}
			}
			if !contains(servers, smp.ServerID) {
				continue
			}
			e, err := s.observe(ctx, o, smp)
			if err != nil {
				return started, err
			}
			if e != nil {
				started = append(started, e)
			}
		}
	}
	return started, nil
}

// observe judges one sample for order o and triggers it when it is due.
func (s *Orders) observe(ctx context.Context, o *StandingOrder, smp monitor.Sample) (*Execution, error) {
	c := o.Trigger.ThresholdCondition
	var due bool
	var since time.Time
	if err := s.store.ThresholdUpdate(ctx, o.ID, smp.ServerID, func(st *ThresholdState) {
		due, since = st.Observe(*c, smp.Value, smp.At), st.Since
	}); err != nil {
		return nil, fmt.Errorf("threshold state of %s on %s: %w", o.ID, smp.ServerID, err)
	}
	if !due {
		return nil, nil
	}
	trig, _ := json.Marshal(map[string]any{"server_id": smp.ServerID, "metric": smp.Metric, "value": smp.Value,
		"condition": fmt.Sprintf("%s %s %g for %ds", smp.Metric, c.Operator, c.Value, c.DurationSeconds),
		"since":     since})
	e, err := s.trigger(ctx, o.ID, "threshold", trig, "threshold:"+smp.ServerID+":"+since.UTC().Format(time.RFC3339Nano))
	switch {
	case errors.Is(err, ErrTriggered): // judged due before (another replica, a redelivered batch)
		e = nil
	case errs.Is(err, errs.Conflict): // outside its validity window: nothing to run, nothing to retry
		return nil, nil
	case err != nil:
		return nil, err
	}
	// Recorded after the trigger: a crash in between judges the next sample due again, and the key makes
	// that a no-op.
	if err := s.store.ThresholdUpdate(ctx, o.ID, smp.ServerID, func(st *ThresholdState) {
		if st.Since.Equal(since) {
			st.Fired = since
		}
	}); err != nil {
		return e, fmt.Errorf("record the firing of %s on %s: %w", o.ID, smp.ServerID, err)
	}
	return e, nil
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
