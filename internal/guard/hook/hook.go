// Package hook implements the Claude Code PreToolUse hook that puts the
// IT0 guard in front of the agent's Bash, Write and Edit tool calls.
//
// The hook always answers with exit status 0 and a JSON permission decision
// on stdout: any other exit (except 2) makes Claude Code run the tool
// anyway, so every failure here becomes a deny. L0 commands are allowed,
// L3 commands denied, and everything between (or anything that reaches a
// remote host) is referred to the IT0 server, which allows only when a
// human already granted this exact command in this session.
package hook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/it0/it0/internal/guard"
)

// Path is the server endpoint the hook asks, relative to IT0_URL.
const Path = "/api/v1/agent/hook/pre-tool-use"

// maxEvent bounds the hook input read from stdin.
const maxEvent = 8 << 20

// ErrWrite is returned by Run when the decision could not be written.
var ErrWrite = errors.New("write hook decision")

// Config is what the hook needs. Classifier is required; without ServerURL,
// Token or a session id every L1/L2 call is denied.
type Config struct {
	// AlwaysAsk sends L0 commands to the server too: set when the tenant has its own risk rules, which
	// only the server applies (they may raise a shipped L0).
	AlwaysAsk  bool
	Classifier *guard.Classifier
	// ServerURL is the IT0 server base URL (IT0_URL).
	ServerURL string
	// Token is the session-scoped bearer token (IT0_TOKEN). Never logged.
	Token string
	// SessionID is the IT0 session (IT0_SESSION_ID); the event's
	// session_id is used when empty.
	SessionID string
	// Client makes the server call; nil means a client with a 20 s timeout.
	Client *http.Client
	// Logger receives one line per decision; nil discards.
	Logger *slog.Logger
}

// Event is the part of the PreToolUse input the hook reads. Unknown fields
// are ignored.
type Event struct {
	SessionID     string          `json:"session_id"`
	HookEventName string          `json:"hook_event_name"`
	ToolName      string          `json:"tool_name"`
	ToolInput     json.RawMessage `json:"tool_input"`
	ToolUseID     string          `json:"tool_use_id"`
	Cwd           string          `json:"cwd"`
}

// Request is the body the hook POSTs to the server.
type Request struct {
	SessionID string   `json:"session_id"`
	ToolUseID string   `json:"tool_use_id"`
	ToolName  string   `json:"tool_name"`
	Command   string   `json:"command"`
	RiskLevel int      `json:"risk_level"`
	Reason    string   `json:"reason"`
	Hosts     []string `json:"hosts"`
}

// Response is the server's answer.
type Response struct {
	Decision   string `json:"decision"`
	Reason     string `json:"reason"`
	ApprovalID string `json:"approval_id,omitempty"`
}

// Output is the JSON the hook prints.
type Output struct {
	HookSpecificOutput *Decision `json:"hookSpecificOutput,omitempty"`
}

// Decision is Claude Code's PreToolUse permission decision.
type Decision struct {
	HookEventName            string `json:"hookEventName"`
	PermissionDecision       string `json:"permissionDecision"`
	PermissionDecisionReason string `json:"permissionDecisionReason"`
}

// toolInput covers the fields of the tools the hook judges.
type toolInput struct {
	Command      string `json:"command"`
	FilePath     string `json:"file_path"`
	NotebookPath string `json:"notebook_path"`
	Content      string `json:"content"`
	OldString    string `json:"old_string"`
	NewString    string `json:"new_string"`
	NewSource    string `json:"new_source"`
	Edits        []struct {
		OldString string `json:"old_string"`
		NewString string `json:"new_string"`
	} `json:"edits"`
}

// Run reads one PreToolUse event from in and writes the decision to out. It
// returns an error only when out cannot be written (ErrWrite); every other
// problem is answered with a deny.
func Run(ctx context.Context, in io.Reader, out io.Writer, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := decide(ctx, in, cfg)
	log.InfoContext(ctx, "pre-tool-use decision",
		slog.String("tool_use_id", d.toolUseID), slog.String("tool_name", d.tool),
		slog.String("decision", d.decision), slog.String("reason", d.reason))
	if d.decision == "" {
		return nil // a tool the guard does not judge: normal permission handling
	}
	return write(out, d.decision, d.reason)
}

// Deny writes a deny decision with reason; the CLI uses it when it cannot
// even build a classifier.
func Deny(out io.Writer, reason string) error {
	return write(out, "deny", reason)
}

func write(out io.Writer, decision, reason string) error {
	b, err := json.Marshal(Output{HookSpecificOutput: &Decision{
		HookEventName:            "PreToolUse",
		PermissionDecision:       decision,
		PermissionDecisionReason: reason,
	}})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	if _, err := out.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	return nil
}

type outcome struct {
	decision, reason, tool, toolUseID string
}

func decide(ctx context.Context, in io.Reader, cfg Config) outcome {
	data, err := io.ReadAll(io.LimitReader(in, maxEvent+1))
	if err != nil {
		return outcome{decision: "deny", reason: "it0 guard: cannot read hook input: " + err.Error()}
	}
	if len(data) > maxEvent {
		return outcome{decision: "deny", reason: "it0 guard: hook input too large"}
	}
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return outcome{decision: "deny", reason: "it0 guard: malformed hook input: " + err.Error()}
	}
	o := outcome{tool: ev.ToolName, toolUseID: ev.ToolUseID}
	if ev.ToolName == "" {
		o.decision, o.reason = "deny", "it0 guard: malformed hook input: no tool_name"
		return o
	}
	if cfg.Classifier == nil {
		o.decision, o.reason = "deny", "it0 guard: no classifier configured"
		return o
	}
	var ti toolInput
	if len(ev.ToolInput) > 0 {
		if err := json.Unmarshal(ev.ToolInput, &ti); err != nil {
			o.decision, o.reason = "deny", "it0 guard: malformed tool_input: "+err.Error()
			return o
		}
	}
	var (
		v       guard.Verdict
		command string
	)
	switch ev.ToolName {
	case "Bash":
		if strings.TrimSpace(ti.Command) == "" {
			o.decision, o.reason = "deny", "it0 guard: Bash call without a command"
			return o
		}
		command = ti.Command
		v = cfg.Classifier.Classify(command)
	case "Write", "Edit", "MultiEdit", "NotebookEdit":
		p := cmpOr(ti.FilePath, ti.NotebookPath)
		if p == "" {
			o.decision, o.reason = "deny", "it0 guard: "+ev.ToolName+" call without a file_path"
			return o
		}
		if !filepath.IsAbs(p) && !strings.HasPrefix(p, "~") {
			if ev.Cwd == "" {
				o.decision, o.reason = "deny", "it0 guard: relative file_path without cwd"
				return o
			}
			p = filepath.Join(ev.Cwd, p)
		}
		v = cfg.Classifier.ProtectedPath(p)
		// A grant is for this exact change, so the content is part of the command.
		command = fmt.Sprintf("%s %s sha256=%s", ev.ToolName, p, contentHash(ti))
	default:
		return o // not ours to judge
	}
	switch {
	case v.Level >= guard.L3:
		o.decision, o.reason = "deny", fmt.Sprintf("it0 guard: %s forbidden: %s", v.Level, v.Reason)
	case v.Level == guard.L0 && len(v.Hosts) == 0 && !cfg.AlwaysAsk:
		o.decision, o.reason = "allow", fmt.Sprintf("it0 guard: %s read-only: %s", v.Level, v.Reason)
	default:
		o.decision, o.reason = ask(ctx, cfg, ev, command, v)
	}
	return o
}

func contentHash(ti toolInput) string {
	h := sha256.New()
	for _, s := range []string{ti.Content, ti.OldString, ti.NewString, ti.NewSource} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	for _, e := range ti.Edits {
		fmt.Fprintf(h, "%d:%s%d:%s", len(e.OldString), e.OldString, len(e.NewString), e.NewString)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ask refers an L1/L2 call (or one that reaches remote hosts) to the server.
func ask(ctx context.Context, cfg Config, ev Event, command string, v guard.Verdict) (decision, reason string) {
	deny := func(format string, args ...any) (string, string) {
		return "deny", fmt.Sprintf("it0 guard: %s needs approval (%s), but ", v.Level, v.Reason) + fmt.Sprintf(format, args...)
	}
	session := cmpOr(cfg.SessionID, ev.SessionID)
	switch {
	case cfg.ServerURL == "":
		return deny("IT0_URL is not set")
	case cfg.Token == "":
		return deny("IT0_TOKEN is not set")
	case session == "":
		return deny("no session id (IT0_SESSION_ID or the event's session_id)")
	}
	hosts := v.Hosts
	if hosts == nil {
		hosts = []string{}
	}
	body, err := json.Marshal(Request{
		SessionID: session, ToolUseID: ev.ToolUseID, ToolName: ev.ToolName, Command: command,
		RiskLevel: int(v.Level), Reason: v.Reason, Hosts: hosts,
	})
	if err != nil {
		return deny("the request could not be encoded: %v", err)
	}
	url := strings.TrimRight(cfg.ServerURL, "/") + Path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return deny("the server URL is invalid: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return deny("the IT0 server is unreachable: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return deny("reading the IT0 server's answer failed: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return deny("the IT0 server answered %s", resp.Status)
	}
	var r Response
	if err := json.Unmarshal(raw, &r); err != nil {
		return deny("the IT0 server's answer is not valid JSON: %v", err)
	}
	switch r.Decision {
	case "allow":
		return "allow", "it0: " + cmpOr(r.Reason, "approved for this session")
	case "deny":
		msg := "it0: " + cmpOr(r.Reason, "not approved")
		if r.ApprovalID != "" && !strings.Contains(msg, r.ApprovalID) {
			msg += fmt.Sprintf(" (approval %s is waiting for a human; retry the same command once it is approved)", r.ApprovalID)
		}
		return "deny", msg
	}
	return deny("the IT0 server answered an unknown decision %q", r.Decision)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
