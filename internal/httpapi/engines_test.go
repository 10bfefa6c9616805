package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/agent/anthropic"
	"github.com/it0/it0/internal/agent/openai"
	"github.com/it0/it0/internal/inventory/sshtest"
	"github.com/it0/it0/internal/store/storetest"
)

// TestEnginesEndToEnd runs the same conversation on each API engine through a session against a real
// sshd: df -h runs, systemctl restart nginx waits for an approval and then runs once, rm -rf / is refused,
// and the WebSocket client sees the events in order.
func TestEnginesEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		engine func(url string) agent.Engine
		server func(testing.TB, string, []agenttest.Step) *httptest.Server
	}{
		{"claude_api", func(url string) agent.Engine {
			return anthropic.New(anthropic.Config{APIKey: "test-key", BaseURL: url, Model: "claude-test"})
		}, agenttest.AnthropicServer},
		{"openai_compatible", func(url string) agent.Engine {
			return openai.New(openai.Config{APIKey: "test-key", BaseURL: url + "/v1", Model: "qwen3"})
		}, agenttest.OpenAIServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			model := tc.server(t, "test-key", agenttest.OpsSteps)
			target := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.12", Password: true})
			b := setupApp(t, storetest.OpenSQLite, tc.engine(model.URL))
			_, tok := b.newTenant("e2e")
			f := &invFixture{testBundle: b, tok: tok}
			r := b.do("POST", "/api/v1/inventory/credentials", tok, map[string]string{"name": "pw", "type": "ssh_password", "secret": target.Password.Reveal()})
			f.credID = r.body["id"].(string)
			f.server("web-1", target, map[string]any{"ssh_user": target.PasswordUser})
			af := &agentFixture{invFixture: f, target: target}

			r = b.do("POST", "/api/v1/agent/tasks", tok, map[string]string{"prompt": "检查磁盘并处理 nginx", "engine": tc.name})
			if r.status != 201 {
				t.Fatalf("start: %d %s", r.status, r.raw)
			}
			sid := r.body["session_id"].(string)
			evs := af.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventApprovalRequired || e.Type == agent.EventError })
			if got := toolTypes(evs); got != "tool_use,tool_result,tool_use,approval_required" {
				t.Fatalf("before approval: %s (all: %s)", got, types(evs))
			}
			if res := evs[indexOf(evs, agent.EventToolResult)]; !strings.Contains(res.Output, "Filesystem") {
				t.Errorf("df -h result: %+v", res)
			}
			ap := evs[len(evs)-1]
			if r := b.do("POST", "/api/v1/agent/approvals/"+ap.ApprovalID+"/approve", tok, nil); r.status != 200 {
				t.Fatalf("approve: %d %s", r.status, r.raw)
			}
			evs = af.watch(t, sid, ap.Seq, func(e agent.Event) bool { return e.Type == agent.EventCompleted || e.Type == agent.EventError })
			if got := toolTypes(evs); got != "tool_result,tool_use,tool_result,completed" {
				t.Fatalf("after approval: %s (all: %s)", got, types(evs))
			}
			var blocked agent.Event
			for _, e := range evs {
				if e.Type == agent.EventToolResult {
					blocked = e
				}
			}
			if !blocked.IsError || !strings.Contains(blocked.Output, "BLOCKED") {
				t.Errorf("rm -rf / result: %+v", blocked)
			}
			done := evs[len(evs)-1]
			if !strings.Contains(done.Summary, "Done") || done.TokensUsed == 0 {
				t.Errorf("completed: %+v", done)
			}
			recs := b.do("GET", "/api/v1/inventory/command-records?limit=100", tok, nil).raw
			if n := strings.Count(recs, `"command":"systemctl restart nginx"`); n != 1 {
				t.Errorf("restart recorded %d times, want once", n)
			}
			if strings.Count(recs, `"command":"rm -rf /","risk_level":3,"status":"blocked"`) != 1 {
				t.Errorf("rm -rf / not recorded as blocked: %s", recs)
			}
		})
	}
}

// toolTypes lists the event types other than streamed text and thinking.
func toolTypes(evs []agent.Event) string {
	var s []string
	for _, e := range evs {
		if e.Type != agent.EventText && e.Type != agent.EventThinking {
			s = append(s, string(e.Type))
		}
	}
	return strings.Join(s, ",")
}

func indexOf(evs []agent.Event, typ agent.EventType) int {
	for i, e := range evs {
		if e.Type == typ {
			return i
		}
	}
	return -1
}
