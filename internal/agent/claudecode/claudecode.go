// Package claudecode runs tasks on the Claude Code CLI: it spawns `claude -p … --output-format
// stream-json` in the tenant's workspace, turns the stream into IT0 events, and pauses the session when
// IT0's hook or MCP tools refuse a command that needs approval (the agent.ApprovalMarker in a tool
// result).
package claudecode

import (
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
	stderr := &tailBuffer{max: stderrTail}
	cmd.Stderr = stderr
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

	r := &run{e: e, emit: emit, cancel: cancel, p: newParser()}
	r.read(runCtx, newLineReader(stdout, e.cfg.MaxLineBytes))
	close(readDone)
	escalate.Wait()
	waitErr := cmd.Wait()
	killGroup(cmd) // whatever the CLI left behind (background shells, MCP servers) goes with it

	out := agent.Outcome{State: st.encode(cmp.Or(r.p.sessionID, st.ClaudeSessionID))}
	if r.paused {
		out.Paused = true
		return out, nil
	}
	final := e.finalEvent(ctx, runCtx, r, waitErr, stderr.String())
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

// run is the state of one Run while the stream is read.
type run struct {
	e      *Engine
	emit   func(agent.Event)
	cancel context.CancelCauseFunc
	p      *parser
	paused bool
	fatal  *agent.Event
}

func (r *run) send(ev agent.Event) {
	ev.Time = time.Now().UTC()
	r.emit(ev)
}

// read consumes stdout to EOF. After a pause or a fatal line it keeps draining (so the CLI can flush and
// exit on SIGTERM) but forwards only further approval_required events of a pause.
func (r *run) read(ctx context.Context, lr *lineReader) {
	for {
		b, err := lr.readLine()
		if errors.Is(err, errLineTooLong) {
			if r.fatal == nil && !r.paused {
				r.fatal = &agent.Event{Type: agent.EventError, Code: agent.CodeBadResponse, Message: "claude wrote a stream-json line over the limit: " + err.Error()}
				r.cancel(errStopped)
			}
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
				r.send(ev)
			}
		}
	}
}

// args builds the CLI's argv. The prompt follows -p directly: --allowedTools and --mcp-config take
// several values and would swallow a prompt placed after them.
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
	if len(t.AllowedTools) > 0 {
		names := make([]string, 0, len(t.AllowedTools))
		for _, n := range t.AllowedTools {
			names = append(names, cliToolName(n))
		}
		args = append(args, "--allowedTools", strings.Join(names, ","))
	}
	if t.MaxTurns > 0 {
		args = append(args, "--max-turns", strconv.Itoa(t.MaxTurns))
	}
	if t.MaxBudgetUSD > 0 {
		args = append(args, "--max-budget-usd", strconv.FormatFloat(t.MaxBudgetUSD, 'f', -1, 64))
	}
	if t.SystemPrompt != "" {
		args = append(args, "--append-system-prompt", t.SystemPrompt)
	}
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
// extra (the task's IT0_URL, IT0_TOKEN, IT0_SESSION_ID) is added.
func environ(base, extra []string) []string {
	env := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "IT0_") || k == "CLAUDE_CODE_SKIP_PROMPT_HISTORY" {
			continue
		}
		env = append(env, kv)
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
