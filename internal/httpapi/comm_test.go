package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/commtest"
	"github.com/it0/it0/internal/comm/email"
	"github.com/it0/it0/internal/comm/twilio"
	"github.com/it0/it0/internal/jobs/jobstest"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// testPublicURL is where the tests' providers "reach" IT0: signatures and links are made for it.
const testPublicURL = "https://it0.example"

// commState is the comm service of the bundle's app (a restart replaces it).
type commState struct {
	cur atomic.Pointer[comm.Service]
}

// commFixture is a tenant with a primary (the admin), a backup (an operator) and a manager contact,
// fake providers on every channel but push, and the scripted engine whose standing-order run escalates.
type commFixture struct {
	*testBundle
	eng      *scriptEngine
	tid, tok string
	adminID  string
	opTok    string
	contacts map[string]string // audience → contact id
	prov     *commtest.Provider
	smtp     *commtest.SMTPServer
}

const (
	primaryPhone = "+8613800001111"
	backupPhone  = "+8613800002222"
)

// newCommFixture builds the app with its comm providers configured as an operator would (IT0_TWILIO_*,
// IT0_TELEGRAM_*, IT0_WECOM_*, IT0_SMTP_*) pointing at the stand-ins, and its loops stopped: the test
// moves the clock and runs what is due (f.due). more changes the app's knobs further (the voice fixture).
func newCommFixture(t *testing.T, open func(testing.TB) *store.DB, more ...func(*appKnobs)) *commFixture {
	t.Helper()
	eng := &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: commScript()}
	clock := jobstest.NewClock(time.Now().UTC())
	prov := commtest.NewProvider(t, clock.Now)
	smtp := commtest.StartSMTP(t, false)
	mail := smtp.Config(email.TLSStartTLS)
	k := appKnobs{engines: []agent.Engine{eng}, manual: true, clock: clock, mail: mail.TLSConfig,
		env: map[string]string{"IT0_PUBLIC_URL": testPublicURL,
			"IT0_TWILIO_ACCOUNT_SID": commtest.TwilioSID, "IT0_TWILIO_AUTH_TOKEN": commtest.TwilioToken,
			"IT0_TWILIO_PHONE_NUMBER": commtest.TwilioNumber, "IT0_TWILIO_BASE_URL": prov.URL,
			"IT0_TELEGRAM_BOT_TOKEN": commtest.TelegramToken, "IT0_TELEGRAM_WEBHOOK_SECRET": commtest.TelegramSecret,
			"IT0_TELEGRAM_BASE_URL": prov.URL, "IT0_WECOM_WEBHOOK_KEY": commtest.WeComKey, "IT0_WECOM_BASE_URL": prov.URL,
			"IT0_SMTP_HOST": mail.Host, "IT0_SMTP_PORT": strconv.Itoa(mail.Port), "IT0_SMTP_USERNAME": mail.Username,
			"IT0_SMTP_PASSWORD": mail.Password.Reveal(), "IT0_SMTP_FROM": mail.From, "IT0_SMTP_TLS": mail.TLS}}
	for _, m := range more {
		m(&k)
	}
	b := setupAppWith(t, open, k)
	f := &commFixture{testBundle: b, eng: eng, contacts: map[string]string{}, prov: prov, smtp: smtp}
	f.tid, f.tok = b.newTenant("comm")
	f.adminID = b.do("GET", "/api/v1/auth/me", f.tok, nil).body["user"].(map[string]any)["id"].(string)
	opID, opTok := b.newUser(f.tok, "op@comm.example", auth.RoleOperator)
	f.opTok = opTok
	for aud, body := range map[string]map[string]any{
		"primary": {"name": "Li (on call)", "audience": "primary", "user_id": f.adminID, "phone": primaryPhone, "telegram_chat_id": "1001",
			"wecom_user_id": "li", "email": "li@example.com", "locale": "en"},
		"backup":   {"name": "Wang", "audience": "backup", "user_id": opID, "phone": backupPhone, "telegram_chat_id": "1002"},
		"managers": {"name": "Boss", "audience": "managers", "email": "boss@example.com"},
	} {
		r := b.do("POST", "/api/v1/comm/contacts", f.tok, body)
		if r.status != 201 {
			t.Fatalf("contact %s: %d %s", aud, r.status, r.raw)
		}
		f.contacts[aud] = r.body["id"].(string)
	}
	return f
}

// commScript is a new copy of the comm fixture's engine script (the engine consumes it): a critical and a
// warning escalation, and a command beyond the boundary.
func commScript() map[string][]scriptStep {
	return map[string][]scriptStep{
		"critical": {{ops.ToolReportEscalation, `{"reason":"disk 97% on web-1","proposal":"restart nginx","severity":"critical"}`}},
		"warning":  {{ops.ToolReportEscalation, `{"reason":"disk 80% on web-2","severity":"warning"}`}},
		"boundary": {{agent.ToolRunCommand, `{"server":"web-1","command":"apt-get install -y nginx"}`}},
	}
}

// ctx is the tenant's context as its admin.
func (f *commFixture) ctx() context.Context {
	return auth.WithPrincipal(tenant.WithID(context.Background(), f.tid), auth.Principal{UserID: f.adminID, TenantID: f.tid, Role: auth.RoleAdmin})
}

// escalate starts an unattended (standing-order) run whose script matches prompt and returns its session
// and the approval it escalated.
func (f *commFixture) escalate(t *testing.T, prompt string) (string, string) {
	t.Helper()
	zero := 0
	sess, _, err := f.agentSvc.Load().StartTask(f.ctx(), agent.StartParams{Prompt: prompt, Origin: agent.OriginStandingOrder,
		OriginID: "SO-test", MaxRiskLevel: &zero})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	f.waitSession(t, sess.ID, func(s *agent.Session) bool {
		if s.Status != agent.StatusAwaitingApproval {
			return false
		}
		list, _ := f.approvals.List(f.ctx(), sess.ID, approval.Pending, 1)
		if len(list) > 0 {
			id = list[0].ID
		}
		return id != ""
	})
	f.settleEvents() // comm has started the escalation
	return sess.ID, id
}

// waitSession waits until ok holds for the session, re-checking at each of its events.
func (f *commFixture) waitSession(t *testing.T, sid string, ok func(*agent.Session) bool) *agent.Session {
	t.Helper()
	ag := f.agentSvc.Load()
	sub := ag.Hub().Subscribe(sid)
	defer ag.Hub().Unsubscribe(sub)
	deadline := time.After(20 * time.Second)
	for {
		s, err := ag.Session(f.ctx(), sid)
		if err != nil {
			t.Fatal(err)
		}
		if ok(s) {
			return s
		}
		select {
		case <-sub.C:
		case <-time.After(20 * time.Millisecond): // a status change publishes no event of its own
		case <-deadline:
			t.Fatalf("session %s: still %s", sid, s.Status)
		}
	}
}

func (f *commFixture) due(t *testing.T) {
	t.Helper()
	f.settleEvents()
	if _, err := f.jobs.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// sms posts an inbound SMS as Twilio would, signed with token (the account's, or another to forge it).
func (f *commFixture) sms(t *testing.T, from, body, sid, token string) response {
	t.Helper()
	form := url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {commtest.TwilioSID}, "From": {from},
		"To": {commtest.TwilioNumber}, "Body": {body}, "NumMedia": {"0"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"}}
	sig := twilio.Signature(token, testPublicURL+"/api/v1/twilio/sms", form)
	return f.do("POST", "/api/v1/twilio/sms", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "X-Twilio-Signature", sig)
}

// sent summarises the provider's sends since n as "channel:to" (the SMTP server's mails as "email:to").
func (f *commFixture) sends() []string {
	var out []string
	for _, s := range f.prov.Sent("") {
		out = append(out, s.Channel+":"+s.To)
	}
	for _, m := range f.smtp.Mails() {
		out = append(out, "email:"+m.To)
	}
	return out
}

func (f *commFixture) messages(t *testing.T, escalationID string) []map[string]any {
	t.Helper()
	r := f.do("GET", "/api/v1/comm/messages?limit=500&escalation_id="+escalationID, f.tok, nil)
	if r.status != 200 {
		t.Fatalf("messages: %d %s", r.status, r.raw)
	}
	var out []map[string]any
	for _, m := range r.body["items"].([]any) {
		out = append(out, m.(map[string]any))
	}
	return out
}

// TestEscalationChainAnswered: nobody answers the push, so the phone call comes at 2 minutes; IT0 restarts
// at minute 3 (the call is not repeated); the SMS and IM go out at 5 minutes; an SMS "Y" at minute 6 stops
// the chain and continues the run; no later step fires; forged, replayed, late and unknown answers are
// refused and recorded.
func TestEscalationChainAnswered(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		f := newCommFixture(t, open)
		ws := f.dialComm(t, f.tok)
		t0 := f.now.Now()
		sid, id := f.escalate(t, "critical: standing order SO-test")

		// Step 0 at once: the app push reaches the admin's open app; push (FCM) is not configured: skipped.
		f.due(t)
		ev := readApp(t, ws)
		if ev.Type != "escalation" || ev.Data["approval_id"] != id || len(ev.Actions) != 2 || !strings.HasPrefix(ev.Actions[0].URL, testPublicURL+"/api/v1/comm/answer/") {
			t.Errorf("app push: %+v", ev)
		}
		if got := f.sends(); len(got) != 0 {
			t.Errorf("sent before 2 minutes: %v", got)
		}
		// Step 1 at 2 minutes, not a second before: the phone call to the primary.
		f.now.Set(t0.Add(2*time.Minute - time.Second))
		f.due(t)
		if got := f.sends(); len(got) != 0 {
			t.Errorf("sent at 1:59: %v", got)
		}
		f.now.Set(t0.Add(2 * time.Minute))
		f.due(t)
		calls := f.prov.Sent(comm.ChannelPhone)
		if len(calls) != 1 || calls[0].To != primaryPhone || !calls[0].At.Equal(t0.Add(2*time.Minute)) ||
			!strings.Contains(calls[0].Body, `action="https://it0.example/api/v1/twilio/voice?escalation=`+id+`"`) {
			t.Fatalf("call at 2:00: %+v", calls)
		}

		// Restart at minute 3: IT0 starts again over the same database and job table.
		f.now.Set(t0.Add(3 * time.Minute))
		f.eng = &scriptEngine{name: agent.EngineClaudeAPI, byPrompt: commScript()}
		f.restart(f.eng)
		f.due(t)
		// Even a step that runs again (a retried job) sends nothing twice.
		if err := f.comm.cur.Load().RunStep(tenant.WithID(context.Background(), f.tid), id, 1); err != nil {
			t.Fatal(err)
		}
		if n := len(f.prov.Sent(comm.ChannelPhone)); n != 1 {
			t.Errorf("the call was repeated after the restart: %d calls", n)
		}
		f.now.Set(t0.Add(5*time.Minute - time.Second))
		f.due(t)
		if n := len(f.prov.Sent("")); n != 1 {
			t.Errorf("sent before 5:00: %v", f.sends())
		}
		// Step 2 at 5 minutes: SMS, Telegram and WeCom to the primary.
		f.now.Set(t0.Add(5 * time.Minute))
		f.due(t)
		want := "phone:+8613800001111 sms:+8613800001111 telegram:1001 wecom:"
		if got := strings.Join(sorted(f.sends()), " "); got != want {
			t.Errorf("after 5:00:\n got %s\nwant %s", got, want)
		}
		for _, s := range f.prov.Sent("") {
			if s.Channel != comm.ChannelPhone && !s.At.Equal(t0.Add(5*time.Minute)) {
				t.Errorf("%s sent at %v", s.Channel, s.At.Sub(t0))
			}
		}
		smsBody := f.prov.Sent(comm.ChannelSMS)[0].Body
		esc := f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil)
		ref := esc.body["ref"].(string)
		if !strings.Contains(smsBody, "Reply Y "+ref) || !strings.Contains(smsBody, "disk 97% on web-1") {
			t.Errorf("SMS body: %q", smsBody)
		}

		// A forged signature is refused and changes nothing.
		f.now.Set(t0.Add(6 * time.Minute))
		if r := f.sms(t, primaryPhone, "Y", "SM-forged", "not-the-token"); r.status != 403 {
			t.Errorf("forged signature: %d %s", r.status, r.raw)
		}
		r := f.do("POST", "/api/v1/twilio/sms", "", "From=%2B8613800001111&Body=Y", "Content-Type", "application/x-www-form-urlencoded")
		if r.status != 403 {
			t.Errorf("no signature: %d", r.status)
		}
		if a, _ := f.approvals.Get(f.ctx(), id); a.Status != approval.Pending {
			t.Fatalf("a forged answer decided: %s", a.Status)
		}
		// An SMS from a number that is no contact is refused (IT0 replies, Twilio does not retry).
		if r := f.sms(t, "+4915112345678", "Y", "SM-unknown", commtest.TwilioToken); r.status != 200 || !strings.Contains(r.raw, "not a contact") {
			t.Errorf("unknown number: %d %s", r.status, r.raw)
		}
		// Recorded in the platform's audit log (it belongs to no tenant).
		entries, _ := f.audit.List(tenant.WithID(context.Background(), tenant.Platform), auditFilterAll())
		if !slices.ContainsFunc(entries, func(e audit.Entry) bool {
			return e.ActionType == "escalation.answer_refused" && strings.Contains(string(e.Detail), "+4915112345678")
		}) {
			t.Errorf("unknown sender not recorded: %+v", entries)
		}
		// "Y" at minute 6 approves as the contact's user, continues the run and stops the chain.
		r = f.sms(t, primaryPhone, "Y", "SM-answer", commtest.TwilioToken)
		if r.status != 200 || r.header.Get("Content-Type") != "text/xml; charset=utf-8" || !strings.Contains(r.raw, "<Message>Thanks") {
			t.Fatalf("answer: %d %s", r.status, r.raw)
		}
		f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCompleted })
		evs, _ := f.agentSvc.Load().Events(f.ctx(), sid, 0, 100)
		if !containsEvent(evs, func(e agent.Event) bool {
			return e.Type == agent.EventToolResult && strings.Contains(e.Output, "A human approved your proposal")
		}) {
			t.Errorf("the run did not continue with the approval: %+v", evs)
		}
		a, _ := f.approvals.Get(f.ctx(), id)
		if a.Status != approval.Approved || a.DecidedBy != f.adminID {
			t.Errorf("approval: %s by %s", a.Status, a.DecidedBy)
		}
		esc = f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil)
		if esc.body["status"] != "answered" || esc.body["answered_channel"] != "sms" || esc.body["answered_by"] != f.adminID {
			t.Errorf("escalation: %s", esc.raw)
		}
		if au := f.do("GET", "/api/v1/audit/logs?action_type=escalation.answered", f.tok, nil); !strings.Contains(au.raw, "via sms") {
			t.Errorf("answer not audited: %s", au.raw)
		}

		// No later step fires: not the backup at 10 minutes, not the managers' email at 20.
		before := len(f.sends())
		for _, m := range []time.Duration{10, 20, 30} {
			f.now.Set(t0.Add(m * time.Minute))
			f.due(t)
		}
		if got := f.sends(); len(got) != before {
			t.Errorf("steps fired after the answer: %v", got[before:])
		}

		// Twilio retrying the same webhook is a replay; a button pressed after the answer is late.
		if r := f.sms(t, primaryPhone, "Y", "SM-answer", commtest.TwilioToken); r.status != 200 || !strings.Contains(r.raw, "Too late") {
			t.Errorf("replay: %d %s", r.status, r.raw)
		}
		if r := f.telegram(t, commtest.TelegramSecret, fmt.Sprintf(`{"update_id":5001,"callback_query":{"id":"cb-late","from":{"id":1002,"is_bot":false,"first_name":"Wang"},"data":"n:%s"}}`, id)); r.status != 200 {
			t.Errorf("late button: %d %s", r.status, r.raw)
		}
		var refused []string
		for _, m := range f.messages(t, id) {
			if m["direction"] == "inbound" {
				refused = append(refused, fmt.Sprint(m["channel"], ":", m["status"]))
			}
		}
		if got := strings.Join(sorted(refused), " "); got != "sms:received sms:refused telegram:refused" {
			t.Errorf("inbound record: %s", got)
		}
		if f.prov.Calls("answerCallbackQuery") != 1 {
			t.Errorf("answerCallbackQuery calls: %d", f.prov.Calls("answerCallbackQuery"))
		}
	})
}

// TestEscalationChainUnanswered: nobody answers, so every step fires at its delay on its channels, the
// managers get the full report by email at 20 minutes, and the run is rejected when the approval times out.
func TestEscalationChainUnanswered(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	t0 := f.now.Now()
	sid, id := f.escalate(t, "critical: standing order SO-test")
	type want struct {
		at    time.Duration
		sends string
	}
	for _, w := range []want{
		{0, ""},
		{2 * time.Minute, "phone:+8613800001111"},
		{5 * time.Minute, "sms:+8613800001111 telegram:1001 wecom:"},
		{10 * time.Minute, "phone:+8613800002222 sms:+8613800002222 telegram:1002"},
		{20 * time.Minute, "email:boss@example.com"},
	} {
		before := len(f.sends())
		f.now.Set(t0.Add(w.at - time.Second))
		f.due(t)
		if n := len(f.sends()); n != before {
			t.Errorf("a step fired before %v: %v", w.at, f.sends()[before:])
		}
		f.now.Set(t0.Add(w.at))
		f.due(t)
		if got := strings.Join(sorted(f.sends()[before:]), " "); got != w.sends {
			t.Errorf("at %v:\n got %s\nwant %s", w.at, got, w.sends)
		}
	}
	// The managers' locale is the tenant's (zh-CN).
	if text := mailText(t, f.smtp.Mails()[0].Data); !strings.Contains(text, "完整报告") || !strings.Contains(text, "Standing order run: SO-test") ||
		!strings.Contains(text, "proposal: restart nginx") {
		t.Errorf("managers' email lacks the report:\n%s", text)
	}
	// Every message is recorded with its status: channels not configured (push) and contacts without an
	// address are skipped, never failing the chain.
	status := map[string]int{}
	for _, m := range f.messages(t, id) {
		status[fmt.Sprint(m["channel"], ":", m["status"])]++
	}
	if status["phone:sent"] != 2 || status["email:sent"] != 1 || status["push:skipped"] != 2 || status["sms:sent"] != 2 {
		t.Errorf("message log: %v", status)
	}
	// The approval times out at one hour: the run is rejected and stopped; the chain is closed.
	f.now.Set(t0.Add(time.Hour))
	f.due(t)
	f.tok = f.login("admin@comm.example", "password-comm") // the clock moved past the token's lifetime
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCancelled })
	// comm closes the chain when it takes the approval.decided event, which may come after the session's
	// own consumer cancelled the run.
	var e response
	deadline := time.Now().Add(30 * time.Second)
	for e = f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil); e.body["status"] == "active" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		e = f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil)
	}
	if e.body["status"] != "closed" || e.body["decision"] != "expired" {
		t.Errorf("escalation after the timeout: %s", e.raw)
	}
}

// TestEscalationAnswers covers the other answer channels: Telegram buttons (secret checked), signed links
// (a GET only shows the page; single use; a forged link is refused), the app, and permissions (an
// operator cannot approve an L2 escalation).
func TestEscalationAnswers(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	cs := f.comm.cur.Load()

	// Telegram: a wrong secret is refused; the primary's Reject button rejects and stops the run.
	sid, id := f.escalate(t, "warning: standing order SO-test")
	if r := f.telegram(t, "wrong", `{"update_id":1}`); r.status != 403 {
		t.Errorf("wrong secret: %d", r.status)
	}
	r := f.telegram(t, commtest.TelegramSecret, fmt.Sprintf(`{"update_id":7001,"callback_query":{"id":"cb-1","from":{"id":1001,"is_bot":false,"first_name":"Li"},"data":"n:%s"}}`, id))
	if r.status != 200 || !strings.Contains(r.raw, "rejected") {
		t.Fatalf("button: %d %s", r.status, r.raw)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCancelled })
	if e := f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil); e.body["answered_channel"] != "telegram" || e.body["decision"] != "reject" {
		t.Errorf("escalation: %s", e.raw)
	}

	// A Telegram reply means the newest open escalation that reached the sender: the backup was not
	// reached by this warning (nothing to answer); the primary, reached on Telegram, approves it.
	sid, id = f.escalate(t, "warning: standing order SO-test")
	f.due(t)
	r = f.telegram(t, commtest.TelegramSecret, `{"update_id":7002,"message":{"message_id":9,"from":{"id":1002,"is_bot":false,"first_name":"Wang"},"chat":{"id":1002,"type":"private"},"date":1767225600,"text":"y"}}`)
	if r.status != 200 || !strings.Contains(r.raw, "没有需要您处理的升级") {
		t.Errorf("backup's reply: %d %s", r.status, r.raw)
	}
	r = f.telegram(t, commtest.TelegramSecret, `{"update_id":7003,"message":{"message_id":10,"from":{"id":1001,"is_bot":false,"first_name":"Li"},"chat":{"id":1001,"type":"private"},"date":1767225600,"text":"y"}}`)
	if r.status != 200 || !strings.Contains(r.raw, "approved") {
		t.Fatalf("telegram reply: %d %s", r.status, r.raw)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCompleted })
	if e := f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil); e.body["answered_channel"] != "telegram" || e.body["decision"] != "approve" {
		t.Errorf("escalation: %s", e.raw)
	}

	// Links: the GET page changes nothing; the POST instructs; the same link again is a replay.
	sid, id = f.escalate(t, "warning: standing order SO-test")
	exp := f.now.Now().Add(time.Hour).Unix()
	tok := cs.LinkToken(f.tid, id, f.contacts["primary"], "", "y", exp)
	page := f.do("GET", "/api/v1/comm/answer/"+tok, "", nil)
	if page.status != 200 || !strings.Contains(page.raw, "<form method=\"post\">") || !strings.Contains(page.raw, "disk 80%") {
		t.Errorf("page: %d %s", page.status, page.raw)
	}
	if a, _ := f.approvals.Get(f.ctx(), id); a.Status != approval.Pending {
		t.Fatal("a GET decided")
	}
	forged := tok[:len(tok)-2] + "xx"
	if r := f.do("POST", "/api/v1/comm/answer/"+forged, "", "text=go", "Content-Type", "application/x-www-form-urlencoded"); r.status != 403 {
		t.Errorf("forged link: %d", r.status)
	}
	r = f.do("POST", "/api/v1/comm/answer/"+tok, "", "text=only+restart+nginx", "Content-Type", "application/x-www-form-urlencoded")
	if r.status != 200 || !strings.Contains(r.raw, "instruct") {
		t.Fatalf("link: %d %s", r.status, r.raw)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCompleted })
	evs, _ := f.agentSvc.Load().Events(f.ctx(), sid, 0, 100)
	if !containsEvent(evs, func(e agent.Event) bool { return strings.Contains(e.Output, "Their instruction: only restart nginx") }) {
		t.Errorf("the instruction did not reach the agent: %+v", evs)
	}
	if r := f.do("POST", "/api/v1/comm/answer/"+tok, "", "", "Content-Type", "application/x-www-form-urlencoded"); r.status != 409 {
		t.Errorf("replayed link: %d %s", r.status, r.raw)
	}
	if r := f.do("GET", "/api/v1/comm/answer/"+tok, "", nil); r.status != 409 || !strings.Contains(r.raw, "already used") {
		t.Errorf("used link's page: %d %s", r.status, r.raw)
	}
	expired := cs.LinkToken(f.tid, id, f.contacts["primary"], "", "y", f.now.Now().Unix())
	if r := f.do("GET", "/api/v1/comm/answer/"+expired, "", nil); r.status != 403 {
		t.Errorf("expired link: %d", r.status)
	}

	// The app: an operator cannot approve an L2 command beyond the boundary; the admin can.
	cred := f.do("POST", "/api/v1/inventory/credentials", f.tok, map[string]string{"name": "k", "type": "ssh_key", "secret": newKeyPEM(t)})
	if r := f.do("POST", "/api/v1/inventory/servers", f.tok, map[string]any{"name": "web-1", "host": "127.0.0.1", "port": 1,
		"credential_id": cred.body["id"], "host_key_policy": "tofu"}); r.status != 201 {
		t.Fatalf("server: %d %s", r.status, r.raw)
	}
	// An interactive approval is pushed to the session's user in the app, with signed links.
	ws := f.dialComm(t, f.tok)
	if _, _, err := f.agentSvc.Load().StartTask(f.ctx(), agent.StartParams{Prompt: "boundary: by hand"}); err != nil {
		t.Fatal(err)
	}
	if ev := readApp(t, ws); ev.Data["kind"] != "approval" || len(ev.Actions) != 2 || ev.Actions[1].URL == "" {
		t.Errorf("interactive approval push: %+v", ev)
	}
	sid, id = f.escalate(t, "boundary: standing order SO-test")
	if r := f.do("POST", "/api/v1/comm/escalations/"+id+"/answer", f.opTok, map[string]string{"decision": "approve"}); r.status != 403 {
		t.Errorf("operator on L2: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/api/v1/comm/escalations/"+id+"/answer", f.tok, map[string]string{"decision": "instruct"}); r.status != 400 {
		t.Errorf("instruct without text: %d", r.status)
	}
	if r := f.do("POST", "/api/v1/comm/escalations/"+id+"/answer", f.tok, map[string]string{"decision": "approve"}); r.status != 200 || r.body["channel"] != "app" {
		t.Errorf("admin: %d %s", r.status, r.raw)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool {
		return s.Status == agent.StatusCompleted || s.Status == agent.StatusFailed
	})
}

// TestEscalationWithoutContacts: a tenant with no primary contact still reaches its admins, in the app and
// by email, and the link in the push answers as the admin.
func TestEscalationWithoutContacts(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	if r := f.do("DELETE", "/api/v1/comm/contacts/"+f.contacts["primary"], f.tok, nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if r := f.do("PUT", "/api/v1/comm/escalation-policies/warning", f.tok, map[string]any{"steps": []map[string]any{
		{"delay_seconds": 0, "channels": []string{"app", "email", "sms"}, "audience": "primary"}}}); r.status != 200 {
		t.Fatalf("policy: %d %s", r.status, r.raw)
	}
	ws := f.dialComm(t, f.tok)
	sid, _ := f.escalate(t, "warning: standing order SO-test")
	f.due(t)
	ev := readApp(t, ws)
	if ev.Type != "escalation" || len(ev.Actions) != 2 {
		t.Fatalf("app push: %+v", ev)
	}
	if got := f.sends(); strings.Join(got, " ") != "email:admin@comm.example" {
		t.Errorf("sends: %v", got)
	}
	link := strings.TrimPrefix(ev.Actions[0].URL, testPublicURL)
	if r := f.do("POST", link, "", "", "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
		t.Fatalf("link: %d %s", r.status, r.raw)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCompleted })
}

// TestCommAPI covers contacts (E.164), policies (defaults, validation), channels and notices.
func TestCommAPI(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	r := f.do("POST", "/api/v1/comm/contacts", f.tok, map[string]any{"name": "X", "audience": "primary", "phone": "13800001111"})
	if r.status != 400 || !strings.Contains(r.raw, "E.164") {
		t.Errorf("bad phone: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/api/v1/comm/contacts", f.opTok, map[string]any{"name": "X", "audience": "primary", "phone": "+8613800003333"}); r.status != 403 {
		t.Errorf("operator adds a contact: %d", r.status)
	}
	id := f.contacts["managers"]
	if r := f.do("PUT", "/api/v1/comm/contacts/"+id, f.tok, map[string]any{"name": "Boss", "audience": "managers", "email": "boss2@example.com"}); r.status != 200 || r.body["email"] != "boss2@example.com" {
		t.Errorf("update: %d %s", r.status, r.raw)
	}
	if r := f.do("GET", "/api/v1/comm/contacts?audience=backup", f.tok, nil); len(r.body["items"].([]any)) != 1 {
		t.Errorf("filter: %s", r.raw)
	}
	pol := f.do("GET", "/api/v1/comm/escalation-policies", f.tok, nil)
	var sevs []string
	for _, p := range pol.body["items"].([]any) {
		sevs = append(sevs, p.(map[string]any)["severity"].(string))
	}
	if strings.Join(sevs, ",") != "info,warning,critical,fatal" {
		t.Errorf("policies: %s", pol.raw)
	}
	if r := f.do("PUT", "/api/v1/comm/escalation-policies/critical", f.tok, map[string]any{"steps": []map[string]any{{"delay_seconds": 60, "channels": []string{"fax"}, "audience": "primary"}}}); r.status != 400 || !strings.Contains(r.raw, "steps[0].channels") {
		t.Errorf("bad policy: %d %s", r.status, r.raw)
	}
	if r := f.do("PUT", "/api/v1/comm/escalation-policies/critical", f.tok, map[string]any{"steps": []map[string]any{{"delay_seconds": 0, "channels": []string{"sms"}, "audience": "primary"}}}); r.status != 200 {
		t.Errorf("policy: %d %s", r.status, r.raw)
	}
	ch := f.do("GET", "/api/v1/comm/channels", f.tok, nil)
	if !strings.Contains(ch.raw, `{"channel":"push","available":false,"reason":"channel not configured: push needs IT0_FCM_CREDENTIALS_FILE"}`) || !strings.Contains(ch.raw, `{"channel":"sms","available":true}`) {
		t.Errorf("channels: %s", ch.raw)
	}
	// A notice goes out once per key.
	for i := 0; i < 2; i++ {
		if r := f.do("POST", "/api/v1/comm/notices", f.tok, map[string]any{"audience": "backup", "channels": []string{"sms", "telegram"}, "subject": "daily", "body": "all green", "key": "daily-1"}); r.status != 202 {
			t.Fatalf("notice: %d %s", r.status, r.raw)
		}
	}
	if got := strings.Join(sorted(f.sends()), " "); got != "sms:+8613800002222 telegram:1002" {
		t.Errorf("notice sends: %s", got)
	}
	if r := f.do("DELETE", "/api/v1/comm/contacts/"+id, f.tok, nil); r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
}

// TestCommRetry: a send refused with 429 is retried after the provider's Retry-After, a 5xx after the
// backoff, and a retried message reaches the provider once.
func TestCommRetry(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	t0 := f.now.Now()
	f.prov.FailTwilio(1, 429, "30")
	f.prov.FailTwilio(1, 503, "")
	notice := map[string]any{"audience": "primary", "channels": []string{"sms"}, "body": "nightly backup failed", "key": "backup-1"}
	if r := f.do("POST", "/api/v1/comm/notices", f.tok, notice); r.status != 202 {
		t.Fatalf("notice: %d %s", r.status, r.raw)
	}
	msg := func() map[string]any {
		r := f.do("GET", "/api/v1/comm/messages?channel=sms", f.tok, nil)
		items := r.body["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("messages: %s", r.raw)
		}
		return items[0].(map[string]any)
	}
	if m := msg(); m["status"] != "pending" || m["attempts"] != float64(1) || !strings.Contains(m["error"].(string), "429") {
		t.Errorf("after the 429: %v", m)
	}
	f.now.Set(t0.Add(29 * time.Second))
	f.due(t)
	if m := msg(); m["attempts"] != float64(1) {
		t.Errorf("retried before Retry-After: %v", m)
	}
	f.now.Set(t0.Add(30 * time.Second))
	f.due(t) // the 503: retried after the backoff (comm's default 5 s, doubled: 10 s)
	if m := msg(); m["status"] != "pending" || m["attempts"] != float64(2) {
		t.Errorf("after the 503: %v", m)
	}
	f.now.Set(t0.Add(40*time.Second - time.Millisecond))
	f.due(t)
	if m := msg(); m["attempts"] != float64(2) {
		t.Errorf("retried before the backoff: %v", m)
	}
	f.now.Set(t0.Add(40 * time.Second))
	f.due(t)
	if m := msg(); m["status"] != "sent" || m["attempts"] != float64(3) || m["provider_id"] == "" {
		t.Errorf("after the retries: %v", m)
	}
	// The same notice again (a retried report) sends nothing.
	f.do("POST", "/api/v1/comm/notices", f.tok, notice)
	if n := len(f.prov.Sent(comm.ChannelSMS)); n != 1 {
		t.Errorf("%d SMS delivered, want 1", n)
	}
}

func (f *commFixture) telegram(t *testing.T, secret, body string) response {
	t.Helper()
	return f.do("POST", "/api/v1/comm/telegram/webhook", "", body, "Content-Type", "application/json", "X-Telegram-Bot-Api-Secret-Token", secret)
}

func (f *commFixture) dialComm(t *testing.T, tok string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(f.http.URL, "http", "ws", 1)+"/ws/comm?token="+tok, nil)
	if err != nil {
		t.Fatalf("dial /ws/comm: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if ev := readApp(t, c); ev.Type != "hello" {
		t.Fatalf("first frame: %+v", ev)
	}
	return c
}

func readApp(t *testing.T, c *websocket.Conn) comm.AppEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read app push: %v", err)
	}
	var ev comm.AppEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("app push %s: %v", b, err)
	}
	return ev
}

// mailText is the decoded text/plain part of a multipart/alternative message.
func mailText(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if mt != "multipart/alternative" {
		t.Fatalf("content type %s", mt)
	}
	p, err := multipart.NewReader(m.Body, params["boundary"]).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(quotedprintable.NewReader(p))
	return string(b)
}

func containsEvent(evs []agent.Event, ok func(agent.Event) bool) bool {
	for _, e := range evs {
		if ok(e) {
			return true
		}
	}
	return false
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }
