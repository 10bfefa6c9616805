package claudecode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/agent/agenttest"
	"github.com/it0/it0/internal/agent/claudecode"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fakeClaude is the path of the fake CLI built by TestMain.
var fakeClaude string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "fakeclaude-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeClaude = filepath.Join(dir, "claude")
	build := exec.Command("go", "build", "-o", fakeClaude, "./testdata/fakeclaude")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building fake claude:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testBundle is what setup returns next to the engine.
type testBundle struct {
	workDir string
	record  string // where the fake writes its argv, cwd and env
}

func setup(t *testing.T, cfg claudecode.Config) (*claudecode.Engine, *testBundle) {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = fakeClaude
	}
	cfg.KillGrace = cmpOr(cfg.KillGrace, 2*time.Second)
	dir := t.TempDir()
	if err := claudecode.PrepareWorkspace(dir, claudecode.Workspace{HookCommand: "/bin/it0 hook pre-tool-use", MCPCommand: "/bin/it0"}); err != nil {
		t.Fatal(err)
	}
	return claudecode.New(cfg), &testBundle{workDir: dir, record: filepath.Join(t.TempDir(), "record.json")}
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

// task returns a task that makes the fake replay testdata/<fixture>.jsonl.
func (b *testBundle) task(t *testing.T, fixture string, env ...string) agent.Task {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("testdata", fixture+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return agent.Task{
		SessionID: "s1",
		Prompt:    "check disk on web-1",
		WorkDir:   b.workDir,
		Env:       append([]string{"FAKECLAUDE_FIXTURE=" + path, "FAKECLAUDE_RECORD=" + b.record}, env...),
	}
}

type recorded struct {
	Args []string          `json:"args"`
	Cwd  string            `json:"cwd"`
	Env  map[string]string `json:"env"`
}

func (b *testBundle) recorded(t *testing.T) recorded {
	t.Helper()
	data, err := os.ReadFile(b.record)
	if err != nil {
		t.Fatal(err)
	}
	var r recorded
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunGolden replays each stream-json fixture through the fake CLI and compares the events and the
// outcome with testdata/<name>.golden.
func TestRunGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       claudecode.Config
		wantFinal agent.EventType
		wantCode  string
	}{
		{name: "success", wantFinal: agent.EventCompleted},
		{name: "tool_use", wantFinal: agent.EventCompleted},
		{name: "max_turns", wantFinal: agent.EventError, wantCode: agent.CodeMaxTurns},
		{name: "crash", wantFinal: agent.EventError, wantCode: agent.CodeEngine},
		{name: "no_result", wantFinal: agent.EventError, wantCode: agent.CodeTruncated},
		{name: "huge", cfg: claudecode.Config{MaxLineBytes: 1024}, wantFinal: agent.EventError, wantCode: agent.CodeBadResponse},
		{name: "api_error", wantFinal: agent.EventError, wantCode: agent.CodeEngine},
		{name: "approval", wantFinal: agent.EventApprovalRequired},
		// Recorded from Claude Code 2.1.332 without --allowedTools: ToolSearch loads IT0's tools, the CLI
		// refuses mcp__it0__list_servers, the hook refuses rm -rf /, and the result still says success.
		{name: "denied", wantFinal: agent.EventError, wantCode: agent.CodePermissionDenied},
		// IT0's tools ran (and answered with errors); only Bash was refused, reported by the result line alone.
		{name: "denied_partial", wantFinal: agent.EventCompleted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, b := setup(t, tc.cfg)
			evs, out := agenttest.Collect(t, t.Context(), e, b.task(t, tc.name))
			if len(evs) == 0 {
				t.Fatal("no events")
			}
			last := evs[len(evs)-1]
			if last.Type != tc.wantFinal || last.Code != tc.wantCode {
				t.Errorf("final event = %s/%s, want %s/%s", last.Type, last.Code, tc.wantFinal, tc.wantCode)
			}
			for _, ev := range evs[:len(evs)-1] {
				if ev.Type == agent.EventCompleted || ev.Type == agent.EventError {
					t.Errorf("%s event before the end", ev.Type)
				}
			}
			if out.Paused != (tc.wantFinal == agent.EventApprovalRequired) {
				t.Errorf("Paused = %v", out.Paused)
			}
			// stderr notices race with stdout's events (two pipes); TestRunStderrNotices checks them.
			evs = slices.DeleteFunc(evs, func(ev agent.Event) bool { return ev.Code == agent.CodeEngineLog })
			agenttest.Golden(t, tc.name, *update, evs, out, nil)
		})
	}
}

// TestRunArgs ensures the CLI gets the documented flags, runs in the workspace, and sees the task's
// environment but none of IT0's own.
func TestRunArgs(t *testing.T) {
	t.Setenv("IT0_VAULT_MASTER_KEY", "super-secret-master-key")
	e, b := setup(t, claudecode.Config{Model: "sonnet", ExtraArgs: []string{"--permission-mode", "dontAsk"}})
	task := b.task(t, "success", "IT0_TOKEN=session-token", "IT0_URL=http://127.0.0.1:8080")
	task.State = json.RawMessage(`{"claude_session_id":"prev-session"}`)
	task.AllowedTools = []string{"run_command", "Bash(df *)", "mcp__other__x"}
	task.MaxTurns = 7
	task.MaxBudgetUSD = 0.5
	task.SystemPrompt = "You are IT0."
	task.Prompt = "-rf is not a flag"
	_, out := agenttest.Collect(t, t.Context(), e, task)

	r := b.recorded(t)
	want := []string{
		"-p", " -rf is not a flag", "--output-format", "stream-json", "--verbose", "--include-partial-messages",
		"--resume", "prev-session", "--model", "sonnet",
		"--allowedTools", "mcp__it0,Bash(df *),mcp__other__x",
		"--max-turns", "7", "--max-budget-usd", "0.5", "--append-system-prompt", "You are IT0.\n\n" + claudecode.ToolGuide,
		"--mcp-config", filepath.Join(b.workDir, claudecode.MCPConfigFile),
		"--permission-mode", "dontAsk",
	}
	if !slices.Equal(r.Args, want) {
		t.Errorf("args:\n got %q\nwant %q", r.Args, want)
	}
	if r.Cwd != b.workDir {
		t.Errorf("cwd = %q, want %q", r.Cwd, b.workDir)
	}
	if _, ok := r.Env["IT0_VAULT_MASTER_KEY"]; ok {
		t.Error("IT0's own environment leaked into the CLI")
	}
	if r.Env["IT0_TOKEN"] != "session-token" || r.Env["IT0_URL"] != "http://127.0.0.1:8080" {
		t.Errorf("task env missing: %v", r.Env)
	}
	if r.Env["ENABLE_TOOL_SEARCH"] != "false" {
		t.Errorf("ENABLE_TOOL_SEARCH = %q, want false (IT0's tools loaded up front)", r.Env["ENABLE_TOOL_SEARCH"])
	}
	var st claudecode.State
	if err := json.Unmarshal(out.State, &st); err != nil || st.ClaudeSessionID != "2f373806-6319-4319-bc84-c0b0f85c4628" {
		t.Errorf("state = %s (%v)", out.State, err)
	}
	if out.Summary != "Hello! All servers look fine." || out.TokensUsed != 921 || out.CostUSD != 0.0031 {
		t.Errorf("outcome = %+v", out)
	}
}

// TestRunFirstRunArgs ensures a first run has no --resume and no optional flags, but always pre-approves
// IT0's MCP tools on the command line (Claude Code 2.1 ignores the rule in an untrusted workspace's
// settings file) and tells the model how to reach them.
func TestRunFirstRunArgs(t *testing.T) {
	t.Parallel()
	e, b := setup(t, claudecode.Config{})
	agenttest.Collect(t, t.Context(), e, b.task(t, "success"))
	args := b.recorded(t).Args
	for _, f := range []string{"--resume", "--max-turns", "--model", "--max-budget-usd"} {
		if slices.Contains(args, f) {
			t.Errorf("unexpected %s in %q", f, args)
		}
	}
	if i := slices.Index(args, "--allowedTools"); i < 0 || args[i+1] != "mcp__it0" {
		t.Errorf("no --allowedTools mcp__it0 in %q", args)
	}
	if i := slices.Index(args, "--append-system-prompt"); i < 0 || args[i+1] != claudecode.ToolGuide {
		t.Errorf("no tool guide in %q", args)
	}
}

// TestRunToolSearchSetting ensures an operator's own ENABLE_TOOL_SEARCH is left as it is.
func TestRunToolSearchSetting(t *testing.T) {
	t.Parallel()
	e, b := setup(t, claudecode.Config{})
	agenttest.Collect(t, t.Context(), e, b.task(t, "success", "ENABLE_TOOL_SEARCH=auto:5"))
	if got := b.recorded(t).Env["ENABLE_TOOL_SEARCH"]; got != "auto:5" {
		t.Errorf("ENABLE_TOOL_SEARCH = %q, want the operator's auto:5", got)
	}
}

// TestRunStderrNotices ensures what the CLI writes to stderr reaches the session as notices (and the
// log), before the final event and no more than the cap.
func TestRunStderrNotices(t *testing.T) {
	t.Parallel()
	e, b := setup(t, claudecode.Config{})
	fixture := filepath.Join(t.TempDir(), "stderr.jsonl")
	var data strings.Builder
	data.WriteString("#stderr Ignoring 1 permissions.allow entry from .claude/settings.json: this workspace has not been trusted.\n")
	for i := range 30 {
		fmt.Fprintf(&data, "#stderr warning %d\n", i)
	}
	data.WriteString(`{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s"}` + "\n")
	if err := os.WriteFile(fixture, []byte(data.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	task := b.task(t, "success")
	task.Env = []string{"FAKECLAUDE_FIXTURE=" + fixture}
	evs, _ := agenttest.Collect(t, t.Context(), e, task)
	var notices []string
	for _, ev := range evs {
		if ev.Type == agent.EventNotice && ev.Code == agent.CodeEngineLog {
			notices = append(notices, ev.Message)
		}
	}
	if len(notices) != 20 || !strings.Contains(notices[0], "has not been trusted") {
		t.Errorf("notices = %q, want 20 starting with the trust warning", notices)
	}
	if last := evs[len(evs)-1]; last.Type != agent.EventCompleted {
		t.Errorf("final = %+v", last)
	}
}

// TestRunPendingResults ensures a run after an approval resumes the CLI session and tells the model
// what became of the calls it waited on.
func TestRunPendingResults(t *testing.T) {
	t.Parallel()
	e, b := setup(t, claudecode.Config{})
	task := b.task(t, "success")
	task.Prompt = ""
	task.State = json.RawMessage(`{"claude_session_id":"paused-session"}`)
	task.PendingResults = []agent.PendingResult{
		{ToolUseID: "toolu_01Z", Tool: "Bash", Result: agent.ToolResult{Output: "nginx restarted"}},
		{ToolUseID: "toolu_02", Tool: "Bash", Result: agent.ToolResult{Output: "rejected by admin", IsError: true}},
	}
	agenttest.Collect(t, t.Context(), e, task)
	args := b.recorded(t).Args
	prompt := args[1]
	for _, want := range []string{`tool_use_id="toolu_01Z"`, "nginx restarted", `status="error"`, "rejected by admin", "Continue the task."} {
		if !strings.Contains(prompt, want) {
			t.Errorf("prompt lacks %q:\n%s", want, prompt)
		}
	}
	if i := slices.Index(args, "--resume"); i < 0 || args[i+1] != "paused-session" {
		t.Errorf("no --resume paused-session in %q", args)
	}
}

// TestRunLongLine ensures lines far over bufio.Scanner's 64 KiB default pass intact.
func TestRunLongLine(t *testing.T) {
	t.Parallel()
	e, b := setup(t, claudecode.Config{})
	big := strings.Repeat("0123456789", 100_000) // 1 MB
	line := fmt.Sprintf(`{"type":"user","session_id":"s","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":%q}]}}`, big)
	fixture := filepath.Join(t.TempDir(), "long.jsonl")
	data := line + "\n" + `{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s"}` + "\n"
	if err := os.WriteFile(fixture, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	task := b.task(t, "success")
	task.Env = []string{"FAKECLAUDE_FIXTURE=" + fixture}
	evs, _ := agenttest.Collect(t, t.Context(), e, task)
	if len(evs) != 2 || evs[0].Output != big || evs[1].Type != agent.EventCompleted {
		t.Fatalf("got %d events", len(evs))
	}
}

// TestRunDefaultLineLimit ensures the default 16 MiB cap turns a bigger line into a bad_response error.
func TestRunDefaultLineLimit(t *testing.T) {
	t.Parallel()
	e, b := setup(t, claudecode.Config{})
	fixture := filepath.Join(t.TempDir(), "huge.jsonl")
	data := "#huge " + strconv.Itoa(17<<20) + "\n" + `{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s"}` + "\n"
	if err := os.WriteFile(fixture, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	task := b.task(t, "success")
	task.Env = []string{"FAKECLAUDE_FIXTURE=" + fixture}
	evs, _ := agenttest.Collect(t, t.Context(), e, task)
	if last := evs[len(evs)-1]; last.Code != agent.CodeBadResponse {
		t.Fatalf("final = %+v", last)
	}
}

// pids reads the "<pid> <childpid>" file the fake writes for #spawn.
func pids(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// alive reports whether pid is a live process (a zombie waiting for its reaper counts as gone).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// waitGone waits until none of pids is alive, failing after 10s.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		left := slices.DeleteFunc(slices.Clone(pids), func(p int) bool { return !alive(p) })
		if len(left) == 0 {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("processes still alive: %v", left)
		case <-tick.C:
		}
	}
}

// hangFixture writes a fixture that spawns a child, says something, and hangs.
func hangFixture(t *testing.T) (fixture, pidFile string) {
	t.Helper()
	dir := t.TempDir()
	fixture, pidFile = filepath.Join(dir, "hang.jsonl"), filepath.Join(dir, "pids")
	data := `{"type":"system","subtype":"init","session_id":"hang-session"}` + "\n#spawn " + pidFile + "\n" +
		`{"type":"assistant","session_id":"hang-session","message":{"id":"m","role":"assistant","content":[{"type":"text","text":"working"}]}}` + "\n#hang\n"
	if err := os.WriteFile(fixture, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return fixture, pidFile
}

// TestRunCancel ensures cancelling the context stops the CLI and everything it spawned, and ends the
// stream with a cancelled error.
func TestRunCancel(t *testing.T) {
	t.Parallel()
	e, b := setup(t, claudecode.Config{})
	fixture, pidFile := hangFixture(t)
	task := b.task(t, "success")
	task.Env = []string{"FAKECLAUDE_FIXTURE=" + fixture}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var evs []agent.Event
	out, err := e.Run(ctx, task, func(ev agent.Event) {
		evs = append(evs, ev)
		if ev.Type == agent.EventText {
			cancel() // the fake is now hanging with its child
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Type != agent.EventError || last.Code != agent.CodeCancelled {
		t.Errorf("final = %+v", last)
	}
	if !strings.Contains(string(out.State), "hang-session") {
		t.Errorf("state = %s", out.State)
	}
	waitGone(t, pids(t, pidFile))
}

// TestRunTimeoutKillsStubbornGroup ensures a CLI that ignores SIGTERM is killed with its children after
// the grace period when the run times out.
func TestRunTimeoutKillsStubbornGroup(t *testing.T) {
	t.Parallel()
	// The timeout leaves the fake time to start and record its pids even on a loaded machine.
	e, b := setup(t, claudecode.Config{Timeout: 2 * time.Second, KillGrace: 200 * time.Millisecond})
	fixture, pidFile := hangFixture(t)
	task := b.task(t, "success")
	task.Env = []string{"FAKECLAUDE_FIXTURE=" + fixture, "FAKECLAUDE_IGNORE_TERM=1"}
	evs, _ := agenttest.Collect(t, t.Context(), e, task)
	last := evs[len(evs)-1]
	if last.Type != agent.EventError || last.Code != agent.CodeEngine || !strings.Contains(last.Message, "did not finish within 2s") {
		t.Errorf("final = %+v", last)
	}
	waitGone(t, pids(t, pidFile))
}

// TestRunApprovalStopsCLI ensures the CLI is stopped at the approval marker rather than left to run
// on: the fixture's later "try another way" text never reaches the stream.
func TestRunApprovalStopsCLI(t *testing.T) {
	t.Parallel()
	e, b := setup(t, claudecode.Config{})
	evs, out := agenttest.Collect(t, t.Context(), e, b.task(t, "approval"))
	if !out.Paused {
		t.Fatal("not paused")
	}
	last := evs[len(evs)-1]
	if last.Type != agent.EventApprovalRequired || last.ApprovalID != "ap_7f3c" || last.RiskLevel == nil || *last.RiskLevel != 2 ||
		last.Command != "ssh web-1 systemctl restart nginx" || last.ToolUseID != "toolu_01Z" {
		t.Errorf("approval event = %+v", last)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Text, "another way") {
			t.Error("events after the pause reached the stream")
		}
	}
}

// TestRunInvalidTask ensures Run refuses tasks it cannot run, without emitting.
func TestRunInvalidTask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    claudecode.Config
		mutate func(*agent.Task)
		want   string
	}{
		{"ErrNoWorkDir", claudecode.Config{}, func(t *agent.Task) { t.WorkDir = "" }, "no WorkDir"},
		{"ErrNoPrompt", claudecode.Config{}, func(t *agent.Task) { t.Prompt = " " }, "neither a prompt"},
		{"ErrBadState", claudecode.Config{}, func(t *agent.Task) { t.State = json.RawMessage(`[`) }, "decode session state"},
		{"ErrNotPrepared", claudecode.Config{}, func(t *agent.Task) { t.WorkDir = os.TempDir() + "/nope" }, "workspace not prepared"},
		{"ErrNoBinary", claudecode.Config{Path: "/nonexistent/claude"}, func(*agent.Task) {}, "IT0_CLAUDE_PATH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, b := setup(t, tc.cfg)
			task := b.task(t, "success")
			tc.mutate(&task)
			_, err := e.Run(t.Context(), task, func(ev agent.Event) { t.Errorf("emitted %+v", ev) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		path    string
		env     string
		wantErr bool
	}{
		{"OK", fakeClaude, "", false},
		{"ErrMissing", "/nonexistent/claude", "", true},
		{"ErrNotOnPath", "no-such-claude-binary", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := claudecode.New(claudecode.Config{Path: tc.path}).Health(t.Context())
			if (err != nil) != tc.wantErr {
				t.Fatalf("Health = %v", err)
			}
			if err != nil && (!errors.Is(err, agent.ErrUnavailable) || !strings.Contains(err.Error(), "IT0_CLAUDE_PATH")) {
				t.Errorf("error %q does not wrap ErrUnavailable or name IT0_CLAUDE_PATH", err)
			}
		})
	}
}

// TestHealthVersionFails ensures a binary that exists but cannot answer --version is unavailable.
func TestHealthVersionFails(t *testing.T) {
	t.Setenv("FAKECLAUDE_VERSION_FAIL", "1")
	err := claudecode.New(claudecode.Config{Path: fakeClaude}).Health(t.Context())
	if !errors.Is(err, agent.ErrUnavailable) {
		t.Fatalf("Health = %v", err)
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	if n := claudecode.New(claudecode.Config{}).Name(); n != agent.EngineClaudeCode {
		t.Fatal(n)
	}
}
