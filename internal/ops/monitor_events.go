package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/it0/it0/internal/monitor"
	"github.com/it0/it0/internal/monitor/checks"
)

// Event types of standing orders that the monitor's domain events trigger.
const (
	EventCheckFailed   = "check_failed"
	EventAlertFired    = "alert_fired"
	EventAlertResolved = "alert_resolved"
)

// OnMonitorEvent is ops' subscription to the monitor's events (stream monitor.StreamEvents): a check going
// down triggers the active orders waiting for check_failed, an alert firing or resolving those waiting for
// alert_fired or alert_resolved. Delivery is at least once: each order runs once per event (keyed on
// Event.Key), however often the event arrives. An error leaves the event pending, to be handed out again.
func (s *Orders) OnMonitorEvent(ctx context.Context, e monitor.Event) error {
	var kind string
	switch e.Type {
	case monitor.EventCheckTransitioned:
		var t struct {
			To checks.State `json:"to"`
		}
		if err := json.Unmarshal(e.Data, &t); err != nil {
			if s.log != nil {
				s.log.ErrorContext(ctx, "unreadable check transition", slog.String("key", e.Key()), slog.String("error", err.Error()))
			}
			return nil // handing it out again would not make it readable
		}
		if t.To != checks.Down {
			return nil
		}
		kind = EventCheckFailed
	case monitor.EventAlertFired:
		kind = EventAlertFired
	case monitor.EventAlertResolved:
		kind = EventAlertResolved
	default:
		return nil
	}
	if _, err := s.HandleEventOnce(ctx, e.Key(), kind, e.ServerID, e.Data); err != nil {
		return fmt.Errorf("deliver %s (%s) to standing orders: %w", kind, e.Key(), err)
	}
	return nil
}
