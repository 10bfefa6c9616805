package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/comm/wecom"
	"github.com/it0/it0/internal/comm/wecom/wecomtest"
	"github.com/it0/it0/internal/store/storetest"
)

// wecomServer serves the fixture's comm service with a WeCom callback, built by the production
// constructor, and returns WeCom's side of it.
func (f *commFixture) wecomServer(t *testing.T) *wecomtest.Client {
	t.Helper()
	c := wecomtest.New(t, "", f.now.Now)
	cb, err := wecom.NewCallback(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(New(Deps{Comm: f.comm.cur.Load(), WeCom: cb, Logger: f.logger}).Handler())
	t.Cleanup(hs.Close)
	c.URL = hs.URL + "/api/v1/wecom/callback"
	return c
}

// wecomDo sends r and opens the passive reply ("" for an empty body); it fails the test on a non-200.
func wecomDo(t *testing.T, c *wecomtest.Client, r *wecomtest.Request) string {
	t.Helper()
	status, body, err := c.Do(r)
	if err != nil || status != http.StatusOK {
		t.Fatalf("callback: %d %s %v", status, body, err)
	}
	if len(body) == 0 {
		return ""
	}
	rep, err := c.OpenReply(body)
	if err != nil {
		t.Fatalf("reply %s: %v", body, err)
	}
	if rep.FromUserName != wecomtest.CorpID {
		t.Errorf("reply %+v", rep)
	}
	switch rep.MsgType {
	case "text":
		return rep.ToUserName + ": " + rep.Content
	case "update_button": // a card's pressed button shows the outcome in place of the buttons
		return rep.ToUserName + ": [" + rep.ReplaceName + "]"
	}
	t.Errorf("reply type %q", rep.MsgType)
	return ""
}

// wecomStatus sends r and returns the status and the error code of the envelope.
func wecomStatus(t *testing.T, c *wecomtest.Client, r *wecomtest.Request) (int, string) {
	t.Helper()
	status, body, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(body, &env)
	return status, env.Error.Code
}

// TestWeComAnswers: WeCom users answer escalations through the encrypted callback as Telegram users do:
// a reply approves, instructs or rejects, a card button decides, and forged, replayed, stale or
// undecryptable requests are refused.
func TestWeComAnswers(t *testing.T) {
	t.Parallel()
	f := newCommFixture(t, storetest.OpenSQLite)
	c := f.wecomServer(t)

	// The URL check answers the decrypted echo as plain text.
	v := c.VerifyURL("2817461930551")
	if status, body, err := c.Do(v); err != nil || status != 200 || string(body) != "2817461930551" {
		t.Fatalf("URL check: %d %q %v", status, body, err)
	}

	// The primary (WeCom user "li"), reached on WeCom at step 2, approves with "y": the run goes on.
	sid, id := f.escalate(t, "warning: standing order SO-test")
	f.due(t)
	if got := wecomDo(t, c, c.Text("li", "y", 8001)); got != "li: Thanks: your answer (approved) was recorded." {
		t.Errorf("reply: %q", got)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCompleted })
	if e := f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil); e.body["answered_channel"] != "wecom" || e.body["decision"] != "approve" {
		t.Errorf("escalation: %s", e.raw)
	}
	// WeCom retrying the same message (same MsgId, a new nonce) is too late, not a second answer.
	if got := wecomDo(t, c, c.Text("li", "y", 8001)); !strings.Contains(got, "Too late") {
		t.Errorf("retried message: %q", got)
	}

	// Free text is an instruction.
	sid, id = f.escalate(t, "warning: standing order SO-test")
	f.due(t)
	if got := wecomDo(t, c, c.Text("li", "只重启 nginx, 不要动数据库", 8002)); !strings.Contains(got, "instructed") {
		t.Errorf("instruction: %q", got)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCompleted })
	if e := f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil); e.body["decision"] != "instruct" {
		t.Errorf("escalation: %s", e.raw)
	}

	// A card's reject button rejects and stops the run; the same card again is a replay.
	sid, id = f.escalate(t, "warning: standing order SO-test")
	if got := wecomDo(t, c, c.CardEvent("li", "n:"+id, "task-"+id)); !strings.HasPrefix(got, "li: [") || !strings.Contains(got, "rejected") {
		t.Errorf("card: %q", got)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCancelled })
	if e := f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil); e.body["answered_channel"] != "wecom" || e.body["decision"] != "reject" {
		t.Errorf("escalation: %s", e.raw)
	}
	if got := wecomDo(t, c, c.CardEvent("li", "y:"+id, "task-"+id)); !strings.Contains(got, "Too late") {
		t.Errorf("card again: %q", got)
	}

	// Refusals, each leaving the pending approval alone.
	sid, id = f.escalate(t, "warning: standing order SO-test")
	f.due(t)
	ok := c.Text("li", "y", 8003)
	forged := *ok
	forged.Signature = strings.Repeat("a", 40)
	other := wecomtest.New(t, c.URL, f.now.Now)
	other.Token = c.Token // signed right, encrypted under another key
	for _, tc := range []struct {
		name   string
		req    *wecomtest.Request
		via    *wecomtest.Client
		status int
		code   string
	}{
		{"BadSignature", &forged, c, 403, "forbidden"},
		{"BadAES", other.Text("li", "y", 8004), other, 403, "forbidden"},
		{"Malformed", &wecomtest.Request{Method: "POST", Signature: ok.Signature, Timestamp: ok.Timestamp, Nonce: ok.Nonce, Body: []byte("not xml")}, c, 400, "invalid"},
	} {
		if status, code := wecomStatus(t, tc.via, tc.req); status != tc.status || code != tc.code {
			t.Errorf("%s: %d %s", tc.name, status, code)
		}
	}
	// A stale timestamp: the message is sealed and signed right, but its timestamp is decades old.
	staleReq := c.Text("li", "y", 8005)
	staleReq.Timestamp = "1"
	staleReq.Signature = wecomtest.Sign(c.Token, "1", staleReq.Nonce, encryptOf(t, staleReq.Body))
	if status, code := wecomStatus(t, c, staleReq); status != 403 || code != "forbidden" {
		t.Errorf("stale: %d %s", status, code)
	}
	if a, _ := f.agentSvc.Load().Approval(f.ctx(), id); a.Status != agent.ApprovalPending {
		t.Fatalf("a refused request decided: %s", a.Status)
	}
	// The genuine request is taken once; the same request again is a replay.
	if got := wecomDo(t, c, ok); !strings.Contains(got, "approved") {
		t.Errorf("genuine: %q", got)
	}
	f.waitSession(t, sid, func(s *agent.Session) bool { return s.Status == agent.StatusCompleted })
	if status, code := wecomStatus(t, c, ok); status != 409 || code != "conflict" {
		t.Errorf("replay: %d %s", status, code)
	}

	// A WeCom user who is no tenant's contact is told so, and nothing is decided.
	_, id = f.escalate(t, "warning: standing order SO-test")
	if got := wecomDo(t, c, c.Text("stranger", "y", 8006)); !strings.Contains(got, "not a contact") {
		t.Errorf("unknown user: %q", got)
	}
	if got := wecomDo(t, c, c.CardEvent("stranger", "y:"+id, "task-x")); !strings.Contains(got, "not a contact") {
		t.Errorf("unknown user's card: %q", got)
	}
	if a, _ := f.agentSvc.Load().Approval(f.ctx(), id); a.Status != agent.ApprovalPending {
		t.Fatalf("a stranger decided: %s", a.Status)
	}
	// Other messages (a user entering the app) are acknowledged with an empty body.
	if got := wecomDo(t, c, c.Seal("<xml><FromUserName>li</FromUserName><MsgType>event</MsgType><Event>enter_agent</Event></xml>")); got != "" {
		t.Errorf("enter_agent: %q", got)
	}

	// The main server has no WeCom callback configured: it refuses, saying which settings are missing.
	r := f.do("POST", "/api/v1/wecom/callback?msg_signature=a&timestamp=1&nonce=1", "", "<xml/>", "Content-Type", "text/xml")
	if r.status != 403 || !strings.Contains(r.raw, "IT0_WECOM_ENCODING_AES_KEY") {
		t.Errorf("unconfigured: %d %s", r.status, r.raw)
	}
}

// encryptOf pulls the Encrypt element out of an envelope.
func encryptOf(t *testing.T, body []byte) string {
	t.Helper()
	s := string(body)
	i, j := strings.Index(s, "<Encrypt><![CDATA["), strings.Index(s, "]]></Encrypt>")
	if i < 0 || j < i {
		t.Fatalf("no Encrypt in %s", s)
	}
	return s[i+len("<Encrypt><![CDATA[") : j]
}
