package outbox

import (
	"context"
	"log/slog"

	"github.com/it0/it0/internal/bus"
	"github.com/it0/it0/internal/tenant"
)

// Consume handles the domain events of stream as member name of consumer group group (one group per
// module: each module handles every event once, whichever replica runs it) until ctx ends. parse decodes
// a payload into an event and the tenant it belongs to; h runs with that tenant in its ctx. Payloads that
// do not parse are logged and acknowledged: handing them out again would not make them readable. An
// error from h leaves the event pending, to be handed out again (delivery is at least once).
func Consume[E any](ctx context.Context, b bus.Bus, stream, group, name string, log *slog.Logger,
	parse func([]byte) (E, string, error), h func(context.Context, E) error) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return b.Consume(ctx, bus.Consumer{Stream: stream, Group: group, Name: name}, func(ctx context.Context, m bus.Message) error {
		e, tid, err := parse(m.Data)
		if err != nil {
			log.ErrorContext(ctx, "unreadable event", slog.String("stream", stream), slog.String("group", group),
				slog.String("message_id", m.ID), slog.String("error", err.Error()))
			return nil
		}
		return h(tenant.WithID(ctx, tid), e)
	})
}
