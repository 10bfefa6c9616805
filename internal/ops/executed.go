package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/outbox"
)

// StreamEvents carries the standing orders' domain events (outbox rows written in the transaction of the
// change).
const StreamEvents = "events.orders"

// EventExecuted: a run end of a standing order was mirrored onto its execution (it completed, failed,
// was stopped or waits for a human). The subject is "<execution id>:<run>" and the data is Executed. It
// is written in the transaction of the execution's update (ExecutionMirror), so a crash cannot lose the
// run's report: the reports subscription (OnExecuted) sends it.
const EventExecuted = "standing_order.executed"

// Executed is the data of an EventExecuted event: the execution as the run end left it and how the run
// is reported.
type Executed struct {
	Execution *Execution `json:"execution"`
	// Run is the session's run end that was mirrored.
	Run int `json:"run"`
	// Report is the report kind (ReportSilent, ReportActed…).
	Report string `json:"report"`
	// ApprovedBy names the people who approved something in the run.
	ApprovedBy []string `json:"approved_by,omitempty"`
}

// ErrBadExecuted is returned by ParseExecuted for a payload that is not a standing_order.executed event.
var ErrBadExecuted = errors.New("not a standing_order.executed event")

// ParseExecuted decodes a standing_order.executed event published on the bus, and its tenant.
func ParseExecuted(b []byte) (Executed, string, error) {
	var env outbox.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Executed{}, "", fmt.Errorf("%w: %v", ErrBadExecuted, err)
	}
	if env.Type != EventExecuted || env.TenantID == "" {
		return Executed{}, "", fmt.Errorf("%w: type %q, tenant %q", ErrBadExecuted, env.Type, env.TenantID)
	}
	var x Executed
	if err := json.Unmarshal(env.Data, &x); err != nil || x.Execution == nil || x.Execution.ID == "" {
		return Executed{}, "", fmt.Errorf("%w: data: %v", ErrBadExecuted, err)
	}
	return x, env.TenantID, nil
}

// ConsumeExecuted handles the standing_order.executed events as member name of consumer group group until
// ctx ends; h runs with the event's tenant in its ctx. Payloads that are no such event are logged and
// acknowledged (other facts may share the stream).
func ConsumeExecuted(ctx context.Context, b bus.Bus, group, name string, log *slog.Logger, h func(context.Context, Executed) error) error {
	return outbox.Consume(ctx, b, StreamEvents, group, name, log, ParseExecuted, h)
}

// OnExecuted is the reports subscription (group reports) to the standing_order.executed events: it tells
// people about the run as its report kind requires. Delivery is at least once and so is sending: the
// notice's key, so-report:<execution id>, is delivered once by comm however often it is sent. An error
// leaves the event pending, to be handed out again.
func (s *Orders) OnExecuted(ctx context.Context, x Executed) error {
	if x.Execution == nil || x.Report == ReportSilent || x.Report == ReportEscalate || s.notifier == nil {
		return nil
	}
	o, err := s.store.StandingOrderGet(ctx, x.Execution.OrderID)
	if errs.Is(err, errs.NotFound) {
		return nil // deleted with its tenant: nobody to tell
	}
	if err != nil {
		return fmt.Errorf("get standing order %s: %w", x.Execution.OrderID, err)
	}
	err = s.report(ctx, o, x.Execution, x.Report, x.ApprovedBy)
	if errs.Is(err, errs.Invalid) {
		// Sending it again would not make it valid.
		if s.log != nil {
			s.log.ErrorContext(ctx, "report a standing-order run", slog.String("execution_id", x.Execution.ID), slog.String("error", err.Error()))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("report execution %s: %w", x.Execution.ID, err)
	}
	return nil
}
