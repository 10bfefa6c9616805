package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/monitor/alerts"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

func series(t *testing.T, r response) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, x := range r.body["samples"].([]any) {
		s := x.(map[string]any)
		label, _ := s["label"].(string)
		out[s["metric_type"].(string)+label] = s["value"].(float64)
	}
	return out
}

// TestMonitorCollectOverSSH ensures an ssh source reads this machine's /proc and df over a real sshd
// through the guarded executor, computes CPU from the second reading, stores the samples and answers
// range queries.
func TestMonitorCollectOverSSH(t *testing.T) {
	t.Parallel()
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.30"})
	f := newInvFixture(t, target.UserKey.Reveal())
	id := f.server("metrics-1", target, nil)
	src := f.do("POST", "/api/v1/monitor/sources", f.tok, map[string]any{"name": "fleet", "type": "ssh",
		"selector": map[string]any{"server_ids": []string{id}}, "interval_seconds": 30})
	if src.status != 201 {
		t.Fatalf("source: %d %s", src.status, src.raw)
	}
	sid := src.body["id"].(string)
	first := f.do("POST", "/api/v1/monitor/sources/"+sid+"/collect", f.tok, nil)
	if first.status != 200 || first.body["error"] != nil {
		t.Fatalf("collect: %d %s", first.status, first.raw)
	}
	got := series(t, first)
	if v, ok := got["memory_usage"]; !ok || v <= 0 || v >= 100 {
		t.Errorf("memory_usage = %v (%v), want a percentage: %s", v, ok, first.raw)
	}
	if _, ok := got["load_1m"]; !ok {
		t.Errorf("no load_1m: %s", first.raw)
	}
	disk := false
	for k := range got {
		disk = disk || strings.HasPrefix(k, "disk_usage/")
	}
	if !disk {
		t.Errorf("no disk_usage per mount: %s", first.raw)
	}
	if _, ok := got["cpu_usage"]; ok {
		t.Error("cpu usage from a single reading")
	}
	// CPU and network rates need a second reading; /proc/uptime ticks every 10 ms, so a few rounds suffice.
	for i := 0; i < 50; i++ {
		f.now.Advance(30 * time.Second)
		got = series(t, f.do("POST", "/api/v1/monitor/sources/"+sid+"/collect", f.tok, nil))
		if _, ok := got["cpu_usage"]; ok {
			break
		}
	}
	if v, ok := got["cpu_usage"]; !ok || v < 0 || v > 100 {
		t.Fatalf("cpu_usage = %v (%v) after repeated collections", v, ok)
	}
	if _, ok := got["network_in"]; !ok {
		t.Errorf("no network_in: %v", got)
	}
	// The connection stays pooled between rounds, and the pool reports it (it0_ssh_connections).
	if open, inUse := f.ssh.Stats(); open != 1 || inUse != 0 {
		t.Errorf("ssh pool: %d open, %d in use; want 1 idle connection", open, inUse)
	}
	// The command was classified L0 and recorded like any other.
	if a := f.do("GET", "/api/v1/audit/logs?action_type=command.executed", f.tok, nil); !strings.Contains(a.raw, "/proc/loadavg") {
		t.Errorf("collection not audited as a command: %s", a.raw)
	}
	from := f.now.Now().Add(-time.Hour).Format(time.RFC3339)
	to := f.now.Now().Add(time.Minute).Format(time.RFC3339)
	q := f.do("GET", "/api/v1/monitor/metrics?server_id="+id+"&metric_type=memory_usage&from="+from+"&to="+to, f.tok, nil)
	items, _ := q.body["items"].([]any)
	if q.status != 200 || len(items) != 1 || len(items[0].(map[string]any)["points"].([]any)) < 2 {
		t.Errorf("query: %d %s", q.status, q.raw)
	}
	q = f.do("GET", "/api/v1/monitor/metrics?server_id="+id+"&metric_type=memory_usage&from="+from+"&to="+to+"&step=1h", f.tok, nil)
	if items, _ := q.body["items"].([]any); len(items) != 1 || len(items[0].(map[string]any)["points"].([]any)) > 2 {
		t.Errorf("stepped query: %s", q.raw)
	}
	if bad := f.do("GET", "/api/v1/monitor/metrics?server_id="+id+"&metric_type=nope!&step=x", f.tok, nil); bad.status != 400 ||
		!strings.Contains(bad.raw, "metric_type") {
		t.Errorf("bad query: %d %s", bad.status, bad.raw)
	}
	if s := f.do("GET", "/api/v1/monitor/sources/"+sid, f.tok, nil); s.body["last_collected_at"] == nil {
		t.Errorf("source not marked collected: %s", s.raw)
	}
}

// TestMonitorHTTPSources ensures node_exporter and Prometheus sources collect from local servers that
// speak the real formats, and map results to servers.
func TestMonitorHTTPSources(t *testing.T) {
	t.Parallel()
	b := setupApp(t, storetest.OpenSQLite)
	_, tok := b.newTenant("mon-http")
	cred := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "k", "type": "ssh_key", "secret": newKeyPEM(t)})
	mk := func(name, host string) string {
		r := b.do("POST", "/api/v1/inventory/servers", tok, map[string]any{"name": name, "host": host, "credential_id": cred.body["id"], "host_key_policy": "tofu"})
		if r.status != 201 {
			t.Fatalf("server: %s", r.raw)
		}
		return r.body["id"].(string)
	}
	web, db := mk("web-1", "127.0.0.31"), mk("db-1", "127.0.0.32")
	page, err := os.ReadFile("../monitor/nodeexporter/testdata/node.prom")
	if err != nil {
		t.Fatal(err)
	}
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write(page)
	}))
	defer node.Close()
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" || r.URL.Query().Get("time") == "" {
			w.WriteHeader(400)
			w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"unexpected request"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch q := r.URL.Query().Get("query"); {
		case strings.HasPrefix(q, "node_load1"):
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"instance":"web-1:9100"},"value":[1764151200,"3.5"]},
				{"metric":{"instance":"127.0.0.32:9100"},"value":[1764151200,"0.5"]},
				{"metric":{"instance":"unknown:9100"},"value":[1764151200,"9"]}]}}`))
		default:
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
		}
	}))
	defer prom.Close()
	ns := b.do("POST", "/api/v1/monitor/sources", tok, map[string]any{"name": "node", "type": "node_exporter", "url": node.URL + "/metrics", "server_id": db})
	if ns.status != 201 {
		t.Fatalf("node source: %s", ns.raw)
	}
	got := series(t, b.do("POST", "/api/v1/monitor/sources/"+ns.body["id"].(string)+"/collect", tok, nil))
	if got["memory_usage"] != 75 || got["disk_usage/var/lib/data"] != 90 || got["load_1m"] != 0.42 {
		t.Errorf("node_exporter samples = %v", got)
	}
	ps := b.do("POST", "/api/v1/monitor/sources", tok, map[string]any{"name": "prom", "type": "prometheus", "url": prom.URL,
		"queries": []map[string]string{{"metric_type": "load_1m", "query": "node_load1"}}})
	if ps.status != 201 || ps.body["server_label"] != "instance" {
		t.Fatalf("prom source: %s", ps.raw)
	}
	res := b.do("POST", "/api/v1/monitor/sources/"+ps.body["id"].(string)+"/collect", tok, nil)
	samples := res.body["samples"].([]any)
	if len(samples) != 2 {
		t.Fatalf("prometheus samples = %s, want web-1 (by name) and db-1 (by host)", res.raw)
	}
	for _, x := range samples {
		s := x.(map[string]any)
		if (s["server_id"] == web && s["value"] != 3.5) || (s["server_id"] == db && s["value"] != 0.5) {
			t.Errorf("sample %v", s)
		}
	}
	latest := b.do("GET", "/api/v1/monitor/metrics/latest?server_id="+web, tok, nil)
	if !strings.Contains(latest.raw, `"value":3.5`) {
		t.Errorf("latest: %s", latest.raw)
	}
	// A source that does not answer records its error and still answers the request.
	bad := b.do("POST", "/api/v1/monitor/sources", tok, map[string]any{"name": "gone", "type": "node_exporter", "url": "http://127.0.0.33:1/metrics", "server_id": db})
	r := b.do("POST", "/api/v1/monitor/sources/"+bad.body["id"].(string)+"/collect", tok, nil)
	if r.status != 200 || r.body["error"] == nil {
		t.Errorf("unreachable source: %d %s", r.status, r.raw)
	}
	if s := b.do("GET", "/api/v1/monitor/sources/"+bad.body["id"].(string), tok, nil); s.body["last_error"] == nil {
		t.Errorf("error not recorded: %s", s.raw)
	}
	// Validation names the field.
	for field, body := range map[string]map[string]any{
		"type":      {"name": "x", "type": "snmp"},
		"url":       {"name": "x", "type": "node_exporter", "url": "ftp://x", "server_id": db},
		"selector":  {"name": "x", "type": "ssh"},
		"server_id": {"name": "x", "type": "node_exporter", "url": "http://x/metrics", "server_id": "nope"},
	} {
		if r := b.do("POST", "/api/v1/monitor/sources", tok, body); r.status != 400 || !strings.Contains(r.raw, field) {
			t.Errorf("%s: %d %s", field, r.status, r.raw)
		}
	}
}

// TestMonitorAlertRemediation ensures an alert rule with for: 5m fires once after five minutes of pushed
// samples above its threshold, starts its runbook exactly once (the run recorded on the alert), reaches
// event-triggered standing orders, shows in the agent's list_alerts tool, and resolves when the value
// drops, with the resolution recorded.
func TestMonitorAlertRemediation(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) *storeDB) {
		b := setupApp(t, open, &scriptEngine{name: agent.EngineClaudeAPI, steps: []scriptStep{{alerts.ToolListAlerts, `{"status":"firing"}`}}})
		tid, tok := b.newTenant("mon-alert")
		cred := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "k", "type": "ssh_key", "secret": newKeyPEM(t)})
		srv := b.do("POST", "/api/v1/inventory/servers", tok, map[string]any{"name": "web-1", "host": "127.0.0.34", "credential_id": cred.body["id"], "host_key_policy": "tofu"})
		sid := srv.body["id"].(string)
		rb := b.do("POST", "/api/v1/ops/runbooks", tok, map[string]any{"name": "cpu-look", "prompt_template": "look at {{.server}}: {{.alert}} at {{.value}}", "max_risk_level": 0})
		if rb.status != 201 {
			t.Fatalf("runbook: %s", rb.raw)
		}
		order := b.do("POST", "/api/v1/ops/standing-orders", tok, map[string]any{"name": "on-alert",
			"trigger": map[string]string{"type": "event", "event_type": "alert_fired"},
			"targets": map[string]any{"all_servers": true}, "agent_instructions": map[string]any{"prompt": "triage", "max_risk_level": 0}})
		if order.status != 201 {
			t.Fatalf("order: %s", order.raw)
		}
		hot := b.do("POST", "/api/v1/ops/standing-orders", tok, map[string]any{"name": "on-hot-cpu",
			"trigger": map[string]any{"type": "threshold", "threshold_condition": map[string]any{"metric_type": "cpu_usage", "operator": ">", "value": 90, "duration_seconds": 120}},
			"targets": map[string]any{"all_servers": true}, "agent_instructions": map[string]any{"prompt": "cool it", "max_risk_level": 0}})
		if hot.status != 201 {
			t.Fatalf("threshold order: %s", hot.raw)
		}
		rule := b.do("POST", "/api/v1/monitor/alert-rules", tok, map[string]any{"name": "cpu high", "metric_type": "cpu_usage",
			"condition": map[string]any{"operator": ">", "threshold": 90, "duration_seconds": 300}, "severity": "critical", "runbook_id": rb.body["id"]})
		if rule.status != 201 || rule.body["active"] != true {
			t.Fatalf("rule: %d %s", rule.status, rule.raw)
		}
		push := func(v float64) {
			t.Helper()
			r := b.do("POST", "/api/v1/monitor/metrics", tok, map[string]any{"samples": []map[string]any{{"server_id": sid, "metric_type": "cpu_usage", "value": v}}})
			if r.status != 202 {
				t.Fatalf("push: %d %s", r.status, r.raw)
			}
		}
		alertsBy := func(status string) []any {
			r := b.do("GET", "/api/v1/monitor/alerts?status="+status, tok, nil)
			items, _ := r.body["items"].([]any)
			return items
		}
		push(99) // one spike
		b.now.Advance(time.Minute)
		push(20)
		for range 5 { // 95 at 0,1,2,3,4 minutes: pending
			b.now.Advance(time.Minute)
			push(95)
			if n := len(alertsBy("")); n != 0 {
				t.Fatalf("fired early (%d alerts)", n)
			}
		}
		b.now.Advance(time.Minute)
		push(96) // five minutes held
		b.now.Advance(time.Minute)
		push(97)
		firing := alertsBy("firing")
		if len(firing) != 1 {
			t.Fatalf("firing alerts = %v", firing)
		}
		ev := firing[0].(map[string]any)
		if ev["value"] != 96.0 || ev["remediation_task_id"] == nil || ev["remediation_session_id"] == nil {
			t.Fatalf("alert = %v", ev)
		}
		tasks := b.do("GET", "/api/v1/ops/tasks", tok, nil)
		if n := strings.Count(tasks.raw, `"runbook_id":"`+rb.body["id"].(string)+`"`); n != 1 {
			t.Errorf("runbook started %d times: %s", n, tasks.raw)
		}
		b.settleEvents() // ops has taken the alert.fired event
		execs := b.do("GET", "/api/v1/ops/standing-orders/"+order.body["id"].(string)+"/executions", tok, nil)
		if items, _ := execs.body["items"].([]any); len(items) != 1 {
			t.Errorf("alert_fired reached %d order runs: %s", len(items), execs.raw)
		}
		// Every sample also fed the threshold order: it ran once, after two minutes above 90.
		if items, _ := b.do("GET", "/api/v1/ops/standing-orders/"+hot.body["id"].(string)+"/executions", tok, nil).body["items"].([]any); len(items) != 1 {
			t.Errorf("threshold order ran %d times", len(items))
		}
		// The remediation session used list_alerts and saw its alert; its runbook named the server.
		ctx := tenant.WithID(context.Background(), tid)
		sessID := ev["remediation_session_id"].(string)
		if s := b.do("GET", "/api/v1/agent/sessions/"+sessID, tok, nil); !strings.HasPrefix(s.body["title"].(string), "look at web-1: cpu high") {
			t.Errorf("{{.server}} is not the server's name: %s", s.body["title"])
		}
		sub := b.srv.Agent.Hub().Subscribe(sessID)
		defer b.srv.Agent.Hub().Unsubscribe(sub)
		var out string
		for out == "" {
			evs, err := b.srv.Agent.Events(ctx, sessID, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if e.Type == agent.EventToolResult && e.Tool == alerts.ToolListAlerts {
					out = e.Output
				}
			}
			if out != "" {
				break
			}
			select {
			case <-sub.C:
			case <-time.After(10 * time.Second):
				t.Fatal("the remediation session never listed alerts")
			}
		}
		if !strings.Contains(out, ev["id"].(string)) || !strings.Contains(out, "cpu high") {
			t.Errorf("list_alerts output: %s", out)
		}
		// The value drops: resolved, with the resolution and the run recorded.
		b.now.Advance(time.Minute)
		push(30)
		got := b.do("GET", "/api/v1/monitor/alerts/"+ev["id"].(string), tok, nil)
		if got.body["status"] != "resolved" || got.body["resolved_at"] == nil || !strings.Contains(got.raw, "after remediation task") {
			t.Errorf("resolved alert: %s", got.raw)
		}
		// The run that fixed it carries the resolution too.
		task := b.do("GET", "/api/v1/ops/tasks/"+ev["remediation_task_id"].(string), tok, nil)
		if r, _ := task.body["resolution"].(string); !strings.Contains(r, "after remediation task") {
			t.Errorf("remediation task without the alert's resolution: %s", task.raw)
		}
		if n := strings.Count(b.do("GET", "/api/v1/ops/tasks", tok, nil).raw, `"runbook_id":"`+rb.body["id"].(string)+`"`); n != 1 {
			t.Errorf("runbook started %d times in all", n)
		}
		if a := b.do("GET", "/api/v1/audit/logs?action_type=alert.remediation_started", tok, nil); !strings.Contains(a.raw, ev["id"].(string)) {
			t.Errorf("remediation not audited: %s", a.raw)
		}
	})
}

// TestMonitorAlertAPI covers validation, RBAC and acknowledgement.
func TestMonitorAlertAPI(t *testing.T) {
	t.Parallel()
	b := setupApp(t, storetest.OpenSQLite)
	_, tok := b.newTenant("mon-api")
	_, viewer := b.newUser(tok, "viewer@mon-api.example", auth.RoleViewer)
	_, operator := b.newUser(tok, "op@mon-api.example", auth.RoleOperator)
	cred := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "k", "type": "ssh_key", "secret": newKeyPEM(t)})
	srv := b.do("POST", "/api/v1/inventory/servers", tok, map[string]any{"name": "s", "host": "127.0.0.35", "credential_id": cred.body["id"], "host_key_policy": "tofu"})
	sid := srv.body["id"].(string)
	good := map[string]any{"name": "disk", "metric_type": "disk_usage", "condition": map[string]any{"operator": ">=", "threshold": 90, "duration_seconds": 0},
		"severity": "warning"}
	for field, change := range map[string]map[string]any{
		"condition.operator":  {"condition": map[string]any{"operator": "=>", "threshold": 1, "duration_seconds": 0}},
		"severity":            {"severity": "page"},
		"metric_type":         {"metric_type": "CPU"},
		"runbook_id":          {"runbook_id": "no-such-runbook"},
		"condition.threshold": {"condition": map[string]any{"operator": ">"}},
	} {
		body := map[string]any{}
		for k, v := range good {
			body[k] = v
		}
		for k, v := range change {
			body[k] = v
		}
		if r := b.do("POST", "/api/v1/monitor/alert-rules", tok, body); r.status != 400 || !strings.Contains(r.raw, field) {
			t.Errorf("%s: %d %s", field, r.status, r.raw)
		}
	}
	if r := b.do("POST", "/api/v1/monitor/alert-rules", tok, map[string]any{"name": "x", "bogus": 1}); r.status != 400 || !strings.Contains(r.raw, "bogus") {
		t.Errorf("unknown field: %d %s", r.status, r.raw)
	}
	if r := b.do("POST", "/api/v1/monitor/alert-rules", viewer, good); r.status != 403 {
		t.Errorf("viewer created a rule: %d", r.status)
	}
	rule := b.do("POST", "/api/v1/monitor/alert-rules", tok, good)
	if rule.status != 201 {
		t.Fatalf("rule: %s", rule.raw)
	}
	rid := rule.body["id"].(string)
	if r := b.do("GET", "/api/v1/monitor/alert-rules/"+rid, viewer, nil); r.status != 200 {
		t.Errorf("viewer read: %d", r.status)
	}
	if r := b.do("PATCH", "/api/v1/monitor/alert-rules/"+rid, tok, map[string]any{"severity": "critical", "condition": map[string]any{"threshold": 80}}); r.status != 200 ||
		r.body["severity"] != "critical" || r.body["condition"].(map[string]any)["threshold"] != 80.0 || r.body["condition"].(map[string]any)["operator"] != ">=" {
		t.Errorf("patch: %d %s", r.status, r.raw)
	}
	if r := b.do("PATCH", "/api/v1/monitor/alert-rules/"+rid, tok, map[string]any{"severity": "loud"}); r.status != 400 || !strings.Contains(r.raw, "severity") {
		t.Errorf("bad patch: %d %s", r.status, r.raw)
	}
	if r := b.do("POST", "/api/v1/monitor/metrics", viewer, map[string]any{"samples": []map[string]any{{"server_id": sid, "metric_type": "disk_usage", "value": 1}}}); r.status != 403 {
		t.Errorf("viewer pushed metrics: %d", r.status)
	}
	if r := b.do("POST", "/api/v1/monitor/metrics", tok, map[string]any{"samples": []map[string]any{{"server_id": "nope", "metric_type": "disk_usage", "value": 1}}}); r.status != 400 {
		t.Errorf("unknown server: %d %s", r.status, r.raw)
	}
	r := b.do("POST", "/api/v1/monitor/metrics", tok, map[string]any{"samples": []map[string]any{
		{"server_id": sid, "metric_type": "disk_usage", "label": "/", "value": 50}, {"server_id": sid, "metric_type": "disk_usage", "label": "/data", "value": 85}}})
	if r.status != 202 {
		t.Fatalf("push: %s", r.raw)
	}
	list := b.do("GET", "/api/v1/monitor/alerts?status=firing", viewer, nil)
	items, _ := list.body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("firing: %s", list.raw)
	}
	aid := items[0].(map[string]any)["id"].(string)
	if r := b.do("GET", "/api/v1/monitor/alerts?status=burning", tok, nil); r.status != 400 || !strings.Contains(r.raw, "status") {
		t.Errorf("bad status filter: %d %s", r.status, r.raw)
	}
	if r := b.do("POST", "/api/v1/monitor/alerts/"+aid+"/acknowledge", viewer, nil); r.status != 403 {
		t.Errorf("viewer acknowledged: %d", r.status)
	}
	ack := b.do("POST", "/api/v1/monitor/alerts/"+aid+"/acknowledge", operator, nil)
	if ack.status != 200 || ack.body["status"] != "acknowledged" || ack.body["acknowledged_by"] == nil {
		t.Errorf("ack: %d %s", ack.status, ack.raw)
	}
	if r := b.do("POST", "/api/v1/monitor/alerts/"+aid+"/acknowledge", operator, nil); r.status != 409 {
		t.Errorf("second ack: %d %s", r.status, r.raw)
	}
	if r := b.do("GET", "/api/v1/monitor/alerts?status=acknowledged", tok, nil); !strings.Contains(r.raw, aid) {
		t.Errorf("acknowledged filter: %s", r.raw)
	}
	if r := b.do("DELETE", "/api/v1/monitor/alert-rules/"+rid, tok, nil); r.status != 204 {
		t.Errorf("delete: %d %s", r.status, r.raw)
	}
	if r := b.do("GET", "/api/v1/monitor/alerts/"+aid, tok, nil); r.body["status"] != "resolved" {
		t.Errorf("alert of a deleted rule: %s", r.raw)
	}
}
