package agentapi

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

// StreamRuns carries the agent.run_ended events (outbox rows written with the session's status change).
const StreamRuns = "events.agent_runs"

// EventRunEnded is the type of the event a session's run end writes.
const EventRunEnded = "agent.run_ended"

// RunEnds reports whether a session moving to status ends a run (the run completed, failed, was
// cancelled or paused for an approval). The store writes an agent.run_ended event, in the same
// transaction, whenever a session's status changes to one of these.
func RunEnds(status string) bool {
	switch status {
	case "awaiting_approval", "completed", "failed", "cancelled":
		return true
	}
	return false
}

// RunEnded is a run end as the event carries it: what a module that follows sessions (standing orders)
// needs, so it never reads the agent's tables.
type RunEnded struct {
	TenantID  string `json:"-"`
	SessionID string `json:"-"`
	// Run numbers the session's run ends (1, 2, …): a handler remembers the last it applied, so a
	// redelivered event, or an older one arriving late, is applied once.
	Run      int       `json:"run"`
	Status   string    `json:"status"`
	Engine   string    `json:"engine"`
	Origin   string    `json:"origin"`
	OriginID string    `json:"origin_id"`
	Summary  string    `json:"summary,omitempty"`
	Error    string    `json:"error,omitempty"`
	Time     time.Time `json:"-"`
}

// ErrBadEvent is returned by ParseRunEnded for a payload that is not an agent.run_ended event.
var ErrBadEvent = errors.New("not an agent.run_ended event")

// ParseRunEnded decodes an agent.run_ended event published on the bus.
func ParseRunEnded(b []byte) (RunEnded, error) {
	var env outbox.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return RunEnded{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	if env.Type != EventRunEnded {
		return RunEnded{}, fmt.Errorf("%w: type %q", ErrBadEvent, env.Type)
	}
	if env.TenantID == "" || env.Subject == "" {
		return RunEnded{}, fmt.Errorf("%w: no tenant or session id", ErrBadEvent)
	}
	var r RunEnded
	if err := json.Unmarshal(env.Data, &r); err != nil {
		return RunEnded{}, fmt.Errorf("%w: data: %v", ErrBadEvent, err)
	}
	if r.Run <= 0 || !RunEnds(r.Status) {
		return RunEnded{}, fmt.Errorf("%w: run %d, status %q", ErrBadEvent, r.Run, r.Status)
	}
	r.TenantID, r.SessionID, r.Time = env.TenantID, env.Subject, env.Time
	return r, nil
}

// RunHandler handles one agent.run_ended event; ctx carries the event's tenant. Delivery is at least
// once: a handler must be idempotent (RunEnded.Run tells events apart). An error leaves the event
// pending, to be handed out again.
type RunHandler func(ctx context.Context, e RunEnded) error

// ConsumeRuns handles the events of StreamRuns as member name of consumer group group (one group per
// module: each module handles every event once, whichever replica runs it) until ctx ends. Payloads that
// are no run-ended event are logged and acknowledged: handing them out again would not make them readable.
func ConsumeRuns(ctx context.Context, b bus.Bus, group, name string, log *slog.Logger, h RunHandler) error {
	return outbox.Consume(ctx, b, StreamRuns, group, name, log, func(data []byte) (RunEnded, string, error) {
		r, err := ParseRunEnded(data)
		return r, r.TenantID, err
	}, h)
}
