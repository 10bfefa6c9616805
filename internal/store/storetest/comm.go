package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
)

// runComm covers the comm context: contacts, messages, escalation policies and escalations.
func runComm(t *testing.T, open func(testing.TB) *store.DB) {
	t.Run("Comm", func(t *testing.T) {
		// Ensure contacts, messages (idempotency keys), policies and escalations round-trip,
		// and that nothing crosses tenants.
		t.Parallel()
		db := open(t)
		a, b := NewTenant(t, db, "comma"), NewTenant(t, db, "commb")
		ctx, ctxB := tenant.WithID(context.Background(), a.ID), tenant.WithID(context.Background(), b.ID)
		now := time.Now().UTC().Truncate(time.Microsecond)

		// Ensure contacts round-trip and are found by address only in their tenant.
		c := &comm.Contact{ID: "c1", Name: "Li", Audience: comm.AudiencePrimary, Phone: "+8613800001111", TelegramChatID: "42",
			Enabled: true, CreatedAt: now, UpdatedAt: now}
		if err := db.ContactCreate(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := db.ContactFind(ctx, comm.ChannelSMS, "+8613800001111")
		if err != nil || got.ID != "c1" || got.TenantID != a.ID || !got.CreatedAt.Equal(now) {
			t.Fatalf("find: %+v %v", got, err)
		}
		if _, err := db.ContactFind(ctxB, comm.ChannelSMS, "+8613800001111"); !errs.Is(err, errs.NotFound) {
			t.Errorf("found across tenants: %v", err)
		}
		c.Enabled = false
		if err := db.ContactUpdate(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ContactFind(ctx, comm.ChannelTelegram, "42"); !errs.Is(err, errs.NotFound) {
			t.Errorf("a disabled contact answers: %v", err)
		}
		if l, _ := db.ContactList(ctx, comm.AudienceBackup); len(l) != 0 {
			t.Errorf("audience filter: %v", l)
		}

		// Ensure an idempotency key is taken once per tenant.
		m := &comm.Message{ID: "m1", Direction: comm.Outbound, Channel: comm.ChannelSMS, ContactID: "c1", Body: "hi", Status: comm.StatusPending,
			IdempotencyKey: "k1", CreatedAt: now, UpdatedAt: now}
		if err := db.MessageCreate(ctx, m); err != nil {
			t.Fatal(err)
		}
		dup := *m
		dup.ID = "m2"
		if err := db.MessageCreate(ctx, &dup); !errs.Is(err, errs.Conflict) {
			t.Errorf("duplicate key: %v", err)
		}
		dup.ID = "m3"
		if err := db.MessageCreate(ctxB, &dup); err != nil {
			t.Errorf("same key in another tenant: %v", err)
		}
		m.Status, m.ProviderID, m.Attempts = comm.StatusSent, "SM1", 1
		if err := db.MessageUpdate(ctx, m); err != nil {
			t.Fatal(err)
		}
		if got, err := db.MessageByKey(ctx, "k1"); err != nil || got.Status != comm.StatusSent || got.ProviderID != "SM1" {
			t.Errorf("by key: %+v %v", got, err)
		}
		if got, err := db.MessageGet(ctx, "m1"); err != nil || got.Attempts != 1 || got.Body != "hi" {
			t.Errorf("get: %+v %v", got, err)
		}
		if _, err := db.MessageGet(ctxB, "m1"); !errs.Is(err, errs.NotFound) {
			t.Errorf("message across tenants: %v", err)
		}
		if l, _ := db.MessageList(ctx, comm.MessageFilter{ContactID: "c1", Direction: comm.Outbound}); len(l) != 1 {
			t.Errorf("list: %v", l)
		}

		// Ensure a policy replaces the previous one of its severity.
		for _, d := range []int{60, 90} {
			if err := db.PolicyPut(ctx, &comm.Policy{Severity: "warning", Steps: []comm.Step{{DelaySeconds: d, Channels: []string{"sms"}, Audience: "primary"}},
				UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		if ps, _ := db.PolicyList(ctx); len(ps) != 1 || ps[0].Steps[0].DelaySeconds != 90 {
			t.Errorf("policies: %+v", ps)
		}

		// Ensure an escalation is created once and finished once.
		e := &comm.Escalation{ID: "ap1", SessionID: "s1", Severity: "critical", Status: comm.EscalationActive, Ref: "123456", Summary: "x",
			Steps: comm.DefaultPolicy("critical").Steps, StartedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := db.EscalationCreate(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := db.EscalationCreate(ctx, e); !errs.Is(err, errs.Conflict) {
			t.Errorf("second escalation: %v", err)
		}
		if got, err := db.EscalationByRef(ctx, "123456"); err != nil || len(got.Steps) != 5 {
			t.Errorf("by ref: %+v %v", got, err)
		}
		e.Status, e.AnsweredAt, e.AnsweredBy = comm.EscalationAnswered, &now, "u1"
		if err := db.EscalationFinish(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := db.EscalationFinish(ctx, e); !errs.Is(err, errs.Conflict) {
			t.Errorf("finished twice: %v", err)
		}
		if _, err := db.EscalationByRef(ctx, "123456"); !errs.Is(err, errs.NotFound) {
			t.Errorf("answered escalation still found by ref: %v", err)
		}
		if got, err := db.EscalationGet(ctx, "ap1"); err != nil || got.Status != comm.EscalationAnswered || got.AnsweredBy != "u1" || got.AnsweredAt == nil {
			t.Errorf("finished escalation: %+v %v", got, err)
		}
		if _, err := db.EscalationGet(ctxB, "ap1"); !errs.Is(err, errs.NotFound) {
			t.Errorf("escalation across tenants: %v", err)
		}
		if l, _ := db.EscalationList(ctxB, "", 10); len(l) != 0 {
			t.Errorf("escalations across tenants: %v", l)
		}
		if err := db.ContactDelete(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ContactGet(ctx, "c1"); !errs.Is(err, errs.NotFound) {
			t.Errorf("deleted contact: %v", err)
		}
	})
}
