package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
)

// at is the suite's fixed clock: microsecond precision, as both backends keep it.
var at = time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC)

// twoTenants is a test factory: two provisioned tenants and a context in each.
func twoTenants(t *testing.T, db *store.DB, slug string) (actx, bctx context.Context) {
	t.Helper()
	a, b := NewTenant(t, db, slug+"-a"), NewTenant(t, db, slug+"-b")
	return tenant.WithID(context.Background(), a.ID), tenant.WithID(context.Background(), b.ID)
}

// NewSession is a test factory: a running session created at created in the tenant of ctx.
func NewSession(tb testing.TB, db *store.DB, ctx context.Context, created time.Time) *agent.Session {
	tb.Helper()
	s := &agent.Session{ID: uuid.NewString(), UserID: uuid.NewString(), Engine: "claude_code", Status: agent.StatusRunning,
		Title: "disk full on web-1", ServerIDs: []string{"srv-1", "srv-2"}, MaxTurns: 20, MaxRiskLevel: 1,
		AllowedTools: []string{"exec"}, Origin: "manual", MaxBudgetUSD: 2.5, CreatedAt: created, UpdatedAt: created}
	if err := db.SessionCreate(ctx, s); err != nil {
		tb.Fatalf("create session: %v", err)
	}
	return s
}

func runAgent(t *testing.T, open func(testing.TB) *store.DB) {
	t.Run("Sessions", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "sessions")
		s1 := NewSession(t, db, actx, at)
		s2 := NewSession(t, db, actx, at.Add(time.Minute))
		got, err := db.SessionGet(actx, s1.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Ensure a session round-trips, lists and arrays included.
		if got.Title != s1.Title || len(got.ServerIDs) != 2 || got.ServerIDs[1] != "srv-2" || got.MaxBudgetUSD != 2.5 ||
			!got.CreatedAt.Equal(at) || got.TenantID == "" || len(got.AllowedTools) != 1 {
			t.Errorf("round trip: %+v", got)
		}
		// Ensure the other tenant can neither read nor update it.
		if _, err := db.SessionGet(bctx, s1.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant get: %v", err)
		}
		got.Status, got.Summary, got.TokensUsed, got.CostUSD = agent.StatusCompleted, "cleaned /var/log", 1200, 0.42
		got.State = json.RawMessage(`{"resume":"abc"}`)
		got.UpdatedAt = at.Add(2 * time.Minute)
		if err := db.SessionUpdate(actx, got); err != nil {
			t.Fatal(err)
		}
		if err := db.SessionUpdate(bctx, got); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant update: %v", err)
		}
		again, _ := db.SessionGet(actx, s1.ID)
		if again.Status != agent.StatusCompleted || again.TokensUsed != 1200 || again.CostUSD != 0.42 || string(again.State) != `{"resume":"abc"}` {
			t.Errorf("after update: %+v", again)
		}
		// Ensure lists are newest first, filter by status, and counts see only this tenant.
		list, err := db.SessionList(actx, "", 10)
		if err != nil || len(list) != 2 || list[0].ID != s2.ID {
			t.Fatalf("list: %v %+v", err, list)
		}
		if list, _ := db.SessionList(actx, agent.StatusRunning, 10); len(list) != 1 || list[0].ID != s2.ID {
			t.Errorf("running: %+v", list)
		}
		if list, _ := db.SessionList(actx, "", 1); len(list) != 1 {
			t.Errorf("limit 1: %d", len(list))
		}
		if n, err := db.SessionCountActive(actx); err != nil || n != 1 {
			t.Errorf("active = %d, %v", n, err)
		}
		if n, _ := db.SessionCountSince(actx, at.Add(time.Second)); n != 1 {
			t.Errorf("since = %d, want 1", n)
		}
		if n, _ := db.SessionCountSince(bctx, at.Add(-time.Hour)); n != 0 {
			t.Errorf("tenant b counts %d sessions", n)
		}
		// Ensure a task record is finished in place.
		task := &agent.TaskRecord{ID: uuid.NewString(), SessionID: s1.ID, Prompt: "free disk", Status: "running", CreatedAt: at}
		if err := db.TaskCreate(actx, task); err != nil {
			t.Fatal(err)
		}
		if err := db.TaskFinish(actx, task.ID, "completed", at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Events", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "events")
		s := NewSession(t, db, actx, at)
		level := 1
		for i := range 5 {
			e := &agent.Event{SessionID: s.ID, Type: agent.EventText, Text: fmt.Sprintf("step %d 中文", i), Time: at.Add(time.Duration(i) * time.Second)}
			if i == 2 {
				e.Type, e.Command, e.RiskLevel, e.Input = agent.EventToolUse, "df -h", &level, json.RawMessage(`{"command":"df -h"}`)
			}
			if err := db.EventAppend(actx, e); err != nil {
				t.Fatal(err)
			}
			// Ensure the store numbers events 1, 2, 3… per session.
			if e.Seq != int64(i+1) {
				t.Errorf("event %d got seq %d", i, e.Seq)
			}
		}
		// Ensure a replayed event with a seq already stored is a conflict, not a second row.
		if err := db.EventAppend(actx, &agent.Event{Seq: 3, SessionID: s.ID, Type: agent.EventText, Time: at}); !errs.Is(err, errs.Conflict) {
			t.Errorf("duplicate seq: %v", err)
		}
		list, err := db.EventList(actx, s.ID, 1, 3)
		if err != nil || len(list) != 3 || list[0].Seq != 2 || list[2].Seq != 4 {
			t.Fatalf("after 1, limit 3: %v %+v", err, list)
		}
		if list[1].Command != "df -h" || list[1].RiskLevel == nil || *list[1].RiskLevel != 1 || string(list[1].Input) != `{"command":"df -h"}` {
			t.Errorf("tool event: %+v", list[1])
		}
		if sess, _ := db.SessionGet(actx, s.ID); sess.LastSeq != 5 {
			t.Errorf("last_seq = %d, want 5", sess.LastSeq)
		}
		if list, _ := db.EventList(bctx, s.ID, 0, 100); len(list) != 0 {
			t.Errorf("tenant b reads %d events", len(list))
		}
	})

	t.Run("Approvals", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "approvals")
		s := NewSession(t, db, actx, at)
		mk := func(i int) *agent.Approval {
			a := &agent.Approval{ID: uuid.NewString(), SessionID: s.ID, Command: fmt.Sprintf("systemctl restart app-%d", i), RiskLevel: 2,
				Reason: "restart", Tool: "exec", ToolInput: json.RawMessage(`{"command":"systemctl restart app"}`), Status: agent.ApprovalPending,
				RequestedBy: "agent", ExpiresAt: at.Add(time.Hour), CreatedAt: at.Add(time.Duration(i) * time.Second)}
			if err := db.ApprovalCreate(actx, a); err != nil {
				t.Fatal(err)
			}
			return a
		}
		a1, a2 := mk(1), mk(2)
		got, err := db.ApprovalGet(actx, a1.ID)
		if err != nil || got.Command != a1.Command || got.Status != agent.ApprovalPending || !got.ExpiresAt.Equal(a1.ExpiresAt) ||
			string(got.ToolInput) != `{"command":"systemctl restart app"}` || got.DecidedAt != nil {
			t.Fatalf("round trip: %v %+v", err, got)
		}
		if _, err := db.ApprovalGet(bctx, a1.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant get: %v", err)
		}
		// Ensure a use before the decision is refused.
		if err := db.ApprovalUse(actx, a1.ID, at); !errs.Is(err, errs.Conflict) {
			t.Errorf("use while pending: %v", err)
		}
		decided := at.Add(time.Minute)
		got.Status, got.DecidedBy, got.DecisionReason, got.DecidedAt = agent.ApprovalApproved, "ops@example.com", "ok", &decided
		if err := db.ApprovalDecide(bctx, got); err == nil {
			t.Error("tenant b decided tenant a's approval")
		}
		if err := db.ApprovalDecide(actx, got); err != nil {
			t.Fatal(err)
		}
		// Ensure a decision is final: a second one is a conflict.
		second := *got
		second.Status = agent.ApprovalRejected
		if err := db.ApprovalDecide(actx, &second); !errs.Is(err, errs.Conflict) {
			t.Errorf("second decision: %v", err)
		}
		// Ensure an approved command is used once.
		if err := db.ApprovalUse(actx, a1.ID, decided); err != nil {
			t.Fatal(err)
		}
		if err := db.ApprovalUse(actx, a1.ID, decided); !errs.Is(err, errs.Conflict) {
			t.Errorf("second use: %v", err)
		}
		if err := db.ApprovalSetToolUse(actx, a2.ID, "toolu_1"); err != nil {
			t.Fatal(err)
		}
		if err := db.ApprovalSetToolUse(bctx, a2.ID, "toolu_2"); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant tool use: %v", err)
		}
		got, _ = db.ApprovalGet(actx, a1.ID)
		if got.Status != agent.ApprovalApproved || got.DecidedBy != "ops@example.com" || got.DecidedAt == nil || !got.DecidedAt.Equal(decided) || got.UsedAt == nil {
			t.Errorf("after decide and use: %+v", got)
		}
		if got, _ := db.ApprovalGet(actx, a2.ID); got.ToolUseID != "toolu_1" {
			t.Errorf("tool_use_id = %q", got.ToolUseID)
		}
		// Ensure lists are newest first and filter by session and status.
		list, err := db.ApprovalList(actx, "", "", 10)
		if err != nil || len(list) != 2 || list[0].ID != a2.ID {
			t.Fatalf("list: %v %+v", err, list)
		}
		if list, _ := db.ApprovalList(actx, s.ID, agent.ApprovalPending, 10); len(list) != 1 || list[0].ID != a2.ID {
			t.Errorf("pending of session: %+v", list)
		}
		if list, _ := db.ApprovalList(actx, "other-session", "", 10); len(list) != 0 {
			t.Errorf("other session: %+v", list)
		}
		if list, _ := db.ApprovalList(bctx, "", "", 10); len(list) != 0 {
			t.Errorf("tenant b lists %d approvals", len(list))
		}
	})

	t.Run("SettingsAndSkills", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "settings")
		// Ensure a setting never set reads as "" (the documented default), not an error.
		if v, err := db.SettingGet(actx, "risk_rules"); err != nil || v != "" {
			t.Errorf("missing setting: %q, %v", v, err)
		}
		for _, v := range []string{"v1", "v2 中文"} {
			if err := db.SettingSet(actx, "risk_rules", v); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := db.SettingGet(actx, "risk_rules"); err != nil || v != "v2 中文" {
			t.Errorf("setting = %q, %v", v, err)
		}
		if v, err := db.SettingGet(bctx, "risk_rules"); err != nil || v != "" {
			t.Errorf("tenant b reads a's setting: %q, %v", v, err)
		}
		sk := &agent.SkillRecord{Name: "disk-cleanup", Description: "free disk", Content: "# steps", CreatedAt: at, UpdatedAt: at}
		created, err := db.SkillPut(actx, sk, 2)
		if err != nil || !created {
			t.Fatalf("put: %v %v", created, err)
		}
		sk.Description = "free disk space"
		if created, err := db.SkillPut(actx, sk, 2); err != nil || created {
			t.Errorf("second put: created %v, %v", created, err)
		}
		if got, err := db.SkillGet(actx, "disk-cleanup"); err != nil || got.Description != "free disk space" {
			t.Errorf("get: %v %+v", err, got)
		}
		// Ensure the quota counts skills, not puts.
		if _, err := db.SkillPut(actx, &agent.SkillRecord{Name: "two", CreatedAt: at, UpdatedAt: at}, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SkillPut(actx, &agent.SkillRecord{Name: "three", CreatedAt: at, UpdatedAt: at}, 2); !errs.Is(err, errs.QuotaExceeded) {
			t.Errorf("over quota: %v", err)
		}
		if list, _ := db.SkillList(bctx); len(list) != 0 {
			t.Errorf("tenant b lists %d skills", len(list))
		}
		if err := db.SkillDelete(actx, "two"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SkillGet(actx, "two"); !errs.Is(err, errs.NotFound) {
			t.Errorf("deleted skill: %v", err)
		}
		if list, _ := db.SkillList(actx); len(list) != 1 {
			t.Errorf("skills = %d, want 1", len(list))
		}
	})
}
