package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/voice"
)

// TestVoiceSessionStore: voice sessions round-trip with their turns and timings, are replaced whole, and
// stay in their tenant, on every backend.
func TestVoiceSessionStore(t *testing.T) {
	t.Parallel()
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db := be.Open(t)
			a, b := storetest.NewTenant(t, db, "voicea"), storetest.NewTenant(t, db, "voiceb")
			ctx, ctxB := tenant.WithID(context.Background(), a.ID), tenant.WithID(context.Background(), b.ID)
			now := time.Now().UTC().Truncate(time.Microsecond)

			// Ensure a prepared call (no stream yet, no turns) round-trips.
			vs := &voice.Session{ID: "vs1", AgentSessionID: "s1", ApprovalID: "ap1", Transport: voice.TransportTwilio, Language: "zh-CN",
				State: voice.SessionWaiting, CreatedAt: now}
			if err := db.VoiceSessionPut(ctx, vs); err != nil {
				t.Fatal(err)
			}
			got, err := db.VoiceSessionGet(ctx, "vs1")
			if err != nil {
				t.Fatal(err)
			}
			if got.TenantID != a.ID || got.ApprovalID != "ap1" || got.Transport != voice.TransportTwilio || got.Language != "zh-CN" ||
				got.State != voice.SessionWaiting || !got.CreatedAt.Equal(now) || got.StartedAt != nil || got.EndedAt != nil || len(got.Turns) != 0 {
				t.Fatalf("prepared: %+v", got)
			}

			// Ensure the stream's changes replace the record: state, turns with timings, times, outcome.
			started, ended := now.Add(time.Second), now.Add(40*time.Second)
			vs.State, vs.StartedAt = voice.SessionActive, &started
			vs.Turns = []voice.Turn{
				{Role: "agent", Text: "您好，我是 IT0。", Interrupted: true, At: started, Timings: voice.Timings{FirstOutMs: 12}},
				{Role: "user", Text: "同意", At: started.Add(5 * time.Second), Timings: voice.Timings{SpeechMs: 640, STTMs: 180}},
			}
			if err := db.VoiceSessionPut(ctx, vs); err != nil {
				t.Fatal(err)
			}
			vs.State, vs.EndedAt, vs.Outcome, vs.EndReason = voice.SessionEnded, &ended, "approved", "hangup"
			if err := db.VoiceSessionPut(ctx, vs); err != nil {
				t.Fatal(err)
			}
			got, err = db.VoiceSessionGet(ctx, "vs1")
			if err != nil {
				t.Fatal(err)
			}
			if got.State != voice.SessionEnded || got.Outcome != "approved" || got.EndReason != "hangup" || got.StartedAt == nil ||
				!got.StartedAt.Equal(started) || got.EndedAt == nil || !got.EndedAt.Equal(ended) {
				t.Fatalf("ended: %+v", got)
			}
			if len(got.Turns) != 2 || got.Turns[0].Text != "您好，我是 IT0。" || !got.Turns[0].Interrupted || got.Turns[0].Timings.FirstOutMs != 12 ||
				got.Turns[1].Timings.STTMs != 180 || !got.Turns[1].At.Equal(started.Add(5*time.Second)) {
				t.Fatalf("turns: %+v", got.Turns)
			}

			// Ensure another tenant neither sees nor overwrites it, and a missing id is NotFound.
			if _, err := db.VoiceSessionGet(ctxB, "vs1"); !errs.Is(err, errs.NotFound) {
				t.Fatalf("other tenant: %v", err)
			}
			if _, err := db.VoiceSessionGet(ctx, "nope"); !errs.Is(err, errs.NotFound) {
				t.Fatalf("missing: %v", err)
			}
			if err := db.VoiceSessionPut(ctxB, &voice.Session{ID: "vs1", Transport: voice.TransportApp, Language: "en", State: voice.SessionActive,
				CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if got, err := db.VoiceSessionGet(ctx, "vs1"); err != nil || got.State != voice.SessionEnded {
				t.Fatalf("after another tenant's put: %+v %v", got, err)
			}
		})
	}
}
