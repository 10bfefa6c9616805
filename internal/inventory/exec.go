package inventory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/tenant"
	"github.com/it0/it0/internal/vault"
)

// Execution statuses of one server.
const (
	StatusOK               = "ok"                // exit code 0
	StatusFailed           = "failed"            // ran, non-zero exit
	StatusUnreachable      = "unreachable"       // could not connect (any hop)
	StatusTimeout          = "timeout"           // killed at the timeout
	StatusBlocked          = "blocked"           // L3: never runs
	StatusApprovalRequired = "approval_required" // L1/L2 without an approval
	StatusError            = "error"             // the server's configuration prevents running (no credential…)
	StatusCancelled        = "cancelled"         // the caller went away
)

// ExecRequest is one command for a selection of servers.
type ExecRequest struct {
	Selector    Selector
	Command     string
	Timeout     time.Duration
	Parallelism int
	SessionID   string
	// AllowLevel is the highest risk level that may run: L0 unless the caller holds an approval for exactly
	// this command. L3 never runs, whatever it says.
	AllowLevel guard.Level
	// MaxOutputBytes caps each stream of each server; 0 means the executor's default.
	MaxOutputBytes int
}

// ExecResult is the outcome on one server.
type ExecResult struct {
	ServerID   string `json:"server_id"`
	Server     string `json:"server"`
	Status     string `json:"status"`
	ExitCode   *int   `json:"exit_code"`
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	Truncated  bool   `json:"truncated"`
	DurationMS int64  `json:"duration_ms"`
	RiskLevel  int    `json:"risk_level"`
	// Secret says the output is credential material (guard.Verdict.Secret): callers redact it unless an
	// admin approved the read.
	Secret    bool   `json:"secret,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Error     string `json:"error,omitempty"`
	FailedHop string `json:"failed_hop,omitempty"`
	Stage     string `json:"stage,omitempty"`
}

// Summary counts outcomes.
type Summary struct {
	Total       int            `json:"total"`
	OK          int            `json:"ok"`
	Failed      int            `json:"failed"`
	Unreachable int            `json:"unreachable"`
	TimedOut    int            `json:"timed_out"`
	Refused     int            `json:"refused"`
	Errors      int            `json:"errors"`
	RiskLevel   int            `json:"risk_level"`
	Verdict     *guard.Verdict `json:"verdict"`
	DurationMS  int64          `json:"duration_ms"`
}

func (sm *Summary) add(r ExecResult) {
	sm.Total++
	switch r.Status {
	case StatusOK:
		sm.OK++
	case StatusFailed:
		sm.Failed++
	case StatusUnreachable:
		sm.Unreachable++
	case StatusTimeout:
		sm.TimedOut++
	case StatusBlocked, StatusApprovalRequired:
		sm.Refused++
	default:
		sm.Errors++
	}
}

// Validate checks r.
func (r *ExecRequest) validate(cfg Config) error {
	var list []error
	if r.Command == "" || len(r.Command) > 64<<10 || !utf8.ValidString(r.Command) {
		list = append(list, errs.Invalidf("command", "command is required (valid UTF-8, at most 64 KiB)"))
	}
	if r.Selector.Empty() {
		list = append(list, errs.Invalidf("selector", "choose servers: server_ids, or a selector with environment, role, cluster_id, tags or all"))
	}
	if r.Timeout == 0 {
		r.Timeout = cfg.DefaultTimeout
	}
	if r.Timeout < 0 || r.Timeout > cfg.MaxTimeout {
		list = append(list, errs.Invalidf("timeout_seconds", "timeout_seconds must be from 1 to %d", int(cfg.MaxTimeout.Seconds())))
	}
	if r.Parallelism == 0 {
		r.Parallelism = cfg.DefaultParallelism
	}
	if r.Parallelism < 1 || r.Parallelism > 1000 {
		list = append(list, errs.Invalidf("parallelism", "parallelism must be from 1 to 1000"))
	}
	return errs.Join(list...)
}

// Exec classifies the command, then runs it on every chosen server that the verdict allows, calling
// onResult for each server as it finishes (serialised). A refused command runs nowhere and yields one
// result per server saying why. Every outcome is written to command_records and the audit log.
func (s *Service) Exec(ctx context.Context, req ExecRequest, onResult func(ExecResult)) (Summary, error) {
	start := time.Now()
	if err := req.validate(s.cfg); err != nil {
		return Summary{}, err
	}
	servers, err := s.Servers(ctx, req.Selector)
	if err != nil {
		return Summary{}, err
	}
	if len(servers) == 0 {
		return Summary{}, errs.New(errs.NotFound, "no server matches the selection").WithHint("list servers with GET /api/v1/inventory/servers")
	}
	if len(req.Selector.ServerIDs) > 0 && len(servers) < len(req.Selector.ServerIDs) {
		return Summary{}, errs.New(errs.NotFound, "%d of %d server ids do not exist", len(req.Selector.ServerIDs)-len(servers), len(req.Selector.ServerIDs))
	}
	v := s.guard.ClassifyTargets(ctx, req.Command, Targets(servers))
	sum := Summary{RiskLevel: int(v.Level), Verdict: &v}
	var mu sync.Mutex
	var intent *audit.Entry
	emit := func(srv *Server, r ExecResult) {
		r.ServerID, r.Server, r.RiskLevel, r.Secret = srv.ID, srv.Name, int(v.Level), v.Secret
		s.record(ctx, req, srv, v, r, intent)
		mu.Lock()
		defer mu.Unlock()
		sum.add(r)
		if onResult != nil {
			onResult(r)
		}
	}
	refused := ""
	switch {
	case v.Level >= guard.L3:
		refused = StatusBlocked
	case v.Level > req.AllowLevel:
		refused = StatusApprovalRequired
	}
	if refused != "" {
		for i := range servers {
			emit(&servers[i], ExecResult{Status: refused, Reason: v.Reason})
		}
		sum.DurationMS = time.Since(start).Milliseconds()
		return sum, nil
	}

	targets, bad := s.targets(ctx, servers)
	var runnable []int
	for i := range servers {
		if err, ok := bad[i]; ok {
			emit(&servers[i], ExecResult{Status: StatusError, Error: err.Error()})
			continue
		}
		runnable = append(runnable, i)
	}
	if len(runnable) == 0 {
		sum.DurationMS = time.Since(start).Milliseconds()
		return sum, nil
	}
	// No audit, no exec: who runs what where, at which level and on whose authority is on the audit chain
	// before anything runs. When that cannot be written, nothing runs.
	in, err := s.recordIntent(ctx, req, v, servers, runnable)
	if err != nil {
		s.log.ErrorContext(ctx, "audit command intent; not running", "error", err.Error())
		for _, i := range runnable {
			emit(&servers[i], ExecResult{Status: StatusError,
				Error: "not run: the audit log could not record the command first (no audit, no exec)"})
		}
		sum.DurationMS = time.Since(start).Milliseconds()
		return sum, nil
	}
	intent = in
	list := make([]sshexec.Target, len(runnable))
	for j, i := range runnable {
		list[j] = targets[i]
	}
	cmd := sshexec.Command{Cmd: req.Command, Timeout: req.Timeout, MaxOutputBytes: req.MaxOutputBytes}
	s.ssh.FanOut(ctx, list, cmd, req.Parallelism, func(j int, r sshexec.Result, err error) {
		emit(&servers[runnable[j]], s.result(ctx, r, err))
	})
	sum.DurationMS = time.Since(start).Milliseconds()
	return sum, nil
}

// result turns an executor outcome into an ExecResult.
func (s *Service) result(ctx context.Context, r sshexec.Result, err error) ExecResult {
	out := ExecResult{Stdout: r.Stdout, Stderr: r.Stderr, Truncated: r.Truncated, DurationMS: r.Duration.Milliseconds()}
	var he *sshexec.HopError
	switch {
	case err == nil && r.TimedOut:
		out.Status = StatusTimeout
	case err == nil:
		code := r.ExitCode
		out.ExitCode = &code
		out.Status = StatusOK
		if code != 0 {
			out.Status = StatusFailed
		}
	case r.TimedOut || errors.Is(err, sshexec.ErrTimeout):
		out.Status, out.Error = StatusTimeout, err.Error()
	case ctx.Err() != nil:
		out.Status, out.Error = StatusCancelled, ctx.Err().Error()
	case errors.As(err, &he):
		out.Status, out.Error, out.Stage = StatusUnreachable, he.Err.Error(), string(he.Stage)
		out.FailedHop = he.Name
	default:
		out.Status, out.Error = StatusUnreachable, err.Error()
	}
	return out
}

// targets builds the SSH target of each server: its jump chain, each hop's credentials unsealed. Servers
// that cannot be reached as configured are reported in bad by index.
func (s *Service) targets(ctx context.Context, servers []Server) ([]sshexec.Target, map[int]error) {
	bad := map[int]error{}
	all, err := s.serverMap(ctx)
	if err != nil {
		for i := range servers {
			bad[i] = err
		}
		return nil, bad
	}
	tid, _ := tenant.ID(ctx)
	creds := map[string]sshexec.Auth{} // unsealed once per credential per call
	auth := func(srv *Server) (sshexec.Auth, error) {
		if srv.CredentialID == "" {
			return sshexec.Auth{}, fmt.Errorf("server %s has no credential", srv.Name)
		}
		if a, ok := creds[srv.CredentialID]; ok {
			return a, nil
		}
		c, err := s.store.CredentialGet(ctx, srv.CredentialID)
		if err != nil {
			return sshexec.Auth{}, fmt.Errorf("credential of %s: %w", srv.Name, err)
		}
		sc, err := s.openCredential(ctx, c)
		if err != nil {
			return sshexec.Auth{}, err
		}
		var a sshexec.Auth
		switch c.Type {
		case "ssh_key":
			a = sshexec.Auth{PrivateKey: vault.Secret(sc.Secret), Passphrase: vault.Secret(sc.Passphrase)}
		case "ssh_password":
			a = sshexec.Auth{Password: vault.Secret(sc.Secret)}
		default:
			return sshexec.Auth{}, fmt.Errorf("credential %s of %s is a %s, not an SSH credential", c.Name, srv.Name, c.Type)
		}
		creds[srv.CredentialID] = a
		return a, nil
	}
	out := make([]sshexec.Target, len(servers))
	for i := range servers {
		chain, err := s.chain(all, servers[i].ID)
		if err != nil {
			bad[i] = err
			continue
		}
		hops := make([]sshexec.Hop, len(chain))
		for j, srv := range chain {
			a, err := auth(srv)
			if err != nil {
				bad[i] = err
				break
			}
			hops[j] = sshexec.Hop{ServerID: hopID(tid, srv.ID), Name: srv.Name, Host: srv.Host, Port: srv.Port, User: srv.SSHUser,
				Auth: a, HostKey: srv.HostKey, HostKeyPolicy: sshexec.HostKeyPolicy(srv.HostKeyPolicy)}
		}
		out[i] = sshexec.Target{Hops: hops}
	}
	return out, bad
}

// excerpt keeps the last n bytes of s on a UTF-8 boundary: the end of output is what explains a failure.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return "…" + s
}

// recordIntent writes the audit entry that must exist before the command runs on servers[runnable]: the
// actor (from ctx), the exact command, its level and reason, the servers, and the approval or rule that
// allows it (audit.AuthorityFrom, else the guard's own verdict for L0).
func (s *Service) recordIntent(ctx context.Context, req ExecRequest, v guard.Verdict, servers []Server, runnable []int) (*audit.Entry, error) {
	by := audit.AuthorityFrom(ctx)
	if by == "" {
		by = "guard: L0, runs without approval"
		if v.Level > guard.L0 {
			by = fmt.Sprintf("the caller's grant up to L%d", req.AllowLevel)
		}
	}
	names, ids := make([]string, len(runnable)), make([]string, len(runnable))
	for j, i := range runnable {
		names[j], ids[j] = servers[i].Name, servers[i].ID
	}
	return s.audit.Record(ctx, audit.Record{Action: "command.intent", ResourceType: "command", ResourceID: uuid.NewString(),
		Description: fmt.Sprintf("about to run L%d on %d server(s): %s", v.Level, len(runnable), clip(req.Command, 200)),
		Detail: map[string]any{"command": req.Command, "risk_level": int(v.Level), "reason": v.Reason, "allowed_by": by,
			"servers": names, "server_ids": ids, "session_id": req.SessionID}})
}

// record writes the outcome on one server to command_records and the audit log, naming the intent entry
// written before it ran (nil when it did not run). A failure to record is logged: the command already ran,
// and the caller still gets its result.
func (s *Service) record(ctx context.Context, req ExecRequest, srv *Server, v guard.Verdict, r ExecResult, intent *audit.Entry) {
	a := audit.ActorFrom(ctx)
	if v.Secret { // credential material is never stored (guard.Verdict.Secret)
		r.Stdout, r.Stderr = redacted(r.Stdout), redacted(r.Stderr)
	}
	rec := &CommandRecord{ID: uuid.NewString(), SessionID: req.SessionID, ServerID: srv.ID, ServerName: srv.Name,
		Command: req.Command, RiskLevel: int(v.Level), Status: r.Status, ExitCode: r.ExitCode,
		Stdout: excerpt(r.Stdout, s.cfg.ExcerptBytes), Stderr: excerpt(r.Stderr, s.cfg.ExcerptBytes), Truncated: r.Truncated,
		DurationMS: r.DurationMS, ActorType: a.Type, ActorID: a.ID, Reason: r.Reason, CreatedAt: s.now()}
	if r.Error != "" {
		rec.Reason = r.Error
	}
	// Recording must happen even if the client went away mid-run.
	rctx := context.WithoutCancel(ctx)
	if err := s.store.CommandRecordCreate(rctx, rec); err != nil {
		s.log.ErrorContext(ctx, "record command", "error", err.Error())
	}
	action := "command.executed"
	switch r.Status {
	case StatusBlocked:
		action = "command.blocked"
	case StatusApprovalRequired:
		action = "command.approval_required"
	}
	detail := map[string]any{"command": req.Command, "server": srv.Name, "risk_level": int(v.Level), "status": r.Status,
		"exit_code": r.ExitCode, "duration_ms": r.DurationMS, "stdout_excerpt": excerpt(r.Stdout, 512),
		"stderr_excerpt": excerpt(r.Stderr, 512), "command_record_id": rec.ID, "session_id": req.SessionID}
	if r.Reason != "" {
		detail["reason"] = r.Reason
	}
	if r.Error != "" {
		detail["error"] = r.Error
	}
	if intent != nil {
		detail["intent_audit_id"], detail["intent_seq"] = intent.ID, intent.Seq
	}
	if _, err := s.audit.Record(rctx, audit.Record{Action: action, ResourceType: "server", ResourceID: srv.ID,
		Description: fmt.Sprintf("%s on %s: %s", r.Status, srv.Name, clip(req.Command, 200)), Detail: detail}); err != nil {
		s.log.ErrorContext(ctx, "audit command", "error", err.Error())
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Check tests reachability of server id through its whole jump chain and reports each hop.
func (s *Service) Check(ctx context.Context, id string) ([]sshexec.HopResult, error) {
	srv, err := s.store.ServerGet(ctx, id)
	if err != nil {
		return nil, err
	}
	targets, bad := s.targets(ctx, []Server{*srv})
	if err, ok := bad[0]; ok {
		return nil, errs.New(errs.Invalid, "cannot check %s: %v", srv.Name, err)
	}
	res := s.ssh.Check(ctx, targets[0])
	for i := range res {
		if _, sid, err := splitHopID(res[i].ServerID); err == nil {
			res[i].ServerID = sid
		}
	}
	return res, nil
}
