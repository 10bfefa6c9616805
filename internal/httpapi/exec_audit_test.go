package httpapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/tenant"
)

// TestNoAuditNoExec breaks the audit store and checks a command runs nowhere: the real sshd target is not
// even connected to. Once the store works again, the intent entry is written before the outcome, which
// names it.
func TestNoAuditNoExec(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{})
	f := newInvFixture(t, target.UserKey.Reveal())
	web := f.server("web-1", target, nil)
	admin, err := f.db.UserByEmail(context.Background(), "admin@inv.example")
	if err != nil {
		t.Fatal(err)
	}
	ctx := tenant.WithID(context.Background(), admin.TenantID)
	if err := f.db.ExecTenantForTest(ctx, `CREATE TRIGGER audit_logs_fail BEFORE INSERT ON audit_logs
		BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	r := f.do("POST", "/api/v1/inventory/exec", f.tok, map[string]any{"server_ids": []string{web}, "command": "echo hello"})
	results, _ := r.body["results"].([]any)
	if len(results) != 1 || results[0].(map[string]any)["status"] != "error" ||
		!strings.Contains(results[0].(map[string]any)["error"].(string), "no audit, no exec") {
		t.Errorf("exec with a failing audit store: %d %s", r.status, r.raw)
	}
	if n := target.CountLog("Connection from"); n != 0 {
		t.Errorf("the target was connected to %d times while the audit store failed:\n%s", n, target.Log())
	}

	if err := f.db.ExecTenantForTest(ctx, `DROP TRIGGER audit_logs_fail`); err != nil {
		t.Fatal(err)
	}
	res, _ := f.exec([]string{web}, "echo hello")
	if res[0]["status"] != "ok" || target.CountLog("Connection from") == 0 {
		t.Fatalf("after the audit store recovered: %v", res)
	}
	entries, err := f.audit.List(ctx, audit.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var intent, outcome *audit.Entry
	for i := range entries {
		switch entries[i].ActionType {
		case "command.intent":
			intent = &entries[i]
		case "command.executed":
			outcome = &entries[i]
		}
	}
	if intent == nil || outcome == nil {
		t.Fatalf("intent %v, outcome %v", intent, outcome)
	}
	var in, out map[string]any
	json.Unmarshal(intent.Detail, &in)
	json.Unmarshal(outcome.Detail, &out)
	if intent.Seq >= outcome.Seq || out["intent_audit_id"] != float64(intent.ID) || in["command"] != "echo hello" ||
		in["risk_level"] != float64(0) || !strings.Contains(in["allowed_by"].(string), "L0") || intent.ActorID != admin.ID {
		t.Errorf("intent %+v %s\noutcome %+v %s", intent, intent.Detail, outcome, outcome.Detail)
	}
}
