package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/bus/bustest"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/commtest"
	"github.com/it0/it0/internal/comm/twilio"
	"github.com/it0/it0/internal/inventory/sshtest"
)

// providerFront stands before commtest's provider for several replicas: replica i is configured with the
// base URL URL/r<i>, so the front knows which replica sent each request. It keeps every request it took,
// and the first escalation SMS to hangTo never gets an answer: its sender stays in flight until it dies.
type providerFront struct {
	URL string

	mu       sync.Mutex
	received []frontRequest
	hangTo   string
	hung     chan int // the replica whose request hangs
}

type frontRequest struct {
	replica  int
	to, body string
}

// escalationSMS marks an escalation's SMS (comm's "sms" text in English), not a notice.
const escalationSMS = "Reply Y "

func newProviderFront(t *testing.T, prov *commtest.Provider, hangTo string) *providerFront {
	f := &providerFront{hangTo: hangTo, hung: make(chan int, 1)}
	u, _ := url.Parse(prov.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var replica int
		rest, ok := strings.CutPrefix(r.URL.Path, "/r")
		if i := strings.IndexByte(rest, '/'); ok && i > 0 {
			fmt.Sscan(rest[:i], &replica)
			r.URL.Path = rest[i:]
		}
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		to, text := form.Get("To"), form.Get("Body")
		f.mu.Lock()
		first := to == f.hangTo && strings.Contains(text, escalationSMS) && len(f.from(to, escalationSMS)) == 0
		f.received = append(f.received, frontRequest{replica, to, text})
		f.mu.Unlock()
		if first {
			f.hung <- replica
			<-r.Context().Done()
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// from returns the replicas that sent a request to to whose text contains marker, in order. The caller
// holds f.mu.
func (f *providerFront) from(to, marker string) []int {
	var out []int
	for _, r := range f.received {
		if r.to == to && strings.Contains(r.body, marker) {
			out = append(out, r.replica)
		}
	}
	return out
}

// sentBy is from for a caller that does not hold f.mu.
func (f *providerFront) sentBy(to, marker string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.from(to, marker)
}

// TestClusterKillEscalation runs three replicas on PostgreSQL and Redis. An unattended standing order run
// goes beyond its boundary and escalates by SMS: step 0 to the primary at once, step 1 to the backup 30 s
// later, step 2 to the managers after 30 min. The provider holds step 0's request, and the replica sending
// it is killed with SIGKILL in mid-request. Then: a survivor sends step 1, and step 0 again once the
// dead replica's lease on it has run out, each accepted by the provider exactly once; the primary's SMS
// answer on a survivor stops the chain (step 2 never runs) and approves the run, which completes; the audit
// log has every row once and its chain verifies.
func TestClusterKillEscalation(t *testing.T) {
	t.Parallel()
	const primary, backup, managers = "+8613800001111", "+8613800002222", "+8613800003333"
	const publicURL = "http://it0.example"
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.64"})
	model := agenttest.AnthropicServer(t, "esc-key", []agenttest.Step{
		{Text: "nginx must restart.", Server: "web-1", Command: "systemctl restart nginx"},
		{Text: "Done: nginx restarted.", Server: "", Command: ""}})
	prov := commtest.NewProvider(t, time.Now)
	front := newProviderFront(t, prov, primary)

	rs := bustest.StartRedis(t)
	c := &cluster{redis: rs, env: backendEnv(t, "postgres", "IT0_BOOTSTRAP_ADMIN_PASSWORD=first-password", "IT0_LOG_LEVEL=info",
		"IT0_REDIS_URL="+rs.URL(), "IT0_ANTHROPIC_API_KEY=esc-key", "IT0_ANTHROPIC_BASE_URL="+model.URL, "IT0_PUBLIC_URL="+publicURL,
		"IT0_TWILIO_ACCOUNT_SID="+commtest.TwilioSID, "IT0_TWILIO_AUTH_TOKEN="+commtest.TwilioToken,
		"IT0_TWILIO_PHONE_NUMBER="+commtest.TwilioNumber)}
	for i := range 3 {
		env := append(slices.Clone(c.env), fmt.Sprintf("IT0_TWILIO_BASE_URL=%s/r%d", front.URL, i))
		c.members = append(c.members, startServe(t, env, "--data-dir", t.TempDir()))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, m := range c.members {
				t.Logf("replica %d log:\n%s", i, m.out.String())
			}
		}
	})
	c.tok = c.must(t, 0, 200, "POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@it0.local", "password": "first-password"})["access_token"].(string)
	c.addServer(t, target)
	admin := c.must(t, 0, 200, "GET", "/api/v1/auth/me", c.tok, nil)["user"].(map[string]any)["id"].(string)
	for _, ct := range []map[string]any{
		{"name": "Li (on call)", "audience": "primary", "user_id": admin, "phone": primary, "locale": "en"},
		{"name": "Wang", "audience": "backup", "phone": backup, "locale": "en"},
		{"name": "Boss", "audience": "managers", "phone": managers, "locale": "en"}} {
		c.must(t, 1, 201, "POST", "/api/v1/comm/contacts", c.tok, ct)
	}
	c.must(t, 2, 200, "PUT", "/api/v1/comm/escalation-policies/critical", c.tok, map[string]any{"steps": []map[string]any{
		{"delay_seconds": 0, "channels": []string{"sms"}, "audience": "primary"},
		{"delay_seconds": 30, "channels": []string{"sms"}, "audience": "backup"},
		{"delay_seconds": 1800, "channels": []string{"sms"}, "audience": "managers"}}})
	oid := c.must(t, 0, 201, "POST", "/api/v1/ops/standing-orders", c.tok, map[string]any{"name": "nginx guard",
		"trigger":            map[string]string{"type": "manual"},
		"targets":            map[string]any{"all_servers": true},
		"agent_instructions": map[string]any{"prompt": "keep nginx up on web-1", "max_risk_level": 0}})["id"].(string)
	run := c.must(t, 0, 201, "POST", "/api/v1/ops/standing-orders/"+oid+"/run", c.tok, nil)["session_id"].(string)

	// Step 0's request hangs at the provider: kill the replica that sent it.
	var victim int
	select {
	case victim = <-front.hung:
	case <-time.After(90 * time.Second):
		t.Fatalf("step 0 never reached the provider; the run: %v; its approvals: %v; jobs:\n%s", c.must(t, 1, 200, "GET", "/api/v1/agent/sessions/"+run, c.tok, nil),
			c.must(t, 1, 200, "GET", "/api/v1/agent/approvals?session_id="+run, c.tok, nil),
			psql(t, c.env, `SELECT kind, unique_key, state, attempt, last_error FROM it0_jobs.jobs ORDER BY id`))
	}
	survivor := (victim + 1) % 3
	// The run has paused before its replica dies, while the step is still in flight (the provider holds it;
	// comm's client gives up after 15 s). The pause stores the engine's state with the status, so a paused
	// session resumes on a survivor; a run killed before it paused is failed and its approval withdrawn
	// (internal/agent TestKillDuringPause), which is not the chain this test follows.
	waitFor(t, 10*time.Second, "the run to pause", func() bool {
		return c.must(t, survivor, 200, "GET", "/api/v1/agent/sessions/"+run, c.tok, nil)["status"] == "awaiting_approval"
	})
	c.members[victim].cmd.Process.Signal(syscall.SIGKILL)
	c.members[victim].cmd.Wait()

	items := c.must(t, survivor, 200, "GET", "/api/v1/agent/approvals?status=pending&session_id="+run, c.tok, nil)["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("pending approvals of the run: %v", items)
	}
	id := items[0].(map[string]any)["id"].(string)
	ref := c.must(t, survivor, 200, "GET", "/api/v1/comm/escalations/"+id, c.tok, nil)["ref"].(string)
	marker := escalationSMS + ref
	t.Cleanup(func() {
		if t.Failed() {
			for _, path := range []string{"/api/v1/agent/sessions/" + run, "/api/v1/agent/sessions/" + run + "/events",
				"/api/v1/agent/approvals?session_id=" + run, "/api/v1/ops/standing-orders/" + oid + "/executions"} {
				_, m := c.members[survivor].call(t, "GET", path, c.tok, nil)
				t.Logf("%s: %v", path, m)
			}
			t.Logf("jobs:\n%s", psql(t, c.env, `SELECT kind, unique_key, state, attempt, last_error FROM it0_jobs.jobs ORDER BY id`))
		}
	})

	// Step 1 on a survivor; step 0 again once the dead replica's lease ran out (the job runner's lease is
	// its handler timeout + 30 s: 90 s).
	accepted := func(to string) int {
		n := 0
		for _, s := range prov.Sent(comm.ChannelSMS) {
			if s.To == to && strings.Contains(s.Body, marker) {
				n++
			}
		}
		return n
	}
	waitFor(t, 60*time.Second, "step 1", func() bool { return accepted(backup) == 1 })
	waitFor(t, 150*time.Second, "step 0 sent again by a survivor", func() bool { return accepted(primary) == 1 })
	if got := front.sentBy(backup, marker); len(got) != 1 || got[0] == victim {
		t.Fatalf("step 1 sent by replicas %v (replica %d is dead)", got, victim)
	}

	// The primary answers by SMS, on a survivor: the chain stops and the run goes on.
	form := url.Values{"MessageSid": {"SM-kill-answer"}, "SmsSid": {"SM-kill-answer"}, "AccountSid": {commtest.TwilioSID},
		"From": {primary}, "To": {commtest.TwilioNumber}, "Body": {"Y " + ref}}
	req, _ := http.NewRequest("POST", "http://"+c.members[survivor].addr+"/api/v1/twilio/sms", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature(commtest.TwilioToken, publicURL+"/api/v1/twilio/sms", form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("SMS answer: %d", resp.StatusCode)
	}
	waitFor(t, 30*time.Second, "the answered escalation", func() bool {
		return c.must(t, survivor, 200, "GET", "/api/v1/comm/escalations/"+id, c.tok, nil)["status"] == "answered"
	})
	// The escalation is finished first, then its later steps are cancelled.
	waitFor(t, 30*time.Second, "step 2's job cancelled", func() bool {
		return strings.TrimSpace(psql(t, c.env, fmt.Sprintf(`SELECT state FROM it0_jobs.jobs WHERE unique_key = 'esc:%s:2'`, id))) == "cancelled"
	})
	waitFor(t, 60*time.Second, "the approved run to complete", func() bool {
		e := c.must(t, survivor, 200, "GET", "/api/v1/ops/standing-orders/"+oid+"/executions", c.tok, nil)["items"].([]any)
		return len(e) == 1 && e[0].(map[string]any)["status"] == "completed"
	})
	if recs := c.must(t, survivor, 200, "GET", "/api/v1/inventory/command-records?session_id="+run, c.tok, nil)["items"].([]any); len(recs) != 1 {
		t.Fatalf("the approved command must run exactly once: %v", recs)
	}

	// Each step fired once at the provider: step 0's first request died with its replica, unanswered.
	if a, b, m := accepted(primary), accepted(backup), accepted(managers); a != 1 || b != 1 || m != 0 {
		t.Fatalf("SMS accepted by the provider: primary %d, backup %d, managers %d; want 1, 1, 0", a, b, m)
	}
	if got := front.sentBy(primary, marker); len(got) != 2 || got[0] != victim || got[1] == victim {
		t.Fatalf("requests for step 0 came from replicas %v; want the victim %d, then one survivor", got, victim)
	}
	msgs := c.must(t, survivor, 200, "GET", "/api/v1/comm/messages?limit=100&escalation_id="+id, c.tok, nil)["items"].([]any)
	var out []string
	for _, m := range msgs {
		m := m.(map[string]any)
		if m["direction"] == "outbound" {
			out = append(out, fmt.Sprint(m["step"], ":", m["status"]))
		}
	}
	if slices.Sort(out); strings.Join(out, " ") != "0:sent 1:sent" {
		t.Fatalf("outbound messages of the escalation (step:status): %v", out)
	}
	// Every row once (escalation.started included: a replica killed between creating the escalation and
	// recording its start leaves it to the survivor that handles the event again). The run's completion is
	// recorded when the run-end event reaches ops: wait for it.
	rows := func(action string) int {
		return len(c.must(t, survivor, 200, "GET", "/api/v1/audit/logs?limit=100&action_type="+action, c.tok, nil)["items"].([]any))
	}
	waitFor(t, 30*time.Second, "the run's completion in the audit log", func() bool { return rows("standing_order.run_completed") >= 1 })
	for action, want := range map[string]int{"escalation.started": 1, "escalation.answered": 1, "approval.requested": 1,
		"approval.approved": 1, "standing_order.run_started": 1, "command.executed": 1,
		"standing_order.run_awaiting_human": 1, "standing_order.run_completed": 1} {
		if n := rows(action); n != want {
			t.Errorf("audit rows %s: %d, want %d", action, n, want)
		}
	}
	if t.Failed() {
		for _, e := range c.must(t, survivor, 200, "GET", "/api/v1/audit/logs?limit=1000", c.tok, nil)["items"].([]any) {
			t.Logf("audit: %v", e)
		}
	}
	if v := c.must(t, survivor, 200, "GET", "/api/v1/audit/verify", c.tok, nil); v["ok"] != true {
		t.Fatalf("audit chain after the kill: %v", v)
	}
}
