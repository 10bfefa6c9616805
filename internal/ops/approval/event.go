package approval

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

// Types of approval events, published on outbox.StreamApprovals.
const (
	EventRequested = "approval.requested"
	EventDecided   = "approval.decided"
)

// Event is an approval event as a subscriber gets it: what happened to which approval, in which tenant.
// It carries ids and the approval's state at the moment; a handler loads what else it needs.
type Event struct {
	Type       string
	TenantID   string
	ApprovalID string
	SessionID  string
	Status     string
	RiskLevel  int
	Origin     string
	Time       time.Time
}

// Fact is the data of an approval event (what the store writes with the change).
func Fact(a *Approval) map[string]any {
	return map[string]any{"session_id": a.SessionID, "risk_level": a.RiskLevel, "status": a.Status, "origin": a.Origin,
		"expires_at": a.ExpiresAt}
}

// ErrBadEvent is returned by ParseEvent for a payload that is not an approval event.
var ErrBadEvent = errors.New("not an approval event")

// ParseEvent decodes an approval event published on the bus.
func ParseEvent(b []byte) (Event, error) {
	var env outbox.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	if env.Type != EventRequested && env.Type != EventDecided {
		return Event{}, fmt.Errorf("%w: type %q", ErrBadEvent, env.Type)
	}
	if env.TenantID == "" || env.Subject == "" {
		return Event{}, fmt.Errorf("%w: no tenant or approval id", ErrBadEvent)
	}
	var data struct {
		SessionID string `json:"session_id"`
		Status    string `json:"status"`
		RiskLevel int    `json:"risk_level"`
		Origin    string `json:"origin"`
	}
	if len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, &data); err != nil {
			return Event{}, fmt.Errorf("%w: data: %v", ErrBadEvent, err)
		}
	}
	return Event{Type: env.Type, TenantID: env.TenantID, ApprovalID: env.Subject, SessionID: data.SessionID, Status: data.Status,
		RiskLevel: data.RiskLevel, Origin: data.Origin, Time: env.Time}, nil
}

// Handler handles one approval event; ctx carries the event's tenant. Delivery is at least once: a handler
// must be idempotent. An error leaves the event pending, to be handed out again.
type Handler func(ctx context.Context, e Event) error

// Consume handles the approval events of stream outbox.StreamApprovals as member name of consumer group
// group (one group per module: each module handles every event once, whichever replica runs it) until
// ctx ends. Payloads that are no approval event are logged and acknowledged: handing them out again
// would not make them readable.
func Consume(ctx context.Context, b bus.Bus, group, name string, log *slog.Logger, h Handler) error {
	return outbox.Consume(ctx, b, outbox.StreamApprovals, group, name, log, func(data []byte) (Event, string, error) {
		e, err := ParseEvent(data)
		return e, e.TenantID, err
	}, h)
}
