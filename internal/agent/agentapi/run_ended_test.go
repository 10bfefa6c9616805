package agentapi_test

import (
	"errors"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/outbox"
)

func encode(t testing.TB, typ, tenantID, subject string, data any) []byte {
	t.Helper()
	b, err := outbox.Encode(typ, tenantID, subject, time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC), data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseRunEnded: a run-ended event decodes to what the session's RunEnded wrote; anything else is
// ErrBadEvent.
func TestParseRunEnded(t *testing.T) {
	t.Parallel()
	sess := &agentapi.Session{ID: "s-1", TenantID: "t-1", Engine: "claude_api", Status: agentapi.StatusFailed, Origin: agentapi.OriginStandingOrder,
		OriginID: "e-1", Error: "ssh: connection refused", RunEnds: 3, UpdatedAt: time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)}

	// Ensure the event round-trips.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		got, err := agentapi.ParseRunEnded(encode(t, agentapi.EventRunEnded, sess.TenantID, sess.ID, sess.RunEnded()))
		if err != nil {
			t.Fatal(err)
		}
		if want := sess.RunEnded(); got != want {
			t.Fatalf("parsed %+v, want %+v", got, want)
		}
	})

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"ErrNotJSON", []byte("{")},
		{"ErrOtherType", encode(t, "approval.decided", "t-1", "a-1", map[string]any{"status": "approved"})},
		{"ErrNoTenant", encode(t, agentapi.EventRunEnded, "", "s-1", sess.RunEnded())},
		{"ErrNoSession", encode(t, agentapi.EventRunEnded, "t-1", "", sess.RunEnded())},
		{"ErrNoRun", encode(t, agentapi.EventRunEnded, "t-1", "s-1", map[string]any{"status": "failed"})},
		{"ErrNotARunEnd", encode(t, agentapi.EventRunEnded, "t-1", "s-1", map[string]any{"run": 1, "status": "running"})},
		{"ErrBadData", encode(t, agentapi.EventRunEnded, "t-1", "s-1", []int{1})},
	} {
		// Ensure a payload that is no run end is refused with ErrBadEvent.
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := agentapi.ParseRunEnded(tc.data); !errors.Is(err, agentapi.ErrBadEvent) {
				t.Fatalf("error %v, want ErrBadEvent", err)
			}
		})
	}
}

// FuzzParseRunEnded: any payload parses or fails with ErrBadEvent, and what parses is a run end.
func FuzzParseRunEnded(f *testing.F) {
	f.Add(encode(f, agentapi.EventRunEnded, "t-1", "s-1", map[string]any{"run": 1, "status": "completed", "summary": "ok"}))
	f.Add([]byte(`{"type":"agent.run_ended","tenant_id":"t","subject":"s","data":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := agentapi.ParseRunEnded(b)
		if err != nil {
			if !errors.Is(err, agentapi.ErrBadEvent) {
				t.Fatalf("error %v is not ErrBadEvent", err)
			}
			return
		}
		if e.Run <= 0 || !agentapi.RunEnds(e.Status) || e.TenantID == "" || e.SessionID == "" {
			t.Fatalf("parsed a run end that is none: %+v", e)
		}
	})
}
