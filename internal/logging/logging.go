// Package logging is IT0's slog plumbing: a handler that stamps every record with the identifiers the
// context carries (tenant, request, agent session), so that one request's or one run's lines can be found
// together without each call site remembering to add them.
package logging

import (
	"context"
	"log/slog"

	"github.com/it0/it0/internal/tenant"
)

// Attribute keys the handler adds.
const (
	KeyTenantID  = "tenant_id"
	KeyRequestID = "request_id"
	KeySessionID = "session_id"
)

type requestIDKey struct{}
type sessionIDKey struct{}

// WithRequestID returns ctx carrying an HTTP request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithSessionID returns ctx carrying an agent session id.
func WithSessionID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, sessionIDKey{}, id)
}

// SessionID returns the agent session id in ctx, or "".
func SessionID(ctx context.Context) string {
	id, _ := ctx.Value(sessionIDKey{}).(string)
	return id
}

// Handler wraps another handler and adds tenant_id, request_id and session_id from the context of each
// record (the …Context logging calls) when the context has them and the record does not already.
// A handler made by WithGroup adds nothing: the identifiers would be nested inside the group, where
// nobody searches for them.
type Handler struct {
	inner   slog.Handler
	grouped bool
}

// NewHandler returns a Handler around inner.
func NewHandler(inner slog.Handler) *Handler { return &Handler{inner: inner} }

// New returns a logger whose records carry the context's identifiers.
func New(inner slog.Handler) *slog.Logger { return slog.New(NewHandler(inner)) }

// Enabled reports whether inner handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds the context's identifiers to r and passes it on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil || h.grouped {
		return h.inner.Handle(ctx, r)
	}
	var add [3]slog.Attr
	n := 0
	if id, err := tenant.ID(ctx); err == nil {
		add[n] = slog.String(KeyTenantID, id)
		n++
	}
	if id := RequestID(ctx); id != "" {
		add[n] = slog.String(KeyRequestID, id)
		n++
	}
	if id := SessionID(ctx); id != "" {
		add[n] = slog.String(KeySessionID, id)
		n++
	}
	if n == 0 {
		return h.inner.Handle(ctx, r)
	}
	// A call site that already logs one of the keys keeps its own value.
	r.Attrs(func(a slog.Attr) bool {
		for i := range n {
			if add[i].Key == a.Key {
				add[i] = add[n-1]
				n--
				break
			}
		}
		return n > 0
	})
	r = r.Clone()
	r.AddAttrs(add[:n]...)
	return h.inner.Handle(ctx, r)
}

// WithAttrs returns a Handler whose inner handler has attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(attrs), grouped: h.grouped}
}

// WithGroup returns a Handler whose records go into group name. Identifiers are not added inside a
// group (they would be nested there, where nobody searches for them).
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{inner: h.inner.WithGroup(name), grouped: true}
}
