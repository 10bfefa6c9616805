package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/outbox"
)

// StreamEvents carries the monitor's domain events (outbox rows written in the transaction of the change).
const StreamEvents = "events.monitor"

// Types of monitor events.
const (
	// EventCheckTransitioned: a health check changed state; the subject is the transition's id and the
	// data holds the check, its server and the states (checks.TransitionFact).
	EventCheckTransitioned = "check.transitioned"
	// EventAlertFired and EventAlertResolved: an alert event opened or closed; the subject is the alert
	// event's id and the data is the alert event.
	EventAlertFired    = "alert.fired"
	EventAlertResolved = "alert.resolved"
)

// Event is a monitor event as a subscriber gets it.
type Event struct {
	Type     string
	TenantID string
	Subject  string
	// ServerID is the server the fact is about ("" when none).
	ServerID string
	// Data is the fact's data, as written.
	Data json.RawMessage
	Time time.Time
}

// Key names the event uniquely in its tenant (a handler keys its idempotency on it).
func (e Event) Key() string { return e.Type + ":" + e.Subject }

// ErrBadEvent is returned by ParseEvent for a payload that is not a monitor event.
var ErrBadEvent = errors.New("not a monitor event")

// ParseEvent decodes a monitor event published on the bus.
func ParseEvent(b []byte) (Event, error) {
	var env outbox.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	switch env.Type {
	case EventCheckTransitioned, EventAlertFired, EventAlertResolved:
	default:
		return Event{}, fmt.Errorf("%w: type %q", ErrBadEvent, env.Type)
	}
	if env.TenantID == "" || env.Subject == "" {
		return Event{}, fmt.Errorf("%w: no tenant or subject", ErrBadEvent)
	}
	var data struct {
		ServerID string `json:"server_id"`
	}
	if len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, &data); err != nil {
			return Event{}, fmt.Errorf("%w: data: %v", ErrBadEvent, err)
		}
	}
	return Event{Type: env.Type, TenantID: env.TenantID, Subject: env.Subject, ServerID: data.ServerID, Data: env.Data, Time: env.Time}, nil
}

// Handler handles one monitor event; ctx carries the event's tenant. Delivery is at least once: a handler
// must be idempotent (Event.Key tells events apart). An error leaves the event pending, to be handed out
// again.
type Handler func(ctx context.Context, e Event) error

// Consume handles the events of StreamEvents as member name of consumer group group (one group per
// module) until ctx ends. Payloads that are no monitor event are logged and acknowledged.
func Consume(ctx context.Context, b bus.Bus, group, name string, log *slog.Logger, h Handler) error {
	return outbox.Consume(ctx, b, StreamEvents, group, name, log, func(data []byte) (Event, string, error) {
		e, err := ParseEvent(data)
		return e, e.TenantID, err
	}, h)
}
