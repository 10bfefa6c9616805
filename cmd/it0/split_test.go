package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/voice/voicetest"
)

// TestMainFlow runs the main end-to-end flow on one process running every target, and on a split
// deployment of six processes (api, agent, ops, monitor, comm, voice) sharing PostgreSQL and Redis, with
// every request sent to the api process.
func TestMainFlow(t *testing.T) {
	t.Parallel()
	for i, mode := range []string{"single", "split"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			target := sshtest.Start(t, sshtest.Options{Addr: []string{"127.0.0.64", "127.0.0.65"}[i]})
			model := startFlowModel(t, "flow-key")
			env := append(speechEnv(voicetest.SpeechServer(t, "what did you find")), "IT0_ANTHROPIC_API_KEY=flow-key", "IT0_ANTHROPIC_BASE_URL="+model.srv.URL)
			var d *deployment
			if mode == "single" {
				d = startSingle(t, env...)
			} else {
				d = startSplit(t, env...)
			}
			mainFlow(t, d, model, target)
			if mode == "split" {
				checkSplitWork(t, d)
			}
		})
	}
}

// mainFlow is the end-to-end flow, through d's api process: log in, add a server, run an agent task whose
// L0 command's output reaches the model and whose L1 command pauses it until approved (followed live on a
// WebSocket), talk to the session by voice (through the voice process), cancel a running session, run a
// standing order by hand, and verify the audit chain.
func mainFlow(t *testing.T, d *deployment, model *flowModel, target *sshtest.Server) {
	tok := d.must(t, 200, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	serverID := d.addServer(t, tok, target)
	tenantID := d.must(t, 200, "GET", "/api/v1/auth/me", tok, nil)["tenant"].(map[string]any)["id"].(string)

	// An agent task: L0 runs, L1 pauses; the follower is connected before the decision, so what follows
	// the decision reaches it live.
	sid := d.must(t, 201, "POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "look at web-1, then restart nginx"})["session_id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := followLive(ctx, d.api, tok, sid)
	f.until(t, "approval_required", 60*time.Second)
	if !model.saw(mainOutput) {
		t.Fatal("the L0 command's output never reached the model")
	}
	items := d.must(t, 200, "GET", "/api/v1/agent/approvals?status=pending&session_id="+sid, tok, nil)["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("pending approvals of the session: %v", items)
	}
	ap := items[0].(map[string]any)
	if ap["command"] != "systemctl restart nginx" || ap["risk_level"] != 1.0 {
		t.Fatalf("the approval: %v", ap)
	}
	d.must(t, 200, "POST", "/api/v1/agent/approvals/"+ap["id"].(string)+"/approve", tok, nil)
	if after := f.until(t, "completed", 60*time.Second); !slices.Contains(after, "tool_result") {
		t.Fatalf("the approved command's result was not streamed live: %v", after)
	}
	waitFor(t, 30*time.Second, "the session to complete", func() bool {
		return d.must(t, 200, "GET", "/api/v1/agent/sessions/"+sid, tok, nil)["status"] == "completed"
	})
	if runner, want := d.runnerOf(t, tenantID, sid), replica(t, d.agent); runner != want {
		t.Fatalf("the session ran on %q, want the agent process %q", runner, want)
	}
	recs := d.must(t, 200, "GET", "/api/v1/inventory/command-records?session_id="+sid, tok, nil)["items"].([]any)
	var cmds []string
	for _, r := range recs {
		cmds = append(cmds, r.(map[string]any)["command"].(string))
	}
	if len(cmds) != 2 || !slices.Contains(cmds, "systemctl restart nginx") {
		t.Fatalf("each command must run exactly once: %v", cmds)
	}

	// Voice, where the Ingress sends it: the spoken turn continues the session on the agent process, and
	// the agent's answer is spoken back.
	if st := mustOn(t, d.voice, 200, "GET", "/api/v1/voice/status", tok, nil); st["available"] != true {
		t.Fatalf("voice status: %v", st)
	}
	vsID := mustOn(t, d.voice, 201, "POST", "/api/v1/voice/sessions", tok, map[string]any{"session_id": sid, "locale": "en"})["id"].(string)
	if user, reply, audio := voiceTurn(t, d.voice, tok, vsID); user != "what did you find" || !strings.HasPrefix(reply, "Done") || audio == 0 {
		t.Fatalf("voice turn: heard %q, answered %q, %d audio frames", user, reply, audio)
	}
	if runner, want := d.runnerOf(t, tenantID, sid), replica(t, d.agent); runner != want {
		t.Fatalf("the voice turn ran on %q, want the agent process %q", runner, want)
	}

	// Cancel reaches the process running the session.
	running := d.must(t, 201, "POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": hangMarker + ": look at web-1"})["session_id"].(string)
	select {
	case <-model.hung:
	case <-time.After(60 * time.Second):
		t.Fatal("the run to cancel never reached the model")
	}
	if s := d.must(t, 200, "POST", "/api/v1/agent/sessions/"+running+"/cancel", tok, nil); s["status"] != "cancelled" {
		t.Fatalf("cancelled session: %v", s)
	}
	waitFor(t, 30*time.Second, "the cancelled run's end", func() bool {
		logs := d.must(t, 200, "GET", "/api/v1/audit/logs?action_type=agent.task_cancelled", tok, nil)["items"].([]any)
		return len(logs) == 1
	})

	// A standing order run by hand completes and is reported.
	oid := d.must(t, 201, "POST", "/api/v1/ops/standing-orders", tok, map[string]any{"name": "disk check",
		"trigger": map[string]string{"type": "manual"}, "targets": map[string]any{"all_servers": true},
		"agent_instructions": map[string]any{"prompt": orderMarker + ": check the disk of web-1", "max_risk_level": 0}})["id"].(string)
	exec := d.must(t, 201, "POST", "/api/v1/ops/standing-orders/"+oid+"/run", tok, nil)
	waitFor(t, 60*time.Second, "the order's run to complete", func() bool {
		e := d.must(t, 200, "GET", "/api/v1/ops/standing-orders/"+oid+"/executions", tok, nil)["items"].([]any)
		if st := e[0].(map[string]any)["status"]; st != "running" && st != "completed" {
			t.Fatalf("the order's run: %v", e[0])
		}
		return e[0].(map[string]any)["status"] == "completed"
	})
	var logs []any
	waitFor(t, 30*time.Second, "the run's report", func() bool {
		logs = d.must(t, 200, "GET", "/api/v1/audit/logs?action_type=standing_order.run_completed", tok, nil)["items"].([]any)
		return len(logs) > 0
	})
	if detail := string(mustJSON(logs[0].(map[string]any)["detail"])); !strings.Contains(detail, `"report":"`) ||
		!strings.Contains(detail, fmt.Sprint(exec["id"])) {
		t.Fatalf("the completed run must be recorded and reported: %v", logs)
	}
	if v := d.must(t, 200, "GET", "/api/v1/audit/verify", tok, nil); v["ok"] != true {
		t.Fatalf("audit chain: %v", v)
	}
	// The run's end reaches the order twice (the in-process hook, then agent.run_ended through the
	// outbox): by the end it is still recorded once.
	if logs := d.must(t, 200, "GET", "/api/v1/audit/logs?action_type=standing_order.run_completed", tok, nil)["items"].([]any); len(logs) != 1 {
		t.Fatalf("the completed run was recorded %d times: %v", len(logs), logs)
	}

	// A threshold order fires from pushed samples: the api process stores them, and the process running
	// ops judges them (monitor.samples) against the hold stored in the database.
	hot := d.must(t, 201, "POST", "/api/v1/ops/standing-orders", tok, map[string]any{"name": "cpu hot",
		"trigger": map[string]any{"type": "threshold", "threshold_condition": map[string]any{"metric_type": "cpu_usage", "operator": ">",
			"value": 90, "duration_seconds": 60}},
		"targets": map[string]any{"all_servers": true}, "agent_instructions": map[string]any{"prompt": orderMarker + ": why is web-1 hot", "max_risk_level": 0}})["id"].(string)
	start := time.Now().UTC().Add(-2 * time.Minute)
	for i, v := range []float64{95, 97, 96} { // above 90 for two minutes
		d.must(t, 202, "POST", "/api/v1/monitor/metrics", tok, map[string]any{"samples": []map[string]any{
			{"server_id": serverID, "metric_type": "cpu_usage", "value": v, "collected_at": start.Add(time.Duration(i) * time.Minute)}}})
	}
	waitFor(t, 60*time.Second, "the threshold order's run", func() bool {
		e := d.must(t, 200, "GET", "/api/v1/ops/standing-orders/"+hot+"/executions", tok, nil)["items"].([]any)
		if len(e) > 1 {
			t.Fatalf("the threshold order ran %d times: %v", len(e), e)
		}
		return len(e) == 1 && e[0].(map[string]any)["status"] == "completed"
	})
}

// checkSplitWork checks that each process of a split runs only its own work: its runner claims only its
// targets' job kinds, and a path of another target is answered with an error naming the target.
func checkSplitWork(t *testing.T, d *deployment) {
	want := map[string][]string{
		"agent": {"agent.run", "session.resume"},
		"ops":   {"standing_order.cron", "standing_order.digest", "approval.sweep"},
		"comm":  {"escalation.step", "comm.retry"},
	}
	for name, p := range d.procs {
		kinds := jobKinds(p)
		if !strings.Contains(p.out.String(), `"targets":"`+name+`"`) {
			t.Errorf("process %s does not say it runs %s", name, name)
		}
		if len(want[name]) == 0 && len(kinds) > 0 {
			t.Errorf("process %s runs jobs %v", name, kinds)
		}
		for _, k := range want[name] {
			if !slices.Contains(kinds, k) {
				t.Errorf("process %s does not run %s jobs: %v", name, k, kinds)
			}
		}
		for other, ks := range want {
			for _, k := range ks {
				if other != name && slices.Contains(kinds, k) {
					t.Errorf("process %s runs %s's job %s: %v", name, other, k, kinds)
				}
			}
		}
	}
	// The api process points voice to the voice target (which served it in the flow), and the others to
	// the api target.
	for _, path := range []string{"/ws/voice", "/api/v1/voice/status"} {
		st, m := d.api.call(t, "GET", path, "", nil)
		if msg := fmt.Sprint(m["error"]); st != 503 || !strings.Contains(msg, "served by the voice target") {
			t.Errorf("%s on the api process: %d %v", path, st, m)
		}
	}
	if st, m := d.procs["ops"].call(t, "GET", "/api/v1/agent/sessions", "", nil); st != 503 || !strings.Contains(fmt.Sprint(m["error"]), "served by the api target") {
		t.Errorf("/api/v1/agent/sessions on the ops process: %d %v", st, m)
	}
	// Every process answers its probes.
	for name, p := range d.procs {
		if st, m := p.call(t, "GET", "/readyz", "", nil); st != 200 {
			t.Errorf("/readyz of %s: %d %v", name, st, m)
		}
	}
}
