package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestCLIAlertsAndMetrics runs the whole server in-process (so the real app wiring: alert rules evaluated
// on pushed samples, /metrics with IT0's own series) and drives it with `it0 alerts` and `it0 metrics`.
func TestCLIAlertsAndMetrics(t *testing.T) {
	t.Parallel()
	p, err := serveInProcess(t, t.TempDir(), map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password"})
	if err != nil {
		t.Fatal(err)
	}
	tok := p.api(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	cred := p.api(t, "POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "k", "type": "ssh_password", "secret": "pw", "username": "root"})
	srv := p.api(t, "POST", "/api/v1/inventory/servers", tok, map[string]any{"name": "web-1", "host": "127.0.0.36", "credential_id": cred["id"], "host_key_policy": "tofu"})
	sid := srv["id"].(string)
	p.api(t, "POST", "/api/v1/monitor/alert-rules", tok, map[string]any{"name": "disk full", "metric_type": "disk_usage",
		"condition": map[string]any{"operator": ">", "threshold": 90, "duration_seconds": 0}, "severity": "critical"})
	p.api(t, "POST", "/api/v1/monitor/metrics", tok, map[string]any{"samples": []map[string]any{{"server_id": sid, "metric_type": "disk_usage", "label": "/", "value": 97}}})
	env := map[string]string{"IT0_URL": "http://" + p.addr, "IT0_TOKEN": tok}
	out, stderr, err := runCLI(t, env, "", "alerts", "list", "--status", "firing")
	if err != nil || !strings.Contains(out, "disk full") || !strings.Contains(out, "critical") {
		t.Fatalf("alerts list: %v\n%s%s", err, out, stderr)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	if out, stderr, err := runCLI(t, env, "", "alerts", "ack", id); err != nil || !strings.Contains(out, "acknowledged "+id) {
		t.Errorf("alerts ack: %v\n%s%s", err, out, stderr)
	}
	if _, _, err := runCLI(t, env, "", "alerts", "ack", id); err == nil {
		t.Error("second ack succeeded")
	}
	out, stderr, err = runCLI(t, env, "", "metrics", "query", "--server", sid, "--metric", "disk_usage", "--from", "-10m", "--to", "-0s")
	if err != nil || !strings.Contains(out, "97.00") || !strings.Contains(out, "/") {
		t.Errorf("metrics query: %v\n%s%s", err, out, stderr)
	}
	if _, _, err := runCLI(t, env, "", "metrics", "query", "--metric", "cpu_usage"); err == nil {
		t.Error("query without --server accepted")
	}
	// IT0's own metrics.
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(raw)
	for _, want := range []string{`it0_alerts_firing{severity="critical"} 1`, "it0_agent_sessions{", "it0_approvals_pending 0",
		"it0_escalations_total 0", `it0_ssh_connections{state="open"}`, "it0_job_queue_lag_seconds", `it0_guard_verdicts_total{level="L0"}`,
		`it0_metrics_collect_errors_total{source="tenant"} 0`, `it0_http_requests_total{method="POST",route="/api/v1/auth/login",status="200"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Every series the Grafana dashboard plots exists (vectors appear once a label value is used).
	dash, err := os.ReadFile("../../deploy/grafana/it0-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dash) {
		t.Fatal("the dashboard is not valid JSON")
	}
	// Counter vectors appear once a label value is used; these see no use in this test.
	unused := map[string]bool{"it0_checks_run_total": true, "it0_agent_runs_total": true, "it0_agent_run_duration_seconds": true,
		"it0_agent_run_cost_usd_total": true, "it0_agent_run_tokens_total": true, "it0_approvals_decided_total": true,
		"it0_escalation_steps_total": true,
		"it0_targets_live":           true} // exported on PostgreSQL only (from the replica registry); this test runs on SQLite
	for _, name := range regexp.MustCompile(`it0_[a-z_]+[a-z]`).FindAllString(string(dash), -1) {
		name = strings.TrimSuffix(name, "_bucket")
		if !unused[name] && !strings.Contains(m, "# HELP "+name+" ") {
			t.Errorf("the dashboard plots %s, which IT0 does not export", name)
		}
	}
	// Every series the alert rules read exists too.
	for _, name := range alertRuleMetrics(t) {
		name = strings.TrimSuffix(name, "_bucket")
		if !unused[name] && !strings.Contains(m, "# HELP "+name+" ") {
			t.Errorf("deploy/prometheus/it0-alerts.yml reads %s, which IT0 does not export", name)
		}
	}
}
