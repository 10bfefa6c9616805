package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/it0/it0/internal/agent/agentapi"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

// Tool names shared by every engine (agentapi).
const (
	ToolRunCommand      = agentapi.ToolRunCommand
	ToolReadFile        = agentapi.ToolReadFile
	ToolListServers     = agentapi.ToolListServers
	ToolDescribeServer  = agentapi.ToolDescribeServer
	ToolListClusters    = agentapi.ToolListClusters
	ToolDescribeCluster = agentapi.ToolDescribeCluster
)

func schema(s string) json.RawMessage { return json.RawMessage(s) }

// toolSpecs are the tools every session gets.
var toolSpecs = []Tool{
	{Name: ToolRunCommand, Description: "Run a shell command on one or more managed servers over SSH. Every command is risk-classified: " +
		"read-only (L0) runs at once; L1/L2 pause for a human approval unless the task's boundary allows them " +
		"(a standing order runs up to its max risk level on its own); L3 (destructive) is always refused. " +
		"Choose servers by name (server), names (servers) or a selector.",
		InputSchema: schema(`{"type":"object","properties":{"server":{"type":"string","description":"server name or id"},` +
			`"servers":{"type":"array","items":{"type":"string"},"description":"several server names or ids"},` +
			`"selector":{"type":"object","properties":{"environment":{"type":"string","enum":["dev","staging","prod"]},"role":{"type":"string"},"tags":{"type":"array","items":{"type":"string"}},"all":{"type":"boolean"}}},` +
			`"command":{"type":"string"},"timeout_seconds":{"type":"integer","minimum":1,"maximum":3600}},"required":["command"]}`)},
	{Name: ToolReadFile, Description: "Read a file on a managed server (at most max_bytes, default 65536).",
		InputSchema: schema(`{"type":"object","properties":{"server":{"type":"string"},"path":{"type":"string","description":"absolute path"},` +
			`"max_bytes":{"type":"integer","minimum":1,"maximum":1048576}},"required":["server","path"]}`)},
	{Name: ToolListServers, Description: "List managed servers (name, host, environment, role, tags, jump host). Never shows credentials.",
		InputSchema: schema(`{"type":"object","properties":{"environment":{"type":"string"},"role":{"type":"string"},"tag":{"type":"string"}}}`)},
	{Name: ToolDescribeServer, Description: "Describe one managed server: its fields and its jump chain.",
		InputSchema: schema(`{"type":"object","properties":{"server":{"type":"string"}},"required":["server"]}`)},
	{Name: ToolListClusters, Description: "List clusters (bare metal, Kubernetes, Docker Swarm).",
		InputSchema: schema(`{"type":"object","properties":{}}`)},
	{Name: ToolDescribeCluster, Description: "Describe one cluster and the servers in it.",
		InputSchema: schema(`{"type":"object","properties":{"cluster":{"type":"string","description":"cluster name or id"}},"required":["cluster"]}`)},
}

// ToolProvider adds tools to every session: the ops module's standing-order tools. Its calls are guarded
// by the provider; one that needs a human opens an approval with RequestApproval and returns
// *ApprovalRequired, and Approved carries the call out once the approval is granted (or explains a refusal).
type ToolProvider interface {
	Tools() []Tool
	// CallTool runs tool name in sess; handled is false when name is not one of the provider's tools.
	CallTool(ctx context.Context, sess *Session, name string, input json.RawMessage) (res ToolResult, handled bool, err error)
	// Approved acts on decided approval a of one of the provider's tools (a.Status says how it was decided).
	Approved(ctx context.Context, sess *Session, a *approval.Approval) (res ToolResult, handled bool)
}

// AddTools registers a tool provider; call it during wiring, before sessions run.
func (s *Service) AddTools(p ToolProvider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.providers = append(s.providers, p)
}

func (s *Service) toolProviders() []ToolProvider {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ToolProvider(nil), s.providers...)
}

// ToolSpecs lists the tools of a session.
func (s *Service) ToolSpecs() []Tool {
	out := append([]Tool(nil), toolSpecs...)
	for _, p := range s.toolProviders() {
		out = append(out, p.Tools()...)
	}
	return out
}

// RequestApproval opens (or finds) a pending approval for a provider's tool call. summary is what the
// human reads and decides on; a grant is bound to it exactly, like a command.
func (s *Service) RequestApproval(ctx context.Context, sess *Session, tool, summary string, input json.RawMessage, level guard.Level, reason string) (*approval.Approval, error) {
	return s.approvals.Open(ctx, approvalRequest(sess, tool, summary, input, guard.Verdict{Level: level, Reason: reason}))
}

// UseGrant consumes an approved, unused grant for exactly summary in the session (the Claude Code path,
// where the model repeats an approved call).
func (s *Service) UseGrant(ctx context.Context, sessionID, summary string) (bool, error) {
	return s.useGrant(ctx, sessionID, summary)
}

// sessionTools is a session's Toolbox.
type sessionTools struct {
	svc       *Service
	sessionID string
}

func (t *sessionTools) Tools() []Tool { return t.svc.ToolSpecs() }

func (t *sessionTools) Call(ctx context.Context, name string, input json.RawMessage) (ToolResult, error) {
	return t.svc.CallTool(ctx, t.sessionID, name, input)
}

type runCommandInput struct {
	Server         string              `json:"server"`
	Servers        []string            `json:"servers"`
	Selector       *inventory.Selector `json:"selector"`
	Command        string              `json:"command"`
	TimeoutSeconds int                 `json:"timeout_seconds"`
}

type readFileInput struct {
	Server   string `json:"server"`
	Path     string `json:"path"`
	MaxBytes int    `json:"max_bytes"`
}

type listServersInput struct {
	Environment string `json:"environment"`
	Role        string `json:"role"`
	Tag         string `json:"tag"`
}

func toolError(format string, args ...any) ToolResult {
	return ToolResult{IsError: true, Output: fmt.Sprintf(format, args...)}
}

// CallTool runs tool name for a session. Tool failures come back as ToolResult{IsError: true} for the
// model to read; *ApprovalRequired when a human must decide; other errors end the run.
func (s *Service) CallTool(ctx context.Context, sessionID, name string, input json.RawMessage) (ToolResult, error) {
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	if len(input) > 256<<10 {
		return toolError("tool input is larger than 256 KiB"), nil
	}
	var res ToolResult
	sess, err := s.store.SessionGet(ctx, sessionID)
	switch {
	case err != nil:
		return ToolResult{}, err
	case !Allowed(sess.AllowedTools, name):
		res = toolError("tool %s is not allowed in this task (allowed: %s)", name, strings.Join(sess.AllowedTools, ", "))
	default:
		res, err = s.callTool(ctx, sess, name, input)
	}
	// Every call is audited with its input (tool inputs never carry credentials: IT0 holds those).
	detail := map[string]any{"session_id": sessionID, "tool": name, "input": input, "is_error": res.IsError}
	var ar *ApprovalRequired
	if errors.As(err, &ar) {
		detail["approval_id"] = ar.ApprovalID
	}
	if _, aerr := s.audit.Record(ctx, audit.Record{Action: "agent.tool_called", ResourceType: "session", ResourceID: sessionID,
		Description: "tool " + name, Detail: detail}); aerr != nil && err == nil {
		return ToolResult{}, aerr
	}
	return res, err
}

func (s *Service) callTool(ctx context.Context, sess *Session, name string, input json.RawMessage) (ToolResult, error) {
	switch name {
	case ToolRunCommand:
		var in runCommandInput
		if err := json.Unmarshal(input, &in); err != nil {
			return toolError("bad input for run_command: %v", err), nil
		}
		return s.runCommand(ctx, sess, name, in, input)
	case ToolReadFile:
		var in readFileInput
		if err := json.Unmarshal(input, &in); err != nil {
			return toolError("bad input for read_file: %v", err), nil
		}
		if !path.IsAbs(in.Path) || strings.ContainsAny(in.Path, "\x00\n") || len(in.Path) > 4096 {
			return toolError("path must be an absolute path"), nil
		}
		in.Path = path.Clean(in.Path) // the guard judges /etc/shadow, not /var/log/../../etc/shadow
		if in.MaxBytes <= 0 || in.MaxBytes > 1<<20 {
			in.MaxBytes = 64 << 10
		}
		cmd := fmt.Sprintf("head -c %d -- %s", in.MaxBytes, shellQuote(in.Path))
		rc := runCommandInput{Server: in.Server, Command: cmd, TimeoutSeconds: 30}
		raw, _ := json.Marshal(rc)
		return s.runCommand(ctx, sess, ToolRunCommand, rc, raw)
	case ToolListServers:
		var in listServersInput
		if err := json.Unmarshal(input, &in); err != nil {
			return toolError("bad input for list_servers: %v", err), nil
		}
		sel := inventory.Selector{Environment: in.Environment, Role: in.Role}
		if in.Tag != "" {
			sel.Tags = []string{in.Tag}
		}
		list, err := s.fleet.Servers(ctx, sel)
		if err != nil {
			return ToolResult{}, err
		}
		return jsonResult(serverViews(list)), nil
	case ToolDescribeServer:
		var in struct {
			Server string `json:"server"`
		}
		if err := json.Unmarshal(input, &in); err != nil {
			return toolError("bad input for describe_server: %v", err), nil
		}
		all, err := s.fleet.Servers(ctx, inventory.Selector{})
		if err != nil {
			return ToolResult{}, err
		}
		srv := findServer(all, in.Server)
		if srv == nil {
			return toolError("no server named %q; call list_servers", in.Server), nil
		}
		v := serverViews([]inventory.Server{*srv})[0]
		var chain []string
		for cur, seen := srv.JumpServerID, 0; cur != "" && seen < 10; seen++ {
			j := findServer(all, cur)
			if j == nil {
				break
			}
			chain = append([]string{j.Name}, chain...)
			cur = j.JumpServerID
		}
		return jsonResult(map[string]any{"server": v, "jump_chain": chain, "host_key_fingerprint": srv.HostKeyFingerprint}), nil
	case ToolListClusters:
		cs, err := s.fleet.Clusters(ctx)
		if err != nil {
			return ToolResult{}, err
		}
		return jsonResult(cs), nil
	case ToolDescribeCluster:
		var in struct {
			Cluster string `json:"cluster"`
		}
		if err := json.Unmarshal(input, &in); err != nil {
			return toolError("bad input for describe_cluster: %v", err), nil
		}
		cs, err := s.fleet.Clusters(ctx)
		if err != nil {
			return ToolResult{}, err
		}
		for _, c := range cs {
			if c.Name == in.Cluster || c.ID == in.Cluster {
				members, err := s.fleet.Servers(ctx, inventory.Selector{ClusterID: c.ID})
				if err != nil {
					return ToolResult{}, err
				}
				return jsonResult(map[string]any{"cluster": c, "servers": serverViews(members)}), nil
			}
		}
		return toolError("no cluster named %q; call list_clusters", in.Cluster), nil
	}
	for _, p := range s.toolProviders() {
		if res, handled, err := p.CallTool(ctx, sess, name, input); handled {
			return res, err
		}
	}
	var names []string
	for _, t := range s.ToolSpecs() {
		names = append(names, t.Name)
	}
	return toolError("unknown tool %q; the tools are %s", name, strings.Join(names, ", ")), nil
}

// serverView is what the model may see of a server.
type serverView struct {
	Name        string   `json:"name"`
	Host        string   `json:"host"`
	Environment string   `json:"environment"`
	Role        string   `json:"role"`
	Tags        []string `json:"tags"`
	Status      string   `json:"status"`
	JumpVia     string   `json:"jump_server_id,omitempty"`
	Description string   `json:"description,omitempty"`
}

func serverViews(list []inventory.Server) []serverView {
	out := make([]serverView, len(list))
	for i, s := range list {
		out[i] = serverView{Name: s.Name, Host: s.Host, Environment: s.Environment, Role: s.Role, Tags: s.Tags, Status: s.Status,
			JumpVia: s.JumpServerID, Description: s.Description}
	}
	return out
}

func findServer(all []inventory.Server, nameOrID string) *inventory.Server {
	for i := range all {
		if all[i].Name == nameOrID || all[i].ID == nameOrID {
			return &all[i]
		}
	}
	return nil
}

func jsonResult(v any) ToolResult {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return toolError("encode result: %v", err)
	}
	return ToolResult{Output: string(b)}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// selection turns a run_command input into a selector over existing servers.
func (s *Service) selection(ctx context.Context, in runCommandInput) (inventory.Selector, error) {
	names := in.Servers
	if in.Server != "" {
		names = append(names, in.Server)
	}
	if len(names) == 0 {
		if in.Selector == nil || in.Selector.Empty() {
			return inventory.Selector{}, errors.New("choose servers: server, servers or selector")
		}
		return *in.Selector, nil
	}
	all, err := s.fleet.Servers(ctx, inventory.Selector{})
	if err != nil {
		return inventory.Selector{}, err
	}
	var ids []string
	for _, n := range names {
		srv := findServer(all, n)
		if srv == nil {
			return inventory.Selector{}, fmt.Errorf("no server named %q; call list_servers", n)
		}
		ids = append(ids, srv.ID)
	}
	return inventory.Selector{ServerIDs: ids}, nil
}

// runCommand guards and runs a command. L1/L2 use an unused grant for exactly this command in this
// session if there is one (Claude Code re-running an approved command through `it0 mcp`), else open an
// approval.
func (s *Service) runCommand(ctx context.Context, sess *Session, tool string, in runCommandInput, raw json.RawMessage) (ToolResult, error) {
	sessionID := sess.ID
	if strings.TrimSpace(in.Command) == "" {
		return toolError("command is required"), nil
	}
	sel, err := s.selection(ctx, in)
	if err != nil {
		return toolError("%v", err), nil
	}
	targets, err := s.fleet.Servers(ctx, sel)
	if err != nil {
		return ToolResult{}, err
	}
	v := s.guard.ClassifyTargets(ctx, in.Command, inventory.Targets(targets)) // the blast radius may raise it
	switch {
	case v.Level >= guard.L3:
		// Through the inventory anyway, so the refusal is recorded per server and audited; it runs nowhere.
		s.execTool(ctx, sessionID, in, guard.L0)
		return toolError("BLOCKED (L3, never allowed): %s. Do not try to work around this; explain to the admin what you wanted to do.", v.Reason), nil
	case v.Level == guard.L0:
		return s.execTool(ctx, sessionID, in, guard.L0), nil
	case int(v.Level) > sess.MaxRiskLevel && sess.Origin == "standing_order":
		// Beyond an unattended order's boundary: escalate to a human, who may approve it for this run.
		a, err := s.openApproval(ctx, sessionID, tool, in.Command, raw, v)
		if err != nil {
			return ToolResult{}, err
		}
		return ToolResult{}, &ApprovalRequired{ApprovalID: a.ID, Command: in.Command, RiskLevel: a.RiskLevel, Reason: "beyond the standing order's boundary: " + v.Reason}
	case int(v.Level) > sess.MaxRiskLevel:
		s.execTool(ctx, sessionID, in, guard.L0) // recorded and audited as refused; runs nowhere
		return toolError("REFUSED: this is an L%d command (%s) and this task may run at most L%d. Do not try another way; report what you would do and why, so a human can decide.",
			v.Level, v.Reason, sess.MaxRiskLevel), nil
	}
	granted, err := s.useGrant(ctx, sessionID, in.Command)
	if err != nil {
		return ToolResult{}, err
	}
	if granted {
		ctx = audit.WithAuthority(ctx, "an approved grant for this exact command in session "+sessionID)
		return s.execTool(ctx, sessionID, in, v.Level), nil
	}
	if sess.AutoApprove || sess.Unattended() {
		// Inside the boundary someone set ahead of time: a runbook in emergency mode, or a standing order up
		// to its max_risk_level. It runs without a human, recorded as approved by that authority.
		if err := s.autoApprove(ctx, sess, tool, in.Command, raw, v); err != nil {
			return ToolResult{}, err
		}
		_, label := s.authority(ctx, sess)
		ctx = audit.WithAuthority(ctx, "auto-approved by "+label)
		return s.execTool(ctx, sessionID, in, v.Level), nil
	}
	a, err := s.openApproval(ctx, sessionID, tool, in.Command, raw, v)
	if err != nil {
		return ToolResult{}, err
	}
	return ToolResult{}, &ApprovalRequired{ApprovalID: a.ID, Command: in.Command, RiskLevel: a.RiskLevel, Reason: v.Reason}
}

// OriginNamer is implemented by a ToolProvider that knows the authority behind sessions of its origin
// (the standing order behind a run): OriginName returns it ("" when the session is not its).
type OriginNamer interface {
	OriginName(ctx context.Context, sess *Session) string
}

// authority names who approved a command of sess ahead of time, for the approval and the audit log:
// "standing order SO-…" for an order's run (by "standing_order:SO-…"), the runbook otherwise.
func (s *Service) authority(ctx context.Context, sess *Session) (by, label string) {
	for _, p := range s.toolProviders() {
		if n, ok := p.(OriginNamer); ok {
			if name := n.OriginName(ctx, sess); name != "" {
				return sess.Origin + ":" + name, strings.ReplaceAll(sess.Origin, "_", " ") + " " + name
			}
		}
	}
	if sess.Unattended() {
		return "standing_order:" + sess.OriginID, "standing order run " + sess.OriginID
	}
	return "auto:" + sess.Origin + ":" + sess.OriginID, "emergency mode"
}

// autoApprove records an approval of command that is decided and used at once, auditing who allowed it.
// Nobody is asked, so nobody is notified.
func (s *Service) autoApprove(ctx context.Context, sess *Session, tool, command string, input json.RawMessage, v guard.Verdict) error {
	by, label := s.authority(ctx, sess)
	_, err := s.approvals.AutoApprove(ctx, approvalRequest(sess, tool, command, input, v), by, label, sess.MaxRiskLevel)
	return err
}

// execTool runs an already-judged command on the selection and formats the per-server results.
func (s *Service) execTool(ctx context.Context, sessionID string, in runCommandInput, allow guard.Level) ToolResult {
	sel, err := s.selection(ctx, in)
	if err != nil {
		return toolError("%v", err)
	}
	timeout := time.Duration(in.TimeoutSeconds) * time.Second
	reveal := revealed(ctx)
	var b strings.Builder
	sum, err := s.fleet.Exec(ctx, inventory.ExecRequest{Selector: sel, Command: in.Command, Timeout: timeout, SessionID: sessionID,
		AllowLevel: allow, MaxOutputBytes: 64 << 10}, func(r inventory.ExecResult) {
		exit := "-"
		if r.ExitCode != nil {
			exit = fmt.Sprint(*r.ExitCode)
		}
		fmt.Fprintf(&b, "== %s: %s (exit %s, %dms)\n", r.Server, r.Status, exit, r.DurationMS)
		if r.Secret && !reveal {
			r.Stdout, r.Stderr = redactSecret(r.Stdout), redactSecret(r.Stderr)
		}
		for _, part := range []string{r.Stdout, r.Stderr, r.Error, r.Reason} {
			if part != "" {
				b.WriteString(clipBytes(part, 16<<10))
				if !strings.HasSuffix(part, "\n") {
					b.WriteByte('\n')
				}
			}
		}
	})
	if err != nil {
		var ae *errs.Error
		if errors.As(err, &ae) {
			return toolError("%s", ae.Message)
		}
		return toolError("run failed: %v", err)
	}
	return ToolResult{Output: b.String(), IsError: sum.OK != sum.Total}
}

func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n…(truncated)\n"
}

// HookDecision answers Claude Code's PreToolUse hook for a session: allow L0 (with every named host in
// the inventory), deny L3, and for L1/L2 allow once with an unused grant for exactly this command or deny
// naming the approval it opened. The level is classified again here: the hook's claim is not trusted.
func (s *Service) HookDecision(ctx context.Context, sessionID, tool, command string, hosts []string) (decision, reason, approvalID string, err error) {
	sess, err := s.store.SessionGet(ctx, sessionID)
	if err != nil {
		return "", "", "", err
	}
	if sess.Ended() {
		return "deny", "the session has ended", "", nil
	}
	v := s.guard.Classify(ctx, command)
	if strings.HasPrefix(command, "Write ") || strings.HasPrefix(command, "Edit ") || strings.HasPrefix(command, "MultiEdit ") {
		// File writes arrive as "<Tool> <path> sha256=…": the hook judged the path; they always need a human.
		v = guard.Verdict{Level: guard.L2, Reason: "file write by the agent"}
	}
	if len(hosts) > 0 {
		all, err := s.fleet.Servers(ctx, inventory.Selector{})
		if err != nil {
			return "", "", "", err
		}
		for _, h := range hosts {
			known := false
			for _, srv := range all {
				if srv.Name == h || srv.Host == h {
					known = true
				}
			}
			if !known {
				return "deny", fmt.Sprintf("host %q is not in this tenant's inventory; only managed servers may be reached", h), "", nil
			}
		}
	}
	switch {
	case v.Level >= guard.L3:
		return "deny", "BLOCKED (L3, never allowed): " + v.Reason, "", nil
	case v.Level == guard.L0:
		return "allow", "read-only (L0)", "", nil
	case int(v.Level) > sess.MaxRiskLevel:
		return "deny", fmt.Sprintf("REFUSED: an L%d command and this task may run at most L%d; report it for a human to decide", v.Level, sess.MaxRiskLevel), "", nil
	}
	granted, err := s.useGrant(ctx, sessionID, command)
	if err != nil {
		return "", "", "", err
	}
	if granted {
		return "allow", "approved by a human (single use)", "", nil
	}
	raw, _ := json.Marshal(map[string]string{"command": command})
	if sess.AutoApprove || sess.Unattended() {
		if err := s.autoApprove(ctx, sess, tool, command, raw, v); err != nil {
			return "", "", "", err
		}
		_, label := s.authority(ctx, sess)
		return "allow", "inside the boundary: auto-approved by " + label, "", nil
	}
	a, err := s.openApproval(ctx, sessionID, tool, command, raw, v)
	if err != nil {
		return "", "", "", err
	}
	return "deny", FormatApprovalMarker(a.ID, a.RiskLevel, "a human must approve this command first; the session pauses until then"), a.ID, nil
}

// RiskRulesSetting is the tenant setting that holds the tenant's guard overrides (YAML).
const RiskRulesSetting = "risk_rules"

// RiskRules returns the tenant's guard overrides ("" when it has none).
func (s *Service) RiskRules(ctx context.Context) (string, error) {
	return s.store.SettingGet(ctx, RiskRulesSetting)
}

// SetRiskRules validates and stores the tenant's guard overrides; they may raise levels and add rules,
// never lower a shipped level. The change is audited with the before and after text.
func (s *Service) SetRiskRules(ctx context.Context, yaml string) error {
	if s.cfg.RiskRules == nil {
		return errs.New(errs.Unavailable, "risk rules cannot be changed in this process")
	}
	if len(yaml) > 256<<10 {
		return errs.Invalidf("rules", "rules are larger than 256 KiB")
	}
	if err := s.cfg.RiskRules.Check([]byte(yaml)); err != nil {
		return errs.Invalidf("rules", "%v", err).WithHint("tenants may raise levels and add rules; see ops-config/risk-patterns.yaml for the format")
	}
	old, err := s.store.SettingGet(ctx, RiskRulesSetting)
	if err != nil {
		return err
	}
	if err := s.store.SettingSet(ctx, RiskRulesSetting, yaml); err != nil {
		return err
	}
	tid, _ := tenant.ID(ctx)
	s.cfg.RiskRules.Forget(tid)
	_, err = s.audit.Record(ctx, audit.Record{Action: "guard.rules_changed", ResourceType: "tenant", ResourceID: tid,
		Description: "tenant risk rules changed", Detail: map[string]string{"before": old, "after": yaml}})
	return err
}
