package httpapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/monitor/monitortest"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
)

// TestChecksAPI covers the health check endpoints on every backend.
func TestChecksAPI(t *testing.T) {
	t.Parallel()
	target := monitortest.Listen(t, "127.0.0.1:0").Addr().String()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		b := setupAppWith(t, open, appKnobs{manual: true}) // no scheduler: the test runs the check
		tid, tok := b.newTenant("checks")
		_, viewer := b.newUser(tok, "viewer@checks.example", auth.RoleViewer)
		_, operator := b.newUser(tok, "operator@checks.example", auth.RoleOperator)
		const p = "/api/v1/monitor/checks"

		// Ensure an operator can create a check, which starts unknown.
		body := map[string]any{"name": "db", "type": "tcp", "target": target, "interval_seconds": 30, "timeout_seconds": 5, "retries": 2}
		r := b.do("POST", p, operator, body)
		if r.status != 201 || r.body["state"] != "unknown" || r.body["enabled"] != true {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		id := r.body["id"].(string)
		// Ensure a viewer can read but not create.
		if r := b.do("GET", p, viewer, nil); r.status != 200 || len(r.body["items"].([]any)) != 1 {
			t.Errorf("viewer list: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", p+"/"+id, viewer, nil); r.status != 200 || r.body["name"] != "db" {
			t.Errorf("viewer get: %d %s", r.status, r.raw)
		}
		if r := b.do("POST", p, viewer, map[string]any{"name": "v", "type": "tcp", "target": target}); r.status != 403 {
			t.Errorf("viewer create: %d %s", r.status, r.raw)
		}
		if r := b.do("DELETE", p+"/"+id, viewer, nil); r.status != 403 {
			t.Errorf("viewer delete: %d %s", r.status, r.raw)
		}

		// Ensure bad input is a 400 that names the field.
		for _, tc := range []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"BadType", map[string]any{"name": "x", "type": "smtp", "target": target}, "type"},
			{"IntervalTooShort", map[string]any{"name": "x", "type": "tcp", "target": target, "interval_seconds": 2, "timeout_seconds": 1}, "interval_seconds"},
			{"TimeoutNotBelowInterval", map[string]any{"name": "x", "type": "tcp", "target": target, "interval_seconds": 10, "timeout_seconds": 10}, "timeout_seconds"},
			{"NoPort", map[string]any{"name": "x", "type": "tcp", "target": "db.internal"}, "target"},
			{"UnknownField", map[string]any{"name": "x", "type": "tcp", "target": target, "state": "up"}, "state"},
			{"UnknownServer", map[string]any{"name": "x", "type": "ssh", "server_id": "nope"}, "server_id"},
			{"CommandAboveL0", map[string]any{"name": "x", "type": "custom", "server_id": "nope", "command": "rm -rf /tmp/x"}, "command"},
			{"DuplicateName", body, "name"},
		} {
			r := b.do("POST", p, tok, tc.body)
			e, _ := r.body["error"].(map[string]any)
			if r.status != 400 || !strings.Contains(r.raw, tc.field) || e == nil {
				t.Errorf("%s: %d %s, want 400 naming %s", tc.name, r.status, r.raw, tc.field)
			}
		}

		// Run it twice (as the scheduler would) and read results and transitions.
		ctx := tenant.WithID(context.Background(), tid)
		c, err := b.srv.Checks.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := b.srv.Checks.Run(ctx, c, b.now.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if r := b.do("GET", p+"/"+id, viewer, nil); r.body["state"] != "up" || r.body["last_status"] != "up" {
			t.Errorf("state after runs: %s", r.raw)
		}
		r = b.do("GET", p+"/"+id+"/results?limit=1", viewer, nil)
		if items, _ := r.body["items"].([]any); r.status != 200 || len(items) != 1 || items[0].(map[string]any)["lateness_ms"] != 1000.0 {
			t.Errorf("results: %d %s", r.status, r.raw)
		}
		r = b.do("GET", p+"/"+id+"/transitions", viewer, nil)
		if items, _ := r.body["items"].([]any); r.status != 200 || len(items) != 1 || items[0].(map[string]any)["to"] != "up" {
			t.Errorf("transitions: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", p+"/"+id+"/results?limit=0", viewer, nil); r.status != 400 || !strings.Contains(r.raw, "limit") {
			t.Errorf("bad limit: %d %s", r.status, r.raw)
		}

		// Ensure PATCH replaces fields sent, keeps the state, validates, and refuses the state itself.
		r = b.do("PATCH", p+"/"+id, operator, map[string]any{"interval_seconds": 120, "enabled": false})
		if r.status != 200 || r.body["interval_seconds"] != 120.0 || r.body["enabled"] != false || r.body["state"] != "up" || r.body["timeout_seconds"] != 5.0 {
			t.Errorf("patch: %d %s", r.status, r.raw)
		}
		if r := b.do("PATCH", p+"/"+id, operator, map[string]any{"timeout_seconds": 500}); r.status != 400 || !strings.Contains(r.raw, "timeout_seconds") {
			t.Errorf("bad patch: %d %s", r.status, r.raw)
		}
		if r := b.do("PATCH", p+"/"+id, operator, map[string]any{"state": "down"}); r.status != 400 {
			t.Errorf("patch state: %d %s", r.status, r.raw)
		}
		if r := b.do("PATCH", p+"/"+id, viewer, map[string]any{"retries": 1}); r.status != 403 {
			t.Errorf("viewer patch: %d %s", r.status, r.raw)
		}

		// Ensure deletion is audited and takes the history with it.
		if r := b.do("DELETE", p+"/"+id, operator, nil); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}
		if r := b.do("GET", p+"/"+id+"/results", viewer, nil); r.status != 404 {
			t.Errorf("results after delete: %d %s", r.status, r.raw)
		}
		entries, err := b.audit.List(ctx, auditFilterAll())
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range entries {
			seen[e.ActionType] = true
		}
		for _, a := range []string{"check.created", "check.updated", "check.deleted"} {
			if !seen[a] {
				t.Errorf("no %s audit entry", a)
			}
		}
	})
}
