package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/it0/it0/internal/tenant"
)

func newTestLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHandler(t *testing.T) {
	t.Parallel()
	ctx := WithSessionID(WithRequestID(tenant.WithID(context.Background(), "acme"), "req-1"), "sess-1")

	// Ensure every …Context call carries the three identifiers, through WithAttrs too.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		log, buf := newTestLogger()
		log.InfoContext(ctx, "one")
		log.With(slog.String("component", "x")).WarnContext(ctx, "two", slog.Int("n", 2))
		for _, l := range lines(t, buf) {
			if l["tenant_id"] != "acme" || l["request_id"] != "req-1" || l["session_id"] != "sess-1" {
				t.Errorf("identifiers missing: %v", l)
			}
		}
	})

	// Ensure a call site's own value wins and the key appears once.
	t.Run("NoDuplicates", func(t *testing.T) {
		t.Parallel()
		log, buf := newTestLogger()
		log.InfoContext(ctx, "own", slog.String("request_id", "mine"))
		if s := buf.String(); strings.Count(s, `"request_id"`) != 1 || !strings.Contains(s, `"request_id":"mine"`) ||
			!strings.Contains(s, `"tenant_id":"acme"`) {
			t.Errorf("got %s", s)
		}
	})

	// Ensure a context without identifiers (startup, background loops) adds nothing.
	t.Run("EmptyContext", func(t *testing.T) {
		t.Parallel()
		log, buf := newTestLogger()
		log.InfoContext(context.Background(), "bare")
		log.Info("no ctx")
		for _, l := range lines(t, buf) {
			if _, ok := l["tenant_id"]; ok {
				t.Errorf("unexpected tenant_id: %v", l)
			}
		}
	})

	// Ensure levels pass through to the inner handler.
	t.Run("Level", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		log := New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
		log.InfoContext(ctx, "dropped")
		if buf.Len() != 0 || log.Enabled(ctx, slog.LevelInfo) {
			t.Errorf("info logged at warn level: %s", buf.String())
		}
	})

	// Ensure a grouped logger still logs, without nesting the identifiers in the group.
	t.Run("Group", func(t *testing.T) {
		t.Parallel()
		log, buf := newTestLogger()
		log.WithGroup("g").InfoContext(ctx, "grouped", slog.Int("n", 1))
		if s := buf.String(); !strings.Contains(s, `"g":{"n":1}`) || strings.Contains(s, "acme") {
			t.Errorf("got %s", s)
		}
	})
}

func BenchmarkHandler(b *testing.B) {
	log := New(slog.NewJSONHandler(&bytes.Buffer{}, nil))
	ctx := WithRequestID(tenant.WithID(context.Background(), "acme"), "req-1")
	b.ReportAllocs()
	for b.Loop() {
		log.InfoContext(ctx, "request", slog.Int("status", 200))
	}
}
