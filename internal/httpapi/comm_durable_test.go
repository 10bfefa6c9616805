package httpapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/comm/commtest"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/store/storetest"
)

// TestSMSAnswerReturnsAtOnce: an SMS "Y" to an escalation is answered by the webhook in well under a
// second — the escalation is already marked answered then — while the approved command, which takes
// seconds, is still running; it then completes on the server and the run ends.
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
	done := filepath.Join(dir, "done")
	command := "sleep 3 && touch " + done
	f.eng.byPrompt["slow"] = []scriptStep{{agent.ToolRunCommand, `{"server":"web-1","command":` + jsonString(command) + `}`}}

	sid, id := f.escalate(t, "slow: standing order SO-test")
	f.due(t) // the first step reaches the primary in the app
	start := time.Now()
	r := f.sms(t, primaryPhone, "Y", "SM-durable", commtest.TwilioToken)
	took := time.Since(start)
	_, statErr := os.Stat(done)
	if r.status != 200 || !strings.Contains(r.raw, "<Message>Thanks") {
		t.Fatalf("answer: %d %s", r.status, r.raw)
	}
	if took > time.Second || statErr == nil {
		t.Fatalf("the webhook took %s (command finished before it returned: %v)", took, statErr == nil)
	}
	if esc := f.do("GET", "/api/v1/comm/escalations/"+id, f.tok, nil); esc.body["status"] != "answered" || esc.body["answered_channel"] != "sms" {
		t.Errorf("escalation when the answer returned: %s", esc.raw)
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
