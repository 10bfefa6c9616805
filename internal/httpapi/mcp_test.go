package httpapi

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/mcpserver"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMCPAgainstServer connects the official MCP client to IT0's MCP server, itself proxying to this
// API, inside a real session: list the tools, list servers, run a read-only command, and meet the
// approval marker for a risky one.
func TestMCPAgainstServer(t *testing.T) {
	t.Parallel()
	f := newAgentFixture(t, nil)
	sid := f.do("POST", "/api/v1/agent/tasks", f.tok, map[string]string{"prompt": "hello"}).body["session_id"].(string)
	f.watch(t, sid, 0, func(e agent.Event) bool { return e.Type == agent.EventCompleted })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := mcpserver.New(ctx, mcpserver.Config{URL: f.http.URL, Token: mcpserver.Token(f.tok), SessionID: sid})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler(mcpserver.HTTPOptions{}))
	defer hs.Close()
	client := mcp.NewClient(&mcp.Implementation{Name: "it0-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: hs.URL + mcpserver.Path, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	for _, want := range []string{"run_command", "read_file", "list_servers", "describe_server"} {
		if !strings.Contains(strings.Join(names, ","), want) {
			t.Errorf("tools %v lack %s", names, want)
		}
	}
	text := func(r *mcp.CallToolResult) string {
		var b strings.Builder
		for _, c := range r.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
		return b.String()
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_servers", Arguments: map[string]any{}})
	if err != nil || res.IsError || !strings.Contains(text(res), "web-1") {
		t.Errorf("list_servers: %v %+v", err, res)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"server": "web-1", "command": "uname -s"}})
	if err != nil || res.IsError || !strings.Contains(text(res), "Linux") {
		t.Errorf("run_command uname: %v %s", err, text(res))
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_command", Arguments: map[string]any{"server": "web-1", "command": "systemctl restart nginx"}})
	if id, _, ok := agent.ParseApprovalMarker(text(res)); err != nil || !res.IsError || !ok || id == "" {
		t.Errorf("run_command L1: %v %s", err, text(res))
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"server": "web-1", "path": "/etc/hostname"}})
	if err != nil || res.IsError {
		t.Errorf("read_file: %v %s", err, text(res))
	}
}
