// Package claudecode runs tasks on the Claude Code CLI: it spawns `claude -p … --output-format
// stream-json` in the tenant's workspace, turns the stream into IT0 events, and pauses the session when
// IT0's hook or MCP tools refuse a command that needs approval (the agent.ApprovalMarker in a tool
// result).
package claudecode

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/it0/it0/internal/agent"
)

// Defaults for Config fields left zero.
const (
	DefaultPath         = "claude"
	DefaultTimeout      = 30 * time.Minute
	DefaultKillGrace    = 10 * time.Second
	DefaultMaxLineBytes = 16 << 20
	healthTimeout       = 10 * time.Second
	stderrTail          = 4 << 10
	maxStderrLine       = 2 << 10 // longer stderr lines are cut for notices and logs
	maxStderrNotices    = 20      // stderr lines shown in a session per run; the rest go to the log only
)

// Config configures the engine.
type Config struct {
	// Path is the claude binary (IT0_CLAUDE_PATH); a bare name is looked up on PATH. Default "claude".
	Path string
	// Model is passed as --model when set (an alias such as "sonnet" or a full model id).
	Model string
	// ExtraArgs are appended to every invocation (e.g. --permission-mode dontAsk, --tools …).
	ExtraArgs []string
	// Timeout bounds one run; the process group is stopped when it passes. Default 30m; negative = none.
	Timeout time.Duration
	// KillGrace is how long the CLI gets between SIGTERM and SIGKILL of its process group. Default 10s.
	KillGrace time.Duration
	// MaxLineBytes caps one stream-json line; a longer line ends the run with a bad_response error.
	// Default 16 MiB.
	MaxLineBytes int
	// Logger receives diagnostics (skipped lines, stderr on failure). Default: discard.
	Logger *slog.Logger
}

// State is what Outcome.State holds for this engine: the CLI's own session id, passed as --resume on the
// session's next run.
type State struct {
	ClaudeSessionID string `json:"claude_session_id"`
}

// Engine is the Claude Code CLI engine. It is safe for concurrent use; each Run spawns its own process.
type Engine struct {
	cfg Config
	log *slog.Logger
}

var _ agent.Engine = (*Engine)(nil)

// New returns an engine for cfg, with defaults filled in.
func New(cfg Config) *Engine {
	cfg.Path = cmp.Or(cfg.Path, DefaultPath)
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.KillGrace = cmp.Or(cfg.KillGrace, DefaultKillGrace)
	cfg.MaxLineBytes = cmp.Or(cfg.MaxLineBytes, DefaultMaxLineBytes)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, log: log.With("component", "agent.claudecode")}
}

// Name returns agent.EngineClaudeCode.
func (e *Engine) Name() string { return agent.EngineClaudeCode }

// Health checks that the claude binary exists and answers `claude --version` within a few seconds.
// Its errors wrap agent.ErrUnavailable and name IT0_CLAUDE_PATH.
func (e *Engine) Health(ctx context.Context) error {
	path, err := exec.LookPath(e.cfg.Path)
	if err != nil {
		return fmt.Errorf("%w: claude CLI %q not found (install it or set IT0_CLAUDE_PATH): %v", agent.ErrUnavailable, e.cfg.Path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	setProcessGroup(cmd)
	cmd.Cancel = func() error { killGroup(cmd); return nil }
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%w: %s --version failed (check IT0_CLAUDE_PATH): %v", agent.ErrUnavailable, path, err)
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		return fmt.Errorf("%w: %s --version printed nothing (check IT0_CLAUDE_PATH)", agent.ErrUnavailable, path)
	}
	return nil
}

// errPaused and errTimeout are the causes Run cancels its process with.
var (
	errPaused  = errors.New("paused for approval")
	errTimeout = errors.New("run timed out")
	errStopped = errors.New("stream unusable")
)

// Run spawns the CLI for t and streams its events. The run pauses (Outcome.Paused, final events
// approval_required) at the first tool result that carries agent.ApprovalMarker: the CLI is then stopped
// with SIGTERM, which ends its turn and keeps the transcript resumable. The next run resumes the CLI
// session and tells the model, in the prompt, what became of the calls it waited on (t.PendingResults).
// Run returns an error without emitting anything when it cannot start: t is invalid (no WorkDir, no
// prompt, bad State, workspace not prepared) or the binary does not start.
func (e *Engine) Run(ctx context.Context, t agent.Task, emit func(agent.Event)) (agent.Outcome, error) {
	if t.WorkDir == "" {
		return agent.Outcome{}, errors.New("claudecode: task has no WorkDir")
	}
	var st State
	if len(t.State) > 0 {
		if err := json.Unmarshal(t.State, &st); err != nil {
			return agent.Outcome{}, fmt.Errorf("claudecode: decode session state: %w", err)
		}
	}
	prompt := buildPrompt(t)
	if strings.TrimSpace(prompt) == "" {
		return agent.Outcome{}, errors.New("claudecode: task has neither a prompt nor pending results")
	}
	mcpConfig := filepath.Join(t.WorkDir, MCPConfigFile)
	if _, err := os.Stat(mcpConfig); err != nil {
		return agent.Outcome{}, fmt.Errorf("claudecode: workspace not prepared (PrepareWorkspace): %w", err)
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if e.cfg.Timeout > 0 {
		var cancelTimeout context.CancelFunc
		runCtx, cancelTimeout = context.WithTimeoutCause(runCtx, e.cfg.Timeout, errTimeout)
		defer cancelTimeout()
	}

	cmd := exec.CommandContext(runCtx, e.cfg.Path, e.args(t, st.ClaudeSessionID, prompt, mcpConfig)...)
	cmd.Dir = t.WorkDir
	cmd.Env = environ(os.Environ(), t.Env)
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return terminateGroup(cmd) }
	cmd.WaitDelay = e.cfg.KillGrace
	r := &run{e: e, ctx: ctx, sessionID: t.SessionID, emit: emit, cancel: cancel, p: newParser()}
	stderr := &tailBuffer{max: stderrTail}
	stderrLines := &lineWriter{max: maxStderrLine, line: r.stderrLine}
	cmd.Stderr = io.MultiWriter(stderr, stderrLines)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return agent.Outcome{}, fmt.Errorf("claudecode: stdout pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return agent.Outcome{}, fmt.Errorf("claudecode: start %s (check IT0_CLAUDE_PATH): %w", e.cfg.Path, err)
	}

	// Escalate if the group does not stop after SIGTERM: SIGKILL it, and if some escaped process
	// still holds stdout open, stop reading.
	readDone := make(chan struct{})
	var escalate sync.WaitGroup
	escalate.Go(func() {
		select {
		case <-runCtx.Done():
		case <-readDone:
			return
		}
		timer := time.NewTimer(e.cfg.KillGrace)
		defer timer.Stop()
		select {
		case <-timer.C:
			killGroup(cmd)
		case <-readDone:
			return
		}
		timer.Reset(e.cfg.KillGrace)
		select {
		case <-timer.C:
			_ = stdout.Close()
		case <-readDone:
		}
	})

	r.read(runCtx, newLineReader(stdout, e.cfg.MaxLineBytes))
	close(readDone)
	escalate.Wait()
	waitErr := cmd.Wait()
	killGroup(cmd) // whatever the CLI left behind (background shells, MCP servers) goes with it
	stderrLines.flush()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true // a stderr line still in flight (an escaped child holding the pipe) is dropped
	out := agent.Outcome{State: st.encode(cmp.Or(r.p.sessionID, st.ClaudeSessionID))}
	if r.paused {
		out.Paused = true
		return out, nil
	}
	final := e.finalEvent(ctx, runCtx, r, waitErr, stderr.String())
	if final.Code == agent.CodePermissionDenied {
		e.log.WarnContext(ctx, "claude refused every IT0 tool call", slog.String("session_id", t.SessionID), slog.String("message", final.Message))
	}
	// Error results carry usage too; the session's accounting wants it either way.
	out.Summary, out.TokensUsed, out.CostUSD = final.Summary, final.TokensUsed, final.CostUSD
	r.send(final)
	return out, nil
}

// finalEvent decides how a run that did not pause ended. The result line is authoritative; without one
// the reason is the caller's cancel, the timeout, an unusable stream, or the process exit.
func (e *Engine) finalEvent(ctx, runCtx context.Context, r *run, waitErr error, stderr string) agent.Event {
	switch {
	case r.fatal != nil:
		return *r.fatal
	case r.p.final != nil && r.p.final.Type == agent.EventCompleted:
		if waitErr != nil {
			e.log.WarnContext(ctx, "claude exited with an error after a successful result", "error", waitErr, "stderr", stderr)
		}
		return *r.p.final
	case ctx.Err() != nil:
		// On SIGTERM the CLI flushes an error_during_execution result; the cause is ours.
		return agent.Event{Type: agent.EventError, Code: agent.CodeCancelled, Message: "the run was cancelled"}
	case errors.Is(context.Cause(runCtx), errTimeout):
		return agent.Event{Type: agent.EventError, Code: agent.CodeEngine, Message: withStderr(fmt.Sprintf("claude did not finish within %s", e.cfg.Timeout), stderr)}
	case r.p.final != nil:
		return *r.p.final
	case waitErr != nil:
		e.log.WarnContext(ctx, "claude failed", "error", waitErr, "stderr", stderr)
		return agent.Event{Type: agent.EventError, Code: agent.CodeEngine, Message: withStderr("claude failed: "+waitErr.Error(), stderr)}
	default:
		return agent.Event{Type: agent.EventError, Code: agent.CodeTruncated, Message: withStderr("claude's stream ended without a result line", stderr)}
	}
}

// run is the state of one Run while the stream is read. Two goroutines feed it: the stdout reader and
// the copier of the CLI's stderr; mu serialises their events (emit is never called concurrently) and
// guards the flags.
type run struct {
	e         *Engine
	ctx       context.Context // the caller's, for logging
	sessionID string
	emit      func(agent.Event)
	cancel    context.CancelCauseFunc
	p         *parser // used by the stdout reader only

	mu      sync.Mutex
	paused  bool
	fatal   *agent.Event
	ended   bool // the final event is decided: nothing more goes out
	notices int  // stderr notices sent
}

// send emits ev; the caller holds mu.
func (r *run) send(ev agent.Event) {
	ev.Time = time.Now().UTC()
	r.emit(ev)
}

// stderrLine handles one line the CLI wrote to stderr: its warnings (an ignored setting, a failed MCP
// server) are how it explains refusals, so each is logged and, up to maxStderrNotices per run, shown in
// the session as a notice.
func (r *run) stderrLine(text string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	r.e.log.WarnContext(r.ctx, "claude stderr", slog.String("session_id", r.sessionID), slog.String("line", text))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended || r.paused || r.fatal != nil || r.notices >= maxStderrNotices {
		return
	}
	r.notices++
	r.send(agent.Event{Type: agent.EventNotice, Code: agent.CodeEngineLog, Message: "claude: " + text})
}

// read consumes stdout to EOF. After a pause or a fatal line it keeps draining (so the CLI can flush and
// exit on SIGTERM) but forwards only further approval_required events of a pause.
func (r *run) read(ctx context.Context, lr *lineReader) {
	for {
		b, err := lr.readLine()
		if errors.Is(err, errLineTooLong) {
			r.mu.Lock()
			if r.fatal == nil && !r.paused {
				r.fatal = &agent.Event{Type: agent.EventError, Code: agent.CodeBadResponse, Message: "claude wrote a stream-json line over the limit: " + err.Error()}
				r.cancel(errStopped)
			}
			r.mu.Unlock()
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				r.e.log.WarnContext(ctx, "reading claude's stdout failed", "error", err)
			}
			return
		}
		evs, err := r.p.parseLine(b)
		if err != nil {
			if errors.Is(err, errSkip) {
				r.e.log.DebugContext(ctx, "stream-json line skipped", "reason", err.Error())
			}
			continue
		}
		r.mu.Lock()
		for _, ev := range evs {
			switch {
			case ev.Type == agent.EventApprovalRequired && r.fatal == nil:
				if !r.paused {
					r.paused = true
					r.cancel(errPaused)
				}
				r.send(ev)
			case r.paused || r.fatal != nil:
				// Stopping: the session's stream already has its final event(s).
			default:
				if ev.Type == agent.EventNotice && ev.Code == agent.CodePermissionDenied {
					r.e.log.WarnContext(r.ctx, "claude refused a tool call", slog.String("session_id", r.sessionID),
						slog.String("tool", ev.Tool), slog.String("tool_use_id", ev.ToolUseID), slog.String("message", ev.Message))
				}
				r.send(ev)
			}
		}
		r.mu.Unlock()
	}
}

// ToolGuide is appended to every run's system prompt: how the model reaches IT0's tools in the CLI.
// Loading them up front (ENABLE_TOOL_SEARCH=false) is what environ asks for; this covers a CLI that
// defers them anyway.
const ToolGuide = "IT0's tools come from the MCP server \"" + MCPServerName + "\" and are named mcp__" + MCPServerName +
	"__<tool>: mcp__" + MCPServerName + "__run_command runs a command on managed servers, mcp__" + MCPServerName +
	"__list_servers lists them. If they are listed as deferred tools, first call ToolSearch with the query " +
	"\"select:mcp__" + MCPServerName + "__run_command,mcp__" + MCPServerName + "__list_servers\" (add any other mcp__" +
	MCPServerName + "__ tool you need), then call them."

// args builds the CLI's argv. The prompt follows -p directly: --allowedTools and --mcp-config take
// several values and would swallow a prompt placed after them.
//
// IT0's MCP tools are pre-approved on the command line on every run: Claude Code 2.1 ignores the
// permissions.allow rules of a project settings file in a folder nobody trusted interactively, and a
// workspace never is. (Its hooks it honours, so the PreToolUse hook stays in the settings file.) The
// tools guard themselves: IT0 classifies every command and checks the session's allowed tools.
func (e *Engine) args(t agent.Task, resume, prompt, mcpConfig string) []string {
	if strings.HasPrefix(prompt, "-") {
		prompt = " " + prompt // never mistaken for a flag
	}
	args := []string{"-p", prompt, "--output-format", "stream-json", "--verbose", "--include-partial-messages"}
	if resume != "" {
		args = append(args, "--resume", resume)
	}
	if e.cfg.Model != "" {
		args = append(args, "--model", e.cfg.Model)
	}
	allowed := []string{"mcp__" + MCPServerName}
	for _, n := range t.AllowedTools {
		if n = cliToolName(n); !it0Tool(n) && !slices.Contains(allowed, n) {
			allowed = append(allowed, n)
		}
	}
	args = append(args, "--allowedTools", strings.Join(allowed, ","))
	if t.MaxTurns > 0 {
		args = append(args, "--max-turns", strconv.Itoa(t.MaxTurns))
	}
	if t.MaxBudgetUSD > 0 {
		args = append(args, "--max-budget-usd", strconv.FormatFloat(t.MaxBudgetUSD, 'f', -1, 64))
	}
	system := ToolGuide
	if t.SystemPrompt != "" {
		system = t.SystemPrompt + "\n\n" + ToolGuide
	}
	args = append(args, "--append-system-prompt", system)
	args = append(args, "--mcp-config", mcpConfig)
	return append(args, e.cfg.ExtraArgs...)
}

// cliToolName maps an IT0 tool name to the CLI's name for it: IT0's tools come through the "it0" MCP
// server. Built-in tools (Bash, Read…), rules (Bash(git *)) and already-qualified names pass unchanged.
func cliToolName(n string) string {
	if n == "" || strings.Contains(n, "__") || strings.ContainsAny(n, "()") || (n[0] >= 'A' && n[0] <= 'Z') {
		return n
	}
	return "mcp__" + MCPServerName + "__" + n
}

// buildPrompt prepends what became of the tool calls the previous run paused on: the CLI's transcript
// already holds the refusal, so the decision reaches the model as text in the next user turn.
func buildPrompt(t agent.Task) string {
	if len(t.PendingResults) == 0 {
		return t.Prompt
	}
	var b strings.Builder
	b.WriteString("[IT0] The tool calls you were waiting on have been decided by a human. Do not run them again; here are their results:\n")
	for _, pr := range t.PendingResults {
		status := "ok"
		if pr.Result.IsError {
			status = "error"
		}
		fmt.Fprintf(&b, "<tool_result tool_use_id=%q tool=%q status=%q>\n%s\n</tool_result>\n", pr.ToolUseID, pr.Tool, status, pr.Result.Output)
	}
	if t.Prompt != "" {
		b.WriteString("\n")
		b.WriteString(t.Prompt)
	} else {
		b.WriteString("\nContinue the task.")
	}
	return b.String()
}

// environ is the CLI's environment: IT0's own (which holds IT0's secrets: vault key, API keys, database
// URL) is removed because the agent's Bash tool inherits it, and so is a setting that breaks --resume;
// extra (the task's IT0_URL, IT0_TOKEN, IT0_SESSION_ID) is added. Unless the operator chose otherwise,
// ENABLE_TOOL_SEARCH=false makes the CLI send IT0's MCP tools with the first request: by default
// Claude Code 2.1 defers MCP tools behind ToolSearch, a step a model may not take.
func environ(base, extra []string) []string {
	env := make([]string, 0, len(base)+len(extra)+1)
	toolSearch := false
	for _, kv := range slices.Concat(base, extra) {
		k, _, _ := strings.Cut(kv, "=")
		toolSearch = toolSearch || k == "ENABLE_TOOL_SEARCH"
	}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "IT0_") || k == "CLAUDE_CODE_SKIP_PROMPT_HISTORY" {
			continue
		}
		env = append(env, kv)
	}
	if !toolSearch {
		env = append(env, "ENABLE_TOOL_SEARCH=false")
	}
	return append(env, extra...)
}

func (State) encode(id string) json.RawMessage {
	if id == "" {
		return nil
	}
	b, _ := json.Marshal(State{ClaudeSessionID: id}) // cannot fail: one string field
	return b
}

func withStderr(msg, stderr string) string {
	stderr = strings.TrimSpace(stderr)
	if stderr == "" {
		return msg
	}
	return msg + "; stderr: " + stderr
}

// lineWriter splits what is written to it into lines (cut at max bytes) and hands each to line; flush
// hands over a last line that had no newline.
type lineWriter struct {
	max  int
	line func(string)
	buf  []byte
	long bool // the current line passed max and is being skipped to its newline
}

func (w *lineWriter) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		chunk := rest
		if i >= 0 {
			chunk = rest[:i]
		}
		if !w.long {
			if room := w.max - len(w.buf); len(chunk) > room {
				w.buf = append(w.buf, chunk[:room]...)
				w.line(string(w.buf) + "…")
				w.buf, w.long = w.buf[:0], true
			} else {
				w.buf = append(w.buf, chunk...)
			}
		}
		if i < 0 {
			break
		}
		if !w.long {
			w.line(string(w.buf))
		}
		w.buf, w.long = w.buf[:0], false
		rest = rest[i+1:]
	}
	return len(p), nil
}

// flush hands over the line written since the last newline, if any. Call it once writing has stopped.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 && !w.long {
		w.line(string(w.buf))
	}
	w.buf, w.long = w.buf[:0], false
}

// tailBuffer keeps the last max bytes written to it (the CLI's stderr, for diagnosis).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
