package comm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

// stepArgs are a JobStep's arguments.
type stepArgs struct {
	ApprovalID string `json:"approval_id"`
	Step       int    `json:"step"`
}

// stepKey is the unique job key of step i of escalation id: enqueueing it again while it waits is a no-op.
func stepKey(id string, i int) string { return fmt.Sprintf("esc:%s:%d", id, i) }

// OnApprovalEvent is comm's subscription to approval events (consumer group "comm"). A new approval of an
// unattended run starts an escalation chain; an interactive one is pushed to the session's user in the app.
// A decided approval finishes its escalation (as answered through the approvals API, or closed by its
// timeout) and cancels the rest of its chain. It never blocks on a provider (every step is a durable job)
// and is idempotent: the escalation and each message are keyed by the approval.
func (s *Service) OnApprovalEvent(ctx context.Context, e approval.Event) error {
	a, err := s.approvals.Get(ctx, e.ApprovalID)
	if errs.Is(err, errs.NotFound) {
		return nil // the tenant or the approval is gone
	}
	if err != nil {
		return err
	}
	switch e.Type {
	case approval.EventRequested:
		if a.Status != approval.Pending {
			return nil // auto-approved, or decided before comm saw it: nobody to ask
		}
		if a.Unattended() {
			_, err = s.Escalate(ctx, a)
		} else {
			err = s.pushApproval(ctx, a)
		}
		if err != nil {
			return fmt.Errorf("escalate approval %s: %w", a.ID, err)
		}
	case approval.EventDecided:
		if a.DecidedVia != "" && a.DecidedVia != approval.ViaAPI {
			return nil // answered through comm: Answer finishes the escalation with who and how
		}
		if err := s.finishEscalation(ctx, a, answering{}); err != nil {
			return fmt.Errorf("finish escalation %s: %w", a.ID, err)
		}
	}
	return nil
}

// answering says who answered an escalation through comm, on which channel, and how.
type answering struct {
	by, channel, decision string
	esc                   *Escalation // when the caller read it already
}

// finishEscalation finishes the escalation of decided approval a, if it is still active: as answered by
// ans (a comm answer), as answered through the approvals API (a person decided there), or closed (its
// timeout); then cancels the rest of its chain.
func (s *Service) finishEscalation(ctx context.Context, a *approval.Approval, ans answering) error {
	e, err := ans.esc, error(nil)
	if e == nil || e.ID != a.ID {
		e, err = s.store.EscalationGet(ctx, a.ID)
	}
	if errs.Is(err, errs.NotFound) || (err == nil && e.Status != EscalationActive) {
		return nil
	}
	if err != nil {
		return err
	}
	now := s.now()
	e.Status, e.Decision, e.AnsweredAt = EscalationClosed, a.Status, &now
	switch {
	case ans.by != "":
		e.Status, e.AnsweredBy, e.AnsweredChannel, e.Decision = EscalationAnswered, ans.by, ans.channel, ans.decision
	case !strings.HasPrefix(a.DecidedBy, "system:"):
		// A person decided through the approvals API.
		e.Status, e.AnsweredBy, e.AnsweredChannel = EscalationAnswered, a.DecidedBy, ChannelAPI
	}
	if err := s.store.EscalationFinish(ctx, e); errs.Is(err, errs.Conflict) {
		return nil
	} else if err != nil {
		return err
	}
	s.cancelSteps(ctx, e, -1)
	return nil
}

// Severity is an approval's severity: the report_escalation tool's "severity" when given, else critical.
func Severity(a *approval.Approval) string {
	var in struct {
		Severity string `json:"severity"`
	}
	if len(a.ToolInput) > 0 && json.Unmarshal(a.ToolInput, &in) == nil && slices.Contains(Severities, in.Severity) {
		return in.Severity
	}
	return SeverityCritical
}

// Escalate starts the chain for approval a of unattended session sess: it records the escalation and
// enqueues one durable job per step of the tenant's policy for the approval's severity, each at its delay.
// Calling it again for the same approval does nothing.
func (s *Service) Escalate(ctx context.Context, a *approval.Approval) (*Escalation, error) {
	route, err := s.route(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("route the escalation: %w", err)
	}
	severity := cmpOr(route.Severity, Severity(a))
	p, err := s.Policy(ctx, cmpOr(route.Policy, severity))
	if err != nil {
		return nil, err
	}
	now := s.now()
	ref, err := s.freeRef(ctx)
	if err != nil {
		return nil, err
	}
	e := &Escalation{ID: a.ID, SessionID: a.SessionID, Severity: severity, Status: EscalationActive, Ref: ref, Summary: route.summary(a),
		Report: report(s.session(ctx, a.SessionID), a, route), Steps: route.steps(p), StartedAt: now, ExpiresAt: a.ExpiresAt}
	for _, st := range p.Steps {
		if slices.Contains(st.Channels, ChannelPhone) {
			// Placeholder for the voice issue: the call's TwiML names this session.
			e.VoiceSession = "vs_" + a.ID
		}
	}
	started := true
	if err := s.store.EscalationCreate(ctx, e); errs.Is(err, errs.Conflict) {
		// Started before (the event handed out again): queue its steps again in case the first attempt
		// stopped before queueing them all. The steps' unique keys and the messages' idempotency keys
		// make this send nothing twice.
		if e, err = s.store.EscalationGet(ctx, a.ID); err != nil || e.Status != EscalationActive {
			return e, err
		}
		started = false
	} else if err != nil {
		return nil, err
	}
	for i, st := range e.Steps {
		at := e.StartedAt.Add(time.Duration(st.DelaySeconds) * time.Second)
		if err := s.cfg.Schedule(ctx, JobStep, stepArgs{ApprovalID: e.ID, Step: i}, at, stepKey(e.ID, i)); err != nil {
			return nil, fmt.Errorf("schedule escalation step %d: %w", i, err)
		}
	}
	// One more run a minute after the approval's deadline (its timeout has been applied by then) closes
	// the chain if nobody answered through comm.
	if err := s.cfg.Schedule(ctx, JobStep, stepArgs{ApprovalID: e.ID, Step: len(e.Steps)}, e.ExpiresAt.Add(time.Minute), stepKey(e.ID, len(e.Steps))); err != nil {
		return nil, fmt.Errorf("schedule escalation close: %w", err)
	}
	if !started {
		// The first attempt may have died (its process killed) between creating the escalation and
		// recording its start, and its event was handed out again: record the start unless it is there.
		list, err := s.audit.List(ctx, audit.Filter{ActionType: "escalation.started", ResourceType: "escalation", ResourceID: e.ID, Limit: 1})
		if err != nil || len(list) > 0 {
			return e, err
		}
	}
	return e, s.record(ctx, "escalation.started", "escalation", e.ID, fmt.Sprintf("%s escalation started: %s", severity, clip(a.Command, 200)),
		map[string]any{"session_id": a.SessionID, "severity": severity, "policy": p.Severity, "steps": len(e.Steps), "rule": route.Rule,
			"rule_channels": route.Channels, "order": route.Order})
}

// report is the full text of an escalation, for email and the app.
func report(sess *Session, a *approval.Approval, r Route) string {
	var b strings.Builder
	for _, l := range [][2]string{{"Standing order", strings.TrimSpace(r.Order + " " + r.OrderName)}, {"Server", r.Server},
		{"Found", r.Finding}, {"Proposed", r.Proposal}, {"Why a human", r.Why}, {"Escalation rule", r.Rule}} {
		if l[1] != "" {
			fmt.Fprintf(&b, "%s: %s\n", l[0], l[1])
		}
	}
	fmt.Fprintf(&b, "Session: %s (%s)\n", sess.ID, sess.Title)
	if a.OriginID != "" {
		fmt.Fprintf(&b, "Standing order run: %s\n", a.OriginID)
	}
	fmt.Fprintf(&b, "Request (L%d, %s): %s\n", a.RiskLevel, a.Tool, a.Command)
	if a.Reason != "" {
		fmt.Fprintf(&b, "Reason: %s\n", a.Reason)
	}
	if len(a.ToolInput) > 0 {
		fmt.Fprintf(&b, "Detail: %s\n", a.ToolInput)
	}
	if sess.Summary != "" {
		fmt.Fprintf(&b, "Run so far: %s\n", sess.Summary)
	}
	fmt.Fprintf(&b, "Open until: %s\n", a.ExpiresAt.Format(time.RFC3339))
	return b.String()
}

// freeRef picks a ref no active escalation of the tenant uses, so "Y <ref>" names one chain.
func (s *Service) freeRef(ctx context.Context) (string, error) {
	for {
		ref := newRef()
		if _, err := s.store.EscalationByRef(ctx, ref); errs.Is(err, errs.NotFound) {
			return ref, nil
		} else if err != nil {
			return "", err
		}
	}
}

func newRef() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(900000))
	return fmt.Sprint(100000 + n.Int64())
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// RunStep is the JobStep handler: if the approval still waits for a human, it reaches the step's audience
// on the step's channels. Each message has an idempotency key of the escalation, step, contact and channel,
// so a step that runs again (a retry, a restart) sends nothing twice.
func (s *Service) RunStep(ctx context.Context, id string, step int) error {
	e, err := s.store.EscalationGet(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil || e.Status != EscalationActive || step < 0 || step > len(e.Steps) {
		return err
	}
	a, err := s.approvals.Get(ctx, id)
	if errs.Is(err, errs.NotFound) || (err == nil && a.Status != approval.Pending) {
		// Decided elsewhere (the API, a timeout) or gone: the chain has nothing left to do.
		e.Status = EscalationClosed
		if err == nil {
			e.Decision = a.Status
		}
		if ferr := s.store.EscalationFinish(ctx, e); ferr != nil && !errs.Is(ferr, errs.Conflict) {
			return ferr
		}
		s.cancelSteps(ctx, e, -1)
		return nil
	}
	if err != nil || step == len(e.Steps) {
		return err // the closing run: the approval is still pending (its timeout job has not run yet)
	}
	st := e.Steps[step]
	contacts, err := s.audience(ctx, st.Audience)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(contacts)*len(st.Channels)+1)
	sent := 0
	for i := range contacts {
		c := &contacts[i]
		if !c.Enabled {
			continue
		}
		loc, err := s.locale(ctx, c)
		if err != nil {
			return err
		}
		for _, ch := range st.Channels {
			out := s.render(e, step, c, ch, loc)
			m := &Message{Direction: Outbound, Channel: ch, ContactID: c.ID, Address: c.Address(ch), EscalationID: e.ID, Step: step,
				Subject: out.Subject, Body: out.Text, IdempotencyKey: fmt.Sprintf("esc:%s:%d:%s:%s", e.ID, step, c.ID, ch)}
			sent++
			wg.Go(func() { errc <- s.deliver(ctx, m, out) })
		}
	}
	wg.Wait()
	close(errc)
	var list []error
	for err := range errc {
		if err != nil {
			list = append(list, err)
		}
	}
	if len(list) > 0 {
		return list[0]
	}
	if sent == 0 {
		s.log.WarnContext(ctx, "escalation step reached nobody", slog.String("escalation_id", e.ID), slog.Int("step", step),
			slog.String("audience", st.Audience))
	}
	return nil
}

// implicitPrefix marks the id of a contact made up from a user (audience fallback).
const implicitPrefix = "user:"

// audience lists the enabled contacts of audience. A tenant with no primary contact at all still reaches
// someone: its admins stand in for them, in the app and by email (a fresh install has users, no contacts).
func (s *Service) audience(ctx context.Context, audience string) ([]Contact, error) {
	list, err := s.store.ContactList(ctx, audience)
	if err != nil || len(list) > 0 || audience != AudiencePrimary {
		return list, err
	}
	users, err := s.users.Users(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if u.Role == auth.RoleAdmin && u.Status == "active" {
			list = append(list, implicitContact(&u))
		}
	}
	return list, nil
}

func implicitContact(u *auth.User) Contact {
	return Contact{ID: implicitPrefix + u.ID, TenantID: u.TenantID, UserID: u.ID, Name: cmpOr(u.Name, u.Email), Audience: AudiencePrimary,
		Email: u.Email, Locale: u.Locale, Enabled: true}
}

// claims are the signed link claims of c's answer to e: as the contact, or as the user it stands for.
func (c *Contact) claims(e *Escalation, decision string) linkClaims {
	l := linkClaims{Tenant: e.TenantID, Approval: e.ID, Contact: c.ID, Decision: decision, Exp: e.ExpiresAt.Unix()}
	if strings.HasPrefix(c.ID, implicitPrefix) {
		l.Contact, l.User = "", c.UserID
	}
	return l
}

// contact returns contact id, or the user an implicit contact stands for.
func (s *Service) contact(ctx context.Context, id string) (*Contact, error) {
	if uid, ok := strings.CutPrefix(id, implicitPrefix); ok {
		u, err := s.users.User(ctx, uid)
		if err != nil {
			return nil, err
		}
		c := implicitContact(u)
		return &c, nil
	}
	return s.store.ContactGet(ctx, id)
}

// render builds what contact c receives on channel for step of e, in locale.
func (s *Service) render(e *Escalation, step int, c *Contact, channel, locale string) OutboundMessage {
	sev := e.Severity
	out := OutboundMessage{To: c.Address(channel), Language: speechLanguage(locale),
		Subject: T(locale, "subject", strings.ToUpper(sev), clip(e.Summary, 80)),
		Text:    T(locale, "body", sev, clip(e.Summary, 600), e.Ref, e.Ref) + "\n" + T(locale, "expires", expiryText(locale, e.ExpiresAt)),
		Data:    map[string]string{"kind": "escalation", "approval_id": e.ID, "ref": e.Ref, "severity": sev}}
	switch channel {
	case ChannelSMS:
		out.Text = fitSMS(locale, "sms", sev, e.Summary, e.Ref, e.ExpiresAt)
	case ChannelTelegram, ChannelWeCom:
		out.Text = T(locale, "im", sev, clip(e.Summary, 1500)) + "\nRef " + e.Ref
	case ChannelPhone:
		out.Speech = T(locale, "speech", sev, clip(e.Summary, 300))
		if s.cfg.PublicURL != "" {
			out.GatherURL = s.cfg.PublicURL + "/api/v1/twilio/voice?escalation=" + e.ID
		}
		if e.VoiceSession != "" {
			out.Data["voice_session"] = e.VoiceSession
		}
	}
	out.Actions = []Action{
		{Label: T(locale, "approve"), Data: "y:" + e.ID, URL: s.linkURL(c.claims(e, "y"))},
		{Label: T(locale, "reject"), Data: "n:" + e.ID, URL: s.linkURL(c.claims(e, "n"))},
	}
	if (step < len(e.Steps) && e.Steps[step].Report) || channel == ChannelEmail || channel == ChannelApp {
		// The full report goes where there is room for it: by email and in the app.
		out.Text += "\n\n" + T(locale, "report_title") + ":\n" + e.Report
	}
	if channel == ChannelEmail {
		out.HTML = emailHTML(out, locale)
	}
	return out
}

func emailHTML(out OutboundMessage, locale string) string {
	var b strings.Builder
	b.WriteString("<!doctype html><html><body style=\"font-family:sans-serif\">")
	fmt.Fprintf(&b, "<h2>%s</h2><pre style=\"white-space:pre-wrap\">%s</pre><p>", html.EscapeString(out.Subject), html.EscapeString(out.Text))
	for _, a := range out.Actions {
		if a.URL != "" {
			fmt.Fprintf(&b, "<a href=\"%s\" style=\"margin-right:1em\">%s</a>", html.EscapeString(a.URL), html.EscapeString(a.Label))
		}
	}
	b.WriteString("</p></body></html>")
	return b.String()
}

// cancelSteps cancels the chain's waiting steps after step (all of them with -1). Steps already due have
// run (or are running and will find the chain finished): only later ones are cancelled. The closing run
// is left to find the chain finished: one job table write less on the answer's path.
func (s *Service) cancelSteps(ctx context.Context, e *Escalation, after int) {
	now := s.now()
	for i := after + 1; i < len(e.Steps); i++ {
		if !e.StartedAt.Add(time.Duration(e.Steps[i].DelaySeconds) * time.Second).After(now) {
			continue
		}
		if err := s.cfg.CancelKey(ctx, e.TenantID, stepKey(e.ID, i)); err != nil {
			// The step would find the escalation finished and do nothing anyway.
			s.log.WarnContext(ctx, "cancel escalation step", slog.String("escalation_id", e.ID), slog.Int("step", i), slog.String("error", err.Error()))
		}
	}
}

// pushApproval tells an interactive session's user in the app that an approval waits, with signed links.
func (s *Service) pushApproval(ctx context.Context, a *approval.Approval) error {
	if a.UserID == "" {
		return nil
	}
	loc, err := s.locale(ctx, nil)
	if err != nil {
		return err
	}
	exp := a.ExpiresAt.Unix()
	tid, _ := tenant.ID(ctx)
	out := OutboundMessage{To: a.UserID, Subject: T(loc, "approval_subject", a.RiskLevel, clip(a.Command, 80)),
		Text: T(loc, "approval_text", a.RiskLevel, a.Command, a.Reason, expiryText(loc, a.ExpiresAt)),
		Data: map[string]string{"kind": "approval", "approval_id": a.ID, "session_id": a.SessionID},
		Actions: []Action{
			{Label: T(loc, "approve"), URL: s.linkURL(linkClaims{Tenant: tid, Approval: a.ID, User: a.UserID, Decision: "y", Exp: exp})},
			{Label: T(loc, "reject"), URL: s.linkURL(linkClaims{Tenant: tid, Approval: a.ID, User: a.UserID, Decision: "n", Exp: exp})}}}
	m := &Message{Direction: Outbound, Channel: ChannelApp, Address: a.UserID, Subject: out.Subject, Body: out.Text,
		IdempotencyKey: "approval:" + a.ID}
	return s.deliver(ctx, m, out)
}

// session describes session id for an escalation report (the id only when Config.Session cannot say more).
func (s *Service) session(ctx context.Context, id string) *Session {
	if s.cfg.Session != nil {
		if sess, err := s.cfg.Session(ctx, id); err == nil && sess != nil {
			return sess
		}
	}
	return &Session{ID: id}
}
