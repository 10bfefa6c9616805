package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// scriptEngine is a test engine: it calls the tools of a fixed script in order, pausing on approvals
// exactly as the real API engines do (state = the next step).
type scriptEngine struct {
	name  string
	steps []scriptStep
	seen  func(agent.Task) // called with each task, when set
	// byPrompt picks the script by a substring of the session's first prompt (steps otherwise).
	byPrompt map[string][]scriptStep
}

type scriptStep struct {
	tool  string
	input string
}

var _ agent.Engine = (*scriptEngine)(nil)

func (e *scriptEngine) Name() string                 { return e.name }
func (e *scriptEngine) Health(context.Context) error { return nil }

func (e *scriptEngine) Run(ctx context.Context, t agent.Task, emit func(agent.Event)) (agent.Outcome, error) {
	if e.seen != nil {
		e.seen(t)
	}
	var st struct {
		Step   int
		Script string
	}
	if t.State != nil {
		json.Unmarshal(t.State, &st)
	} else {
		for k := range e.byPrompt {
			if strings.Contains(t.Prompt, k) {
				st.Script = k
			}
		}
	}
	steps := e.steps
	if st.Script != "" {
		steps = e.byPrompt[st.Script]
	}
	for _, p := range t.PendingResults {
		emit(agent.Event{Type: agent.EventToolResult, Tool: p.Tool, ToolUseID: p.ToolUseID, Output: p.Result.Output, IsError: p.Result.IsError})
	}
	for ; st.Step < len(steps); st.Step++ {
		if ctx.Err() != nil {
			emit(agent.Event{Type: agent.EventError, Code: agent.CodeCancelled, Message: "cancelled"})
			return agent.Outcome{}, nil
		}
		s := steps[st.Step]
		id := fmt.Sprintf("tool-%d", st.Step)
		emit(agent.Event{Type: agent.EventToolUse, Tool: s.tool, ToolUseID: id, Input: json.RawMessage(s.input)})
		res, err := t.Tools.Call(ctx, s.tool, json.RawMessage(s.input))
		var ar *agent.ApprovalRequired
		if errors.As(err, &ar) {
			lvl := ar.RiskLevel
			emit(agent.Event{Type: agent.EventApprovalRequired, ApprovalID: ar.ApprovalID, ToolUseID: id, Tool: s.tool, Command: ar.Command, RiskLevel: &lvl})
			st.Step++
			state, _ := json.Marshal(st)
			return agent.Outcome{Paused: true, State: state}, nil
		}
		if err != nil {
			return agent.Outcome{}, err
		}
		emit(agent.Event{Type: agent.EventToolResult, Tool: s.tool, ToolUseID: id, Output: res.Output, IsError: res.IsError})
	}
	emit(agent.Event{Type: agent.EventText, Text: "All done."})
	emit(agent.Event{Type: agent.EventCompleted, Summary: "checked disk, restarted nginx, refused rm -rf /", TokensUsed: 42})
	state, _ := json.Marshal(st)
	return agent.Outcome{State: state, Summary: "checked disk, restarted nginx, refused rm -rf /", TokensUsed: 42}, nil
}

// agentFixture is a tenant with one non-root server and the scripted engine.
type agentFixture struct {
	*invFixture
	target *sshtest.Server
}

func newAgentFixture(t *testing.T, steps []scriptStep) *agentFixture {
	return newAgentFixtureWith(t, appKnobs{engines: []agent.Engine{&scriptEngine{name: agent.EngineClaudeAPI, steps: steps}}})
}

// newAgentFixtureWith is newAgentFixture on an app built with the knobs k (its engines, its loops).
func newAgentFixtureWith(t *testing.T, k appKnobs) *agentFixture {
	target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.11", Password: true})
	b := setupAppWith(t, storetest.OpenSQLite, k)
	_, tok := b.newTenant("agent")
	f := &invFixture{testBundle: b, tok: tok}
	r := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "pw", "type": "ssh_password", "secret": target.Password.Reveal()})
	f.credID = r.body["id"].(string)
	f.server("web-1", target, map[string]any{"ssh_user": target.PasswordUser})
	return &agentFixture{invFixture: f, target: target}
}

// watch collects a session's events from the WebSocket until stop returns true for one of them.
func (f *agentFixture) watch(t *testing.T, sessionID string, after int64, stop func(agent.Event) bool) []agent.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := strings.Replace(f.http.URL, "http", "ws", 1) + fmt.Sprintf("/ws/agent?session=%s&after=%d&token=%s", sessionID, after, f.tok)
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	var out []agent.Event
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d events: %v", len(out), err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			var e agent.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("bad event line %q: %v", line, err)
			}
			out = append(out, e)
			if stop(e) {
				return out
			}
		}
	}
}

func types(evs []agent.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, string(e.Type))
	}
	return strings.Join(s, ",")
}

var opsScript = []scriptStep{
	{agent.ToolRunCommand, `{"server":"web-1","command":"df -h"}`},
	{agent.ToolRunCommand, `{"server":"web-1","command":"systemctl restart nginx"}`},
	{agent.ToolRunCommand, `{"server":"web-1","command":"rm -rf /"}`},
}

func TestAgentSessionWithApproval(t *testing.T) {
	t.Parallel()
	f := newAgentFixture(t, opsScript)
	r := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "检查磁盘，必要时重启 nginx"})
	if r.status != 201 || r.body["session_id"] == nil || r.body["task_id"] == nil {
		t.Fatalf("start: %d %s", r.status, r.raw)
	}
	sid := r.body["session_id"].(string)
	evs := f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired })
	if got := types(evs); got != "tool_use,tool_result,tool_use,approval_required" {
		t.Fatalf("events before approval: %s", got)
	}
	if !strings.Contains(evs[1].Output, "Filesystem") || evs[1].IsError {
		t.Errorf("df -h result: %+v", evs[1])
	}
	ap := evs[3]
	if ap.Command != "systemctl restart nginx" || ap.RiskLevel == nil || *ap.RiskLevel != 1 || ap.ApprovalID == "" {
		t.Fatalf("approval event: %+v", ap)
	}
	if s := f.do("GET", "/api/v1/agent/sessions/"+sid, f.tok, nil); s.body["status"] != "awaiting_approval" {
		t.Fatalf("session while paused: %s", s.raw)
	}
	// Ensure a viewer cannot decide, and an unknown approval is 404.
	_, vtok := f.newUser(f.tok, "viewer@agent.example", auth.RoleViewer)
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", vtok, nil); r.status != 403 {
		t.Errorf("viewer approve: %d", r.status)
	}
	if r := f.do("POST", "/api/v1/agent/approvals/nope/approve", f.tok, nil); r.status != 404 {
		t.Errorf("unknown approval: %d", r.status)
	}
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", f.tok, map[string]string{"reason": "ok, go"}); r.status != 200 || r.body["status"] != "approved" {
		t.Fatalf("approve: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/reject", f.tok, nil); r.status != 409 {
		t.Errorf("second decision: %d %s", r.status, r.raw)
	}
	evs = f.watch(t, sid, ap.Seq, func(e agent.Event) bool { return e.Type == agent.EventCompleted || e.Type == agent.EventError })
	if got := types(evs); got != "tool_result,tool_use,tool_result,text,completed" {
		t.Fatalf("events after approval: %s", got)
	}
	if evs[0].ToolUseID != "tool-1" || !strings.Contains(evs[0].Output, "web-1") {
		t.Errorf("approved command's result: %+v", evs[0])
	}
	if !evs[2].IsError || !strings.Contains(evs[2].Output, "BLOCKED") {
		t.Errorf("rm -rf / result: %+v", evs[2])
	}
	s := f.do("GET", "/api/v1/agent/sessions/"+sid, f.tok, nil)
	if s.body["status"] != "completed" || s.body["tokens_used"] != float64(42) {
		t.Errorf("session: %s", s.raw)
	}
	// The approved command ran exactly once; the L3 one ran nowhere.
	recs := f.do("GET", "/api/v1/inventory/command-records?limit=100", f.tok, nil)
	var restarts, removes int
	for _, x := range recs.body["items"].([]any) {
		m := x.(map[string]any)
		switch {
		case m["command"] == "systemctl restart nginx":
			restarts++
			if m["session_id"] != sid || m["status"] == "approval_required" {
				t.Errorf("restart record: %v", m)
			}
		case m["command"] == "rm -rf /":
			removes++
			if m["status"] != "blocked" {
				t.Errorf("rm record: %v", m)
			}
		}
	}
	if restarts != 1 || removes != 1 {
		t.Errorf("records: restart %d (want 1 run), rm %d (want 1 refusal)", restarts, removes)
	}
	// The whole history replays over HTTP too.
	all := f.do("GET", "/api/v1/agent/sessions/"+sid+"/events?after=0", f.tok, nil)
	if n := len(all.body["events"].([]any)); n != 9 {
		t.Errorf("replay has %d events, want 9", n)
	}
	a := f.do("GET", "/api/v1/audit/logs?action_type=approval.approved", f.tok, nil)
	if !strings.Contains(a.raw, ap.ApprovalID) {
		t.Errorf("approval not audited: %s", a.raw)
	}
}

func TestAgentRejectAndCancel(t *testing.T) {
	t.Parallel()
	f := newAgentFixture(t, opsScript[1:2])
	sid := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "restart nginx"}).body["session_id"].(string)
	evs := f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired })
	ap := evs[len(evs)-1]
	f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/reject", f.tok, map[string]string{"reason": "not now"})
	evs = f.watch(t, sid, ap.Seq, func(e agent.Event) bool { return e.Type == agent.EventCompleted })
	if !evs[0].IsError || !strings.Contains(evs[0].Output, "not approved") || !strings.Contains(evs[0].Output, "not now") {
		t.Errorf("rejection result: %+v", evs[0])
	}
	recs := f.do("GET", "/api/v1/inventory/command-records", f.tok, nil)
	if strings.Contains(recs.raw, `"status":"failed"`) || strings.Contains(recs.raw, `"status":"ok"`) {
		t.Errorf("a rejected command ran: %s", recs.raw)
	}
	// Ensure messages continue a finished session and cancel ends it.
	if r := f.do("POST", "/api/v1/agent/sessions/"+sid+"/messages", f.tok, map[string]string{"message": ""}); r.status != 400 {
		t.Errorf("empty message: %d", r.status)
	}
	if r := f.do("POST", "/api/v1/agent/sessions/"+sid+"/cancel", f.tok, nil); r.status != 200 || r.body["status"] != "cancelled" {
		t.Errorf("cancel: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/api/v1/agent/sessions/"+sid+"/messages", f.tok, map[string]string{"message": "again"}); r.status != 409 {
		t.Errorf("message to a cancelled session: %d", r.status)
	}
}

// TestAgentApprovalSurvivesRestart pauses a session, stops the agent service, starts a new one on the
// same database, approves, and checks the command runs once and the session completes.
func TestAgentApprovalSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := newAgentFixture(t, opsScript[1:2])
	sid := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "restart nginx"}).body["session_id"].(string)
	evs := f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired })
	ap := evs[len(evs)-1]
	tid := f.tenantOf(f.tok)
	// The process goes away while the approval is pending; IT0 starts again on the same data.
	f.restart(&scriptEngine{name: agent.EngineClaudeAPI, steps: opsScript[1:2]})
	restarted := f.agentSvc.Load()
	if n, err := restarted.InterruptedRuns(tenant.WithID(context.Background(), tid)); err != nil || n != 0 {
		t.Errorf("a paused session was treated as interrupted: %d %v", n, err)
	}
	// The start-up pass (which marks interrupted runs) left it waiting too.
	if s := f.do("GET", "/api/v1/agent/sessions/"+sid, f.tok, nil); s.body["status"] != string(agent.StatusAwaitingApproval) {
		t.Errorf("after the restart the paused session is %s", s.raw)
	}
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", f.tok, nil); r.status != 200 {
		t.Fatalf("approve after restart: %d %s", r.status, r.raw)
	}
	evs = f.watch(t, sid, ap.Seq, func(e agent.Event) bool { return e.Type == agent.EventCompleted })
	if types(evs) != "tool_result,text,completed" {
		t.Errorf("after restart: %s", types(evs))
	}
	recs := f.do("GET", "/api/v1/inventory/command-records", f.tok, nil)
	if n := strings.Count(recs.raw, `"command":"systemctl restart nginx"`); n != 1 {
		t.Errorf("the approved command ran %d times, want once", n)
	}
	// A second approve cannot run it again.
	if r := f.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", f.tok, nil); r.status != 409 {
		t.Errorf("re-approve: %d", r.status)
	}
}

func TestAgentEnginesAndHook(t *testing.T) {
	t.Parallel()
	f := newAgentFixture(t, opsScript[:1])
	r := f.do("GET", "/api/v1/agent/engines", f.tok, nil)
	if r.status != 200 || !strings.Contains(r.raw, `"name":"claude_code_cli"`) || !strings.Contains(r.raw, `"name":"openai_compatible"`) ||
		!strings.Contains(r.raw, `"name":"claude_api","healthy":true`) {
		t.Errorf("engines: %s", r.raw)
	}
	if r = f.do("POST", "/api/v1/agent/engine", f.tok, map[string]string{"engine": "gpt-5"}); r.status != 400 {
		t.Errorf("bad engine: %d", r.status)
	}
	// Switching to an engine that is not configured is allowed (it is audited); starting a task on it
	// says what to configure.
	if r = f.do("POST", "/api/v1/agent/engine", f.tok, map[string]string{"engine": "openai_compatible"}); r.status != 200 {
		t.Errorf("switch: %d %s", r.status, r.raw)
	}
	if r = f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "hi"}); r.status != 503 {
		t.Errorf("task on an unavailable engine: %d %s", r.status, r.raw)
	}
	f.do("POST", "/api/v1/agent/engine", f.tok, map[string]string{"engine": "claude_api"})
	sid := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "look"}).body["session_id"].(string)
	f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventCompleted })

	hookCall := func(cmd string, hosts ...string) map[string]any {
		r := f.do("POST", "/api/v1/agent/hook/pre-tool-use", f.tok, map[string]any{"session_id": sid, "tool_name": "Bash",
			"command": cmd, "risk_level": 0, "hosts": hosts})
		if r.status != 200 {
			t.Fatalf("hook %q: %d %s", cmd, r.status, r.raw)
		}
		return r.body
	}
	if d := hookCall("df -h"); d["decision"] != "allow" {
		t.Errorf("L0: %v", d)
	}
	if d := hookCall("rm -rf /"); d["decision"] != "deny" || !strings.Contains(d["reason"].(string), "L3") {
		t.Errorf("L3: %v", d)
	}
	if d := hookCall("ssh unknown-host uptime", "unknown-host"); d["decision"] != "deny" || !strings.Contains(d["reason"].(string), "inventory") {
		t.Errorf("unknown host: %v", d)
	}
	d := hookCall("systemctl restart nginx")
	id, lvl, ok := agent.ParseApprovalMarker(d["reason"].(string))
	if d["decision"] != "deny" || !ok || id != d["approval_id"] || lvl != 1 {
		t.Fatalf("L1 without grant: %v", d)
	}
	if d2 := hookCall("systemctl restart nginx"); d2["approval_id"] != id {
		t.Errorf("a retry opened a second approval: %v", d2)
	}
	f.do("POST", "/api/v1/agent/approvals/"+id+"/approve", f.tok, nil)
	if d := hookCall("systemctl restart nginx"); d["decision"] != "allow" {
		t.Errorf("with grant: %v", d)
	}
	if d := hookCall("systemctl restart nginx"); d["decision"] != "deny" {
		t.Errorf("the grant was used twice: %v", d)
	}
	if d := hookCall("systemctl restart nginx && echo more"); d["decision"] != "deny" {
		t.Errorf("a grant covered a different command: %v", d)
	}
	// The MCP tool endpoints answer with the same guard.
	r = f.do("GET", "/api/v1/agent/tools", f.tok, nil)
	if !strings.Contains(r.raw, `"run_command"`) || !strings.Contains(r.raw, `"read_file"`) || !strings.Contains(r.raw, `"list_servers"`) {
		t.Errorf("tools: %s", r.raw)
	}
	r = f.do("POST", "/api/v1/agent/tools/list_servers", f.tok, map[string]any{"input": map[string]string{}}, "X-IT0-Session-Id", sid)
	if r.status != 200 || !strings.Contains(r.body["output"].(string), "web-1") || strings.Contains(r.raw, "credential") {
		t.Errorf("list_servers: %d %s", r.status, r.raw)
	}
	r = f.do("POST", "/api/v1/agent/tools/run_command", f.tok, map[string]any{"input": map[string]string{"server": "web-1", "command": "touch /tmp/x"}},
		"X-IT0-Session-Id", sid)
	if _, _, ok := agent.ParseApprovalMarker(r.body["output"].(string)); !ok || r.body["is_error"] != true {
		t.Errorf("L1 tool call: %s", r.raw)
	}
	if r = f.do("POST", "/api/v1/agent/tools/run_command", f.tok, map[string]any{"input": map[string]string{}}); r.status != 400 {
		t.Errorf("tool call without session: %d", r.status)
	}
}

// tenantOf reads the tenant id of a token.
func (b *testBundle) tenantOf(tok string) string {
	r := b.do("GET", "/api/v1/auth/me", tok, nil)
	return r.body["tenant"].(map[string]any)["id"].(string)
}

func TestSkills(t *testing.T) {
	t.Parallel()
	tasks := make(chan agent.Task, 4)
	b := setupApp(t, storetest.OpenSQLite, &scriptEngine{name: agent.EngineClaudeAPI, seen: func(t agent.Task) { tasks <- t }})
	tid, tok := b.newTenant("skills")
	r := b.do("GET", "/api/v1/agent/skills", tok, nil)
	for _, name := range []string{"inspect", "deploy", "rollback", "cleanup", "diagnose", "scale", "backup-check", "security-audit"} {
		if !strings.Contains(r.raw, `"name":"`+name+`"`) {
			t.Errorf("shipped skill %s missing", name)
		}
	}
	custom := "---\nname: nginx-check\ndescription: Check nginx on a host. Use when nginx misbehaves.\nargument-hint: \"[host]\"\n---\nCheck nginx on $0 with systemctl status nginx.\n"
	if r = b.do("POST", "/api/v1/agent/skills", tok, map[string]string{"content": custom}); r.status != 201 || r.body["description"] == nil {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if r = b.do("PUT", "/api/v1/agent/skills/nginx-check", tok, map[string]string{"content": strings.Replace(custom, "Check nginx on $0", "Look at nginx on $0", 1)}); r.status != 200 {
		t.Errorf("replace: %d %s", r.status, r.raw)
	}
	if r = b.do("PUT", "/api/v1/agent/skills/other-name", tok, map[string]string{"content": custom}); r.status != 400 {
		t.Errorf("name mismatch: %d %s", r.status, r.raw)
	}
	if r = b.do("POST", "/api/v1/agent/skills", tok, map[string]string{"content": "no frontmatter"}); r.status != 400 || !strings.Contains(r.errMessage(), "SKILL.md") {
		t.Errorf("bad skill: %d %s", r.status, r.raw)
	}
	// The skill is on disk for Claude Code, and a skill dropped into the directory is imported by sync.
	root := b.skillsDir(tid)
	if _, err := os.Stat(filepath.Join(root, "nginx-check", "SKILL.md")); err != nil {
		t.Errorf("skill not written to the workspace: %v", err)
	}
	os.MkdirAll(filepath.Join(root, "disk-report"), 0o755)
	os.WriteFile(filepath.Join(root, "disk-report", "SKILL.md"), []byte("---\nname: disk-report\ndescription: Report disk use.\n---\nRun df -h.\n"), 0o644)
	if r = b.do("POST", "/api/v1/agent/skills/sync", tok, nil); r.status != 200 || !strings.Contains(r.raw, `"imported":["disk-report"]`) {
		t.Errorf("sync: %d %s", r.status, r.raw)
	}
	// A task naming a skill gets its rendered body; the system prompt lists the skills.
	r = b.do("POST", "/api/v1/agent/tasks", tok, map[string]any{"prompt": "please", "skill": "nginx-check", "skill_args": "web-7"})
	if r.status != 201 {
		t.Fatalf("task with skill: %d %s", r.status, r.raw)
	}
	task := <-tasks
	if !strings.Contains(task.Prompt, "Look at nginx on web-7") || !strings.Contains(task.SystemPrompt, "nginx-check") {
		t.Errorf("prompt %q / system prompt lacks the skill", task.Prompt)
	}
	if r = b.do("POST", "/api/v1/agent/tasks", tok, map[string]any{"prompt": "x", "skill": "nope"}); r.status != 400 {
		t.Errorf("unknown skill: %d %s", r.status, r.raw)
	}
	if r = b.do("DELETE", "/api/v1/agent/skills/nginx-check", tok, nil); r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	if _, err := os.Stat(filepath.Join(root, "nginx-check")); !os.IsNotExist(err) {
		t.Errorf("deleted skill still on disk: %v", err)
	}
	// max_skills: the free plan allows 20; fill it up.
	for i := 0; ; i++ {
		r = b.do("POST", "/api/v1/agent/skills", tok, map[string]string{"content": fmt.Sprintf("---\nname: s-%d\ndescription: d\n---\nbody\n", i)})
		if r.status != 201 {
			break
		}
	}
	if r.status != 403 || !strings.Contains(r.errMessage(), "max_skills") {
		t.Errorf("over quota: %d %s", r.status, r.raw)
	}
}

func TestAgentSessionQuota(t *testing.T) {
	t.Parallel()
	b := setupApp(t, storetest.OpenSQLite, &scriptEngine{name: agent.EngineClaudeAPI})
	r := b.do("POST", "/api/v1/auth/tenants", b.adminTok, map[string]any{"name": "q", "slug": "quota", "admin_email": "a@quota.example",
		"admin_password": "password-q", "max_sessions_per_day": 2})
	if r.status != 201 {
		t.Fatal(r.raw)
	}
	tok := b.login("a@quota.example", "password-q")
	for i := range 2 {
		if r = b.do("POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "hi"}); r.status != 201 {
			t.Fatalf("task %d: %d %s", i, r.status, r.raw)
		}
	}
	r = b.do("POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "hi"})
	if r.status != 403 || r.errCode() != "quota_exceeded" || !strings.Contains(r.errMessage(), "max_sessions_per_day") {
		t.Errorf("third task: %d %s", r.status, r.raw)
	}
	for _, body := range []string{`{}`, `{"prompt":"x","max_turns":999}`, `{"prompt":"x","engine":"nope"}`, `{"prompt":"x","server_ids":["missing"]}`} {
		if r := b.do("POST", "/api/v1/agent/tasks", b.adminTok, body); r.status != 400 && r.status != 403 && r.status != 503 {
			t.Errorf("%s: %d %s", body, r.status, r.raw)
		}
	}
}

// TestTenantRiskRules raises a level for one tenant through the API and checks it applies to that
// tenant's commands only, and that lowering a shipped level is refused naming the line.
func TestTenantRiskRules(t *testing.T) {
	t.Parallel()
	f := newAgentFixture(t, nil)
	_, otherTok := f.newTenant("other")
	raise := "commands:\n  - names: [docker]\n    rules:\n      - {sub: [ps], level: L2, reason: our policy}\n"
	if r := f.do("PUT", "/api/v1/agent/risk-rules", f.tok, map[string]string{"rules": raise}); r.status != 200 {
		t.Fatalf("put: %d %s", r.status, r.raw)
	}
	if r := f.do("GET", "/api/v1/agent/risk-rules", f.tok, nil); r.body["rules"] != raise {
		t.Errorf("get: %s", r.raw)
	}
	res, _ := f.exec([]string{f.serverID(t, "web-1")}, "docker ps")
	if res[0]["status"] != "approval_required" || res[0]["risk_level"] != float64(2) {
		t.Errorf("raised command: %v", res)
	}
	// The other tenant keeps the shipped level (L0): it has no server, so ask the hook through a session.
	if r := f.do("GET", "/api/v1/agent/risk-rules", otherTok, nil); r.body["rules"] != "" {
		t.Errorf("other tenant sees rules: %s", r.raw)
	}
	r := f.do("PUT", "/api/v1/agent/risk-rules", f.tok, map[string]string{"rules": "defaults:\n  unknown_command: {level: L0, reason: lax}\n"})
	if r.status != 400 || !strings.Contains(r.errMessage(), "line 2") {
		t.Errorf("lowering: %d %s", r.status, r.raw)
	}
	if r := f.do("PUT", "/api/v1/agent/risk-rules", otherTok, map[string]string{"rules": "not: [valid"}); r.status != 400 {
		t.Errorf("bad yaml: %d %s", r.status, r.raw)
	}
	if a := f.do("GET", "/api/v1/audit/logs?action_type=guard.rules_changed", f.tok, nil); !strings.Contains(a.raw, "our policy") {
		t.Errorf("change not audited: %s", a.raw)
	}
	// Clearing the overrides restores the shipped level.
	f.do("PUT", "/api/v1/agent/risk-rules", f.tok, map[string]string{"rules": ""})
	if res, _ := f.exec([]string{f.serverID(t, "web-1")}, "docker ps"); res[0]["risk_level"] != float64(0) {
		t.Errorf("after clearing: %v", res)
	}
}

func (f *invFixture) serverID(t *testing.T, name string) string {
	t.Helper()
	for _, s := range f.do("GET", "/api/v1/inventory/servers", f.tok, nil).body["items"].([]any) {
		if m := s.(map[string]any); m["name"] == name {
			return m["id"].(string)
		}
	}
	t.Fatalf("no server %s", name)
	return ""
}
