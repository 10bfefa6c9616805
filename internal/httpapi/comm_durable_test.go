package httpapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/commtest"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/store/storetest"
)

// TestSMSAnswerReturnsAtOnce: an SMS "Y" to an escalation is answered by the webhook without waiting for
// the approved command — which cannot finish before the test lets it, after the webhook returned — and the
// escalation is already marked answered then; the command then completes on the server and the run ends.
func TestSMSAnswerReturnsAtOnce(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.18"})
	cred := f.do("POST", "/api/v1/inventory/credentials", f.tok, map[string]string{"name": "k", "type": "ssh_key", "secret": target.UserKey.Reveal()})
	if r := f.do("POST", "/api/v1/inventory/servers", f.tok, map[string]any{"name": "web-1", "host": target.Addr, "port": target.Port,
		"ssh_user": target.User, "credential_id": cred.body["id"], "host_key": target.HostKey}); r.status != 201 {
		t.Fatalf("server: %d %s", r.status, r.raw)
	}
	dir := t.TempDir()
	done, release := filepath.Join(dir, "done"), filepath.Join(dir, "release")
	command := "until test -e " + release + "; do sleep 0.1; done; touch " + done
	f.eng.byPrompt["slow"] = []scriptStep{{agent.ToolRunCommand, `{"server":"web-1","command":` + jsonString(command) + `}`}}

	sid, id := f.escalate(t, "slow: standing order SO-test")
	f.due(t) // the first step reaches the primary in the app
	r := f.sms(t, primaryPhone, "Y", "SM-durable", commtest.TwilioToken)
	if r.status != 200 || !strings.Contains(r.raw, "<Message>Thanks") {
		t.Fatalf("answer: %d %s", r.status, r.raw)
	}
	if esc := f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil); esc.body["status"] != "answered" || esc.body["answered_channel"] != "sms" {
		t.Errorf("escalation when the answer returned: %s", esc.raw)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool {
		return s.Status == agent.StatusCompleted || s.Status == agent.StatusFailed
	})
	if _, err := os.Stat(done); err != nil {
		t.Errorf("the approved command did not complete: %v", err)
	}
	recs := f.do("GET", "/api/v1/inventory/command-records?session_id="+sid, f.tok, nil).body["items"].([]any)
	if len(recs) != 1 || recs[0].(map[string]any)["status"] != "ok" {
		t.Errorf("command records: %v", recs)
	}
	// The durable resume job finds the session resumed already and changes nothing.
	f.due(t)
	if recs := f.do("GET", "/api/v1/inventory/command-records?session_id="+sid, f.tok, nil).body["items"].([]any); len(recs) != 1 {
		t.Errorf("the command ran again: %v", recs)
	}
}

// TestEscalationFollowsOrderRule: a standing order's run escalates naming the order's rule 1 (disk above
// 95% → SMS, high): the escalation is critical and the primary gets an SMS at once — not only at the
// default ladder's 5 minutes — that fits one segment and says which server, which order, what was found,
// what is proposed, until when and how to answer. A run that names no rule follows the order's policy.
func TestEscalationFollowsOrderRule(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	cred := f.do("POST", "/api/v1/inventory/credentials", f.tok, map[string]string{"name": "k", "type": "ssh_key", "secret": newKeyPEM(t)})
	if r := f.do("POST", "/api/v1/inventory/servers", f.tok, map[string]any{"name": "web-1", "host": "127.0.0.1", "port": 1,
		"credential_id": cred.body["id"], "host_key_policy": "tofu"}); r.status != 201 {
		t.Fatalf("server: %d %s", r.status, r.raw)
	}
	for k := range f.eng.byPrompt { // an order's run prompt names priorities such as "critical": only this test's scripts
		delete(f.eng.byPrompt, k)
	}
	f.eng.byPrompt["disk-rule"] = []scriptStep{{"report_escalation",
		`{"reason":"disk / at 97% on web-1","proposal":"delete rotated logs in /var/log/app","server":"web-1","rule":"1"}`}}
	f.eng.byPrompt["no-rule"] = []scriptStep{{"report_escalation", `{"reason":"load is odd","proposal":"look at it"}`}}
	order := func(prompt string) string {
		r := f.do("POST", "/api/v1/ops/standing-orders", f.tok, map[string]any{"name": "disk guard",
			"trigger": map[string]string{"type": "manual"}, "targets": map[string]any{"server_ids": []string{"web-1"}},
			"agent_instructions": map[string]any{"prompt": prompt, "max_risk_level": 1},
			"decision_boundary": map[string]any{"escalation_rules": []map[string]string{
				{"condition": "disk above 95%", "channel": "sms", "priority": "high"},
				{"condition": "a service is down", "channel": "voice_call", "priority": "urgent"}}},
			"escalation_policy_id": "normal"})
		if r.status != 201 {
			t.Fatalf("order: %d %s", r.status, r.raw)
		}
		return r.body["id"].(string)
	}
	escalation := func(id string) map[string]any {
		t.Helper()
		r := f.do("POST", "/api/v1/ops/standing-orders/"+id+"/run", f.tok, nil)
		if r.status != 201 {
			t.Fatalf("run: %d %s", r.status, r.raw)
		}
		sid := r.body["session_id"].(string)
		f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusAwaitingApproval })
		for _, e := range f.do("GET", "/api/v1/comm/escalations", f.tok, nil).body["items"].([]any) {
			if e.(map[string]any)["session_id"] == sid {
				return e.(map[string]any)
			}
		}
		t.Fatalf("no escalation for %s", sid)
		return nil
	}

	id := order("disk-rule: check the disks")
	esc := escalation(id)
	if esc["severity"] != "critical" {
		t.Errorf("severity: %v", esc["severity"])
	}
	f.due(t)
	sms := f.prov.Sent("sms")
	if len(sms) != 1 || sms[0].To != primaryPhone {
		t.Fatalf("the rule's SMS at once: %+v", sms)
	}
	body := sms[0].Body
	for _, want := range []string{"web-1", id, "disk / at 97% on web-1", "Proposed: delete rotated", "Reply Y " + esc["ref"].(string), "UTC"} {
		if !strings.Contains(body, want) {
			t.Errorf("SMS lacks %q: %s", want, body)
		}
	}
	if n := len([]rune(body)); n > 160 {
		t.Errorf("SMS is %d characters, more than one segment: %s", n, body)
	}
	if calls := f.prov.Sent("phone"); len(calls) != 0 {
		t.Errorf("a call before the ladder's 2 minutes: %+v", calls)
	}
	if au := f.do("GET", "/api/v1/audit/logs?action_type=escalation.started", f.tok, nil); !strings.Contains(au.raw, "disk above 95%") {
		t.Errorf("the rule is not on record: %s", au.raw)
	}
	// Answer it, so the next run of the other order is the only open escalation.
	if r := f.sms(t, primaryPhone, "N "+esc["ref"].(string), "SM-rule", commtest.TwilioToken); r.status != 200 {
		t.Fatalf("answer: %d %s", r.status, r.raw)
	}

	// No rule named: the order's policy (normal = warning).
	if esc := escalation(order("no-rule: check the load")); esc["severity"] != "warning" {
		t.Errorf("without a rule: %v", esc["severity"])
	}
}

// TestNoticeFallsBack: a report for the app and push, with no app client connected and no FCM, reaches the
// primary by SMS instead, and the message log says so; sending it again sends nothing twice.
func TestNoticeFallsBack(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	cs := f.comm.cur.Load()
	n := comm.Notice{Audience: comm.AudiencePrimary, Channels: []string{comm.ChannelApp, comm.ChannelPush}, Severity: comm.SeverityInfo,
		Subject: "[IT0] SO-1 acted", Body: "cleaned old logs on web-1", Key: "so-report:fallback"}
	for range 2 {
		if err := cs.Notify(f.ctx(), n); err != nil {
			t.Fatal(err)
		}
	}
	sms := f.prov.Sent(comm.ChannelSMS)
	if len(sms) != 1 || sms[0].To != primaryPhone || !strings.Contains(sms[0].Body, "cleaned old logs") {
		t.Fatalf("fallback SMS: %+v (all: %v)", sms, f.sends())
	}
	r := f.do("GET", "/api/v1/comm/messages?limit=50&contact_id="+f.contacts["primary"], f.tok, nil)
	var app map[string]any
	for _, m := range r.body["items"].([]any) {
		if m.(map[string]any)["channel"] == comm.ChannelApp {
			app = m.(map[string]any)
		}
	}
	if app == nil || app["status"] != comm.StatusFailed || !strings.Contains(app["error"].(string), "fell back to sms") {
		t.Errorf("the message log must say the app message fell back: %v", app)
	}
	if au := f.do("GET", "/api/v1/audit/logs?action_type=comm.notice_fallback", f.tok, nil); !strings.Contains(au.raw, "sent by sms") {
		t.Errorf("fallback not audited: %s", au.raw)
	}
}

// TestApprovalPushFollowsLocale: in a zh-CN tenant the in-app approval prompt of an interactive session
// (subject, text and buttons) is in Chinese.
func TestApprovalPushFollowsLocale(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	if r := f.do("GET", "/api/v1/auth/tenants/"+f.tid, f.adminTok, nil); r.body["locale"] != "zh-CN" {
		t.Fatalf("the fixture tenant should default to zh-CN: %v", r.body["locale"])
	}
	cred := f.do("POST", "/api/v1/inventory/credentials", f.tok, map[string]string{"name": "k", "type": "ssh_key", "secret": newKeyPEM(t)})
	if r := f.do("POST", "/api/v1/inventory/servers", f.tok, map[string]any{"name": "web-1", "host": "127.0.0.1", "port": 1,
		"credential_id": cred.body["id"], "host_key_policy": "tofu"}); r.status != 201 {
		t.Fatalf("server: %d %s", r.status, r.raw)
	}
	ws := f.dialComm(t, f.tok)
	if _, _, err := f.agentSvc.Load().StartTask(f.ctx(), agent.StartParams{Prompt: "boundary: by hand"}); err != nil {
		t.Fatal(err)
	}
	ev := readApp(t, ws)
	if !strings.Contains(ev.Subject, "操作待您审批") || !strings.Contains(ev.Text, "智能体请求执行") || len(ev.Actions) != 2 || ev.Actions[0].Label != "批准" {
		t.Errorf("approval push in a zh-CN tenant: %+v", ev)
	}
}

// TestContactDefaults: a contact without an audience is a primary one; one without a user is linked to
// the user with its email, or else carries a warning (at creation and when read) that it cannot answer.
func TestContactDefaults(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	r := f.do("POST", "/api/v1/comm/contacts", f.tok, map[string]any{"name": "Zhao", "phone": "+8613800003333"})
	if w, _ := r.body["warning"].(string); r.status != 201 || r.body["audience"] != "primary" || !strings.Contains(w, "answers to escalations are refused") {
		t.Fatalf("contact without audience or user: %d %s", r.status, r.raw)
	}
	if g := f.do("GET", "/api/v1/comm/contacts/"+r.body["id"].(string), f.tok, nil); g.body["warning"] == nil {
		t.Errorf("GET lacks the warning: %s", g.raw)
	}
	if l := f.do("GET", "/api/v1/comm/contacts?audience=primary", f.tok, nil); !strings.Contains(l.raw, "linked to no user") {
		t.Errorf("list lacks the warning: %s", l.raw)
	}
	r = f.do("POST", "/api/v1/comm/contacts", f.tok, map[string]any{"name": "Admin", "email": "ADMIN@comm.example"})
	if r.status != 201 || r.body["user_id"] != f.adminID || r.body["warning"] != nil {
		t.Errorf("contact with a user's email: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/api/v1/comm/contacts", f.tok, map[string]any{"name": "X", "audience": "friends", "phone": "+8613800004444"}); r.status != 400 {
		t.Errorf("unknown audience: %d", r.status)
	}
}
