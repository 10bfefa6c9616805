// Command fakeclaude stands in for the claude CLI in claudecode's tests. It replays a stream-json fixture
// (FAKECLAUDE_FIXTURE) to stdout and records its argv, cwd and IT0_* (and ENABLE_TOOL_SEARCH) environment as JSON
// (FAKECLAUDE_RECORD). Fixture lines starting with '#' are directives, not output:
//
//	#stderr <text>     write text to stderr
//	#exit <n>          exit with status n now
//	#wait              block until SIGTERM, at most 30s (the CLI busy with its turn)
//	#hang              block until SIGTERM, forever
//	#spawn <pidfile>   start a child that hangs in the same process group; write "<pid> <childpid>"
//	#huge <n>          write a valid JSON line of about n bytes
//	#bash <command>    use the Bash tool as the real CLI does: run the PreToolUse hook of
//	                   ./.claude/settings.json with the event on stdin, then print the tool_use and a
//	                   tool_result carrying the hook's verdict (its deny reason, or "ran: <command>")
//	#tool <name> <json> call IT0's tool <name> as the CLI does through `it0 mcp` (which proxies to
//	                   $IT0_URL/api/v1/agent/tools/<name>), and print the tool_use and its tool_result
//
// With --resume in argv, FAKECLAUDE_FIXTURE_RESUME (when set) is replayed instead of FAKECLAUDE_FIXTURE.
//
// On SIGTERM it prints an error_during_execution result and exits 143, like the real CLI, unless
// FAKECLAUDE_IGNORE_TERM=1. `--version` prints a version (or fails with FAKECLAUDE_VERSION_FAIL=1).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var outMu sync.Mutex

func emitLine(s string) {
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.WriteString(s + "\n")
}

func main() {
	if os.Getenv("FAKECLAUDE_CHILD") == "1" {
		signal.Ignore(syscall.SIGTERM)
		select {}
	}
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		if os.Getenv("FAKECLAUDE_VERSION_FAIL") == "1" {
			fmt.Fprintln(os.Stderr, "version: broken install")
			os.Exit(1)
		}
		fmt.Println("2.1.240 (Claude Code)")
		return
	}
	if rec := os.Getenv("FAKECLAUDE_RECORD"); rec != "" {
		record(rec)
	}
	var sessionID atomic.Value
	sessionID.Store("fake-session")
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	terminated := make(chan struct{})
	go func() {
		for range term {
			if os.Getenv("FAKECLAUDE_IGNORE_TERM") == "1" {
				continue
			}
			close(terminated)
			emitLine(`{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["Request was aborted."],"session_id":"` + sessionID.Load().(string) + `","terminal_reason":"aborted_streaming","num_turns":1}`)
			os.Exit(143)
		}
	}()

	fixture := os.Getenv("FAKECLAUDE_FIXTURE")
	if r := os.Getenv("FAKECLAUDE_FIXTURE_RESUME"); r != "" && slices.Contains(os.Args, "--resume") {
		fixture = r
	}
	f, err := os.Open(fixture)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeclaude:", err)
		os.Exit(1)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "#") {
			var v struct {
				SessionID string `json:"session_id"`
			}
			if json.Unmarshal([]byte(l), &v) == nil && v.SessionID != "" {
				sessionID.Store(v.SessionID)
			}
			emitLine(l)
			continue
		}
		cmd, arg, _ := strings.Cut(l[1:], " ")
		switch cmd {
		case "stderr":
			fmt.Fprintln(os.Stderr, arg)
		case "exit":
			n, _ := strconv.Atoi(arg)
			os.Exit(n)
		case "wait":
			select {
			case <-terminated:
				select {} // the handler exits
			case <-time.After(30 * time.Second):
			}
		case "hang":
			select {}
		case "spawn":
			child := exec.Command(os.Args[0])
			child.Env = append(os.Environ(), "FAKECLAUDE_CHILD=1")
			if err := child.Start(); err != nil {
				fmt.Fprintln(os.Stderr, "fakeclaude: spawn:", err)
				os.Exit(1)
			}
			if err := os.WriteFile(arg, fmt.Appendf(nil, "%d %d", os.Getpid(), child.Process.Pid), 0o600); err != nil {
				os.Exit(1)
			}
		case "bash":
			bash(arg, sessionID.Load().(string))
		case "tool":
			name, input, _ := strings.Cut(arg, " ")
			mcpTool(name, input, sessionID.Load().(string))
		case "huge":
			n, _ := strconv.Atoi(arg)
			emitLine(`{"type":"assistant","session_id":"` + sessionID.Load().(string) + `","message":{"id":"msg_huge","role":"assistant","content":[{"type":"text","text":"` + strings.Repeat("x", n) + `"}]}}`)
		}
	}
}

var toolSeq int

// bash plays one Bash tool call through the workspace's PreToolUse hook, like the CLI: the hook decides,
// and a deny reason becomes the tool result the model reads.
func bash(command, session string) {
	toolSeq++
	id := fmt.Sprintf("toolu_fake_%d", toolSeq)
	input, _ := json.Marshal(map[string]string{"command": command})
	emitLine(fmt.Sprintf(`{"type":"assistant","session_id":%q,"message":{"id":"msg_%d","role":"assistant","content":[{"type":"tool_use","id":%q,"name":"Bash","input":%s}]}}`,
		session, toolSeq, id, input))
	result, isErr := "ran: "+command, false
	if reason, denied := runHook(session, id, input); denied {
		result, isErr = reason, true
	}
	out, _ := json.Marshal(map[string]any{"type": "user", "session_id": session, "message": map[string]any{"role": "user",
		"content": []any{map[string]any{"type": "tool_result", "tool_use_id": id, "content": result, "is_error": isErr}}}})
	emitLine(string(out))
}

// mcpTool plays one call of an IT0 MCP tool: the request `it0 mcp` makes for it, with the session's token.
func mcpTool(name, input, session string) {
	toolSeq++
	id := fmt.Sprintf("toolu_fake_%d", toolSeq)
	emitLine(fmt.Sprintf(`{"type":"assistant","session_id":%q,"message":{"id":"msg_%d","role":"assistant","content":[{"type":"tool_use","id":%q,"name":"mcp__it0__%s","input":%s}]}}`,
		session, toolSeq, id, name, input))
	body := `{"input":` + input + `}`
	req, _ := http.NewRequest("POST", os.Getenv("IT0_URL")+"/api/v1/agent/tools/"+name, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+os.Getenv("IT0_TOKEN"))
	req.Header.Set("X-IT0-Session-Id", os.Getenv("IT0_SESSION_ID"))
	var res struct {
		Output  string `json:"output"`
		IsError bool   `json:"is_error"`
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
	}
	if err != nil {
		res.Output, res.IsError = "MCP error: "+err.Error(), true
	}
	out, _ := json.Marshal(map[string]any{"type": "user", "session_id": session, "message": map[string]any{"role": "user",
		"content": []any{map[string]any{"type": "tool_result", "tool_use_id": id, "content": res.Output, "is_error": res.IsError}}}})
	emitLine(string(out))
}

// runHook runs the PreToolUse hooks of ./.claude/settings.json and reports a deny and its reason.
func runHook(session, toolUseID string, input json.RawMessage) (string, bool) {
	var settings struct {
		Hooks struct {
			PreToolUse []struct {
				Matcher string `json:"matcher"`
				Hooks   []struct {
					Command string `json:"command"`
				} `json:"hooks"`
			} `json:"PreToolUse"`
		} `json:"hooks"`
	}
	b, err := os.ReadFile(".claude/settings.json")
	if err != nil || json.Unmarshal(b, &settings) != nil {
		return "no hook settings: " + fmt.Sprint(err), true
	}
	cwd, _ := os.Getwd()
	event, _ := json.Marshal(map[string]any{"session_id": session, "hook_event_name": "PreToolUse", "tool_name": "Bash",
		"tool_input": input, "tool_use_id": toolUseID, "cwd": cwd, "permission_mode": "default"})
	for _, g := range settings.Hooks.PreToolUse {
		if !strings.Contains(g.Matcher, "Bash") {
			continue
		}
		for _, h := range g.Hooks {
			cmd := exec.Command("sh", "-c", h.Command)
			cmd.Stdin = strings.NewReader(string(event))
			cmd.Env = append(os.Environ(), "CLAUDE_PROJECT_DIR="+cwd)
			out, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 2 {
				return string(ee.Stderr), true
			}
			var o struct {
				HookSpecificOutput struct {
					PermissionDecision       string `json:"permissionDecision"`
					PermissionDecisionReason string `json:"permissionDecisionReason"`
				} `json:"hookSpecificOutput"`
			}
			if json.Unmarshal(out, &o) == nil && o.HookSpecificOutput.PermissionDecision == "deny" {
				return "PreToolUse:Bash hook denied this tool: " + o.HookSpecificOutput.PermissionDecisionReason, true
			}
		}
	}
	return "", false
}

func record(path string) {
	cwd, _ := os.Getwd()
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "IT0_") || k == "ENABLE_TOOL_SEARCH" {
			env[k] = v
		}
	}
	b, _ := json.Marshal(map[string]any{"args": os.Args[1:], "cwd": cwd, "env": env})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		os.Exit(1)
	}
}
