package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/inventory/sshtest"
)

// hangingModel plays steps like agenttest.AnthropicServer, except that a request whose conversation
// contains marker never gets an answer: the run that sent it stays in flight until the process dies.
func hangingModel(t *testing.T, key, marker string, steps []agenttest.Step) (srv *httptest.Server, hung <-chan struct{}) {
	model := agenttest.AnthropicServer(t, key, steps)
	u, _ := url.Parse(model.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	ch := make(chan struct{}, 8)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(marker)) {
			ch <- struct{}{}
			<-r.Context().Done() // the client (the killed process) goes away
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// TestKillDuringRuns kills IT0 with SIGKILL while a standing order's run is in flight and while an
// approval is pending, then restarts it: the run's execution is marked failed and reported, and the
// approval still times out at its moment (an L1 auto-approves), after which its session runs the command
// once and completes.
func TestKillDuringRuns(t *testing.T) {
	t.Parallel()
	for i, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			target := sshtest.Start(t, sshtest.Options{Addr: []string{"127.0.0.50", "127.0.0.51"}[i], Password: true})
			model, hung := hangingModel(t, "kill-key", "You are carrying out standing order", []agenttest.Step{
				{Text: "Restarting nginx.", Server: "web-1", Command: "systemctl restart nginx"},
				{Text: "Done: nginx restarted.", Server: "", Command: ""}})
			dir := t.TempDir()
			env := backendEnv(t, backend, "IT0_BOOTSTRAP_ADMIN_PASSWORD=first-password", "IT0_LOG_LEVEL=info",
				"IT0_ANTHROPIC_API_KEY=kill-key", "IT0_ANTHROPIC_BASE_URL="+model.URL)
			c := startServe(t, env, "--data-dir", dir)
			must := func(want int, method, path, token string, body any) map[string]any {
				t.Helper()
				st, m := c.call(t, method, path, token, body)
				if st != want {
					t.Fatalf("%s %s: %d %v", method, path, st, m)
				}
				return m
			}
			tok := must(200, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
			cred := must(201, "POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "pw", "type": "ssh_password", "secret": target.Password.Reveal()})
			must(201, "POST", "/api/v1/inventory/servers", tok, map[string]any{"name": "web-1", "host": target.Addr, "port": target.Port,
				"ssh_user": target.PasswordUser, "credential_id": cred["id"], "host_key": target.HostKey})
			must(200, "PUT", "/api/v1/ops/approval-timeouts", tok, map[string]int{"l1_seconds": 15})

			// An interactive session pauses on an L1 confirmation.
			sid := must(201, "POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "restart nginx on web-1"})["session_id"].(string)
			var approval map[string]any
			waitFor(t, 30*time.Second, "the approval", func() bool {
				items := must(200, "GET", "/api/v1/ops/approvals?status=pending", tok, nil)["items"].([]any)
				if len(items) > 0 {
					approval = items[0].(map[string]any)
				}
				return approval != nil
			})
			// A standing order's run is in flight: its model call never returns.
			order := must(201, "POST", "/api/v1/ops/standing-orders", tok, map[string]any{"name": "slow-order check",
				"trigger": map[string]string{"type": "manual"}, "targets": map[string]any{"all_servers": true},
				"agent_instructions": map[string]any{"prompt": "slow-order: check the disk", "max_risk_level": 0}})
			oid := order["id"].(string)
			exec := must(201, "POST", "/api/v1/ops/standing-orders/"+oid+"/run", tok, nil)
			select {
			case <-hung:
			case <-time.After(30 * time.Second):
				t.Fatal("the standing order's run never reached the model")
			}

			c.cmd.Process.Signal(syscall.SIGKILL)
			c.cmd.Wait()
			c = startServe(t, env, "--data-dir", dir)

			// The run that was in flight is failed, said to be interrupted, and reported. On SQLite at once; on
			// PostgreSQL once the killed process's heartbeat is older than 15 s (until then it could be another
			// live replica of the same database).
			var e map[string]any
			waitFor(t, 60*time.Second, "the interrupted execution", func() bool {
				execs := must(200, "GET", "/api/v1/ops/standing-orders/"+oid+"/executions", tok, nil)["items"].([]any)
				e = execs[0].(map[string]any)
				return e["status"] != "running"
			})
			if e["id"] != exec["id"] || e["status"] != "failed" || e["finished_at"] == nil {
				t.Fatalf("the interrupted execution after restart: %v", e)
			}
			// The execution is updated before its run is audited and reported: wait for the record.
			var logs []any
			waitFor(t, 30*time.Second, "the failed run's audit record", func() bool {
				logs = must(200, "GET", "/api/v1/audit/logs?action_type=standing_order.run_failed", tok, nil)["items"].([]any)
				return len(logs) > 0
			})
			if len(logs) != 1 || !strings.Contains(string(mustJSON(logs[0].(map[string]any)["detail"])), `"report":"failed"`) {
				t.Fatalf("the failed run must be recorded and reported once: %v", logs)
			}

			// The pending approval still times out at its moment, after the restart.
			aid := approval["id"].(string)
			expires, _ := time.Parse(time.RFC3339Nano, approval["expires_at"].(string))
			var decided map[string]any
			waitFor(t, 60*time.Second, "the approval's timeout", func() bool {
				decided = must(200, "GET", "/api/v1/agent/approvals/"+aid, tok, nil)
				return decided["status"] != "pending"
			})
			at, _ := time.Parse(time.RFC3339Nano, decided["decided_at"].(string))
			if decided["status"] != "approved" || at.Before(expires) || at.Sub(expires) > 5*time.Second {
				t.Fatalf("approval expiring at %s: %s at %s", expires, decided["status"], at)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("session: %v\nevents: %v\nlog: %s", must(200, "GET", "/api/v1/agent/sessions/"+sid, tok, nil),
						must(200, "GET", "/api/v1/agent/sessions/"+sid+"/events", tok, nil), c.out.String())
				}
			})
			waitFor(t, 30*time.Second, "the session to complete", func() bool {
				sess := must(200, "GET", "/api/v1/agent/sessions/"+sid, tok, nil)
				if sess["status"] == "failed" {
					t.Fatalf("session failed: %v\nevents: %v", sess, must(200, "GET", "/api/v1/agent/sessions/"+sid+"/events", tok, nil))
				}
				return sess["status"] == "completed"
			})
			recs := must(200, "GET", "/api/v1/inventory/command-records?session_id="+sid, tok, nil)["items"].([]any)
			if len(recs) != 1 || recs[0].(map[string]any)["command"] != "systemctl restart nginx" {
				t.Fatalf("the approved command must run exactly once: %v", recs)
			}
			if logs := must(200, "GET", "/api/v1/audit/logs?action_type=standing_order.run_failed", tok, nil)["items"].([]any); len(logs) != 1 {
				t.Fatalf("the failed run was recorded %d times by the end: %v", len(logs), logs)
			}
			if v := must(200, "GET", "/api/v1/audit/verify", tok, nil); v["ok"] != true {
				t.Fatalf("audit chain after the kill: %v", v)
			}
		})
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
