package comm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

// Approvals is what comm needs of the approval service (approval.Service): the approvals it escalates and
// the one way to decide them.
type Approvals interface {
	// Get returns approval id; errs.NotFound when there is none.
	Get(ctx context.Context, id string) (*approval.Approval, error)
	// Decide needs an auth principal in ctx; errs.Conflict when the approval is no longer pending.
	Decide(ctx context.Context, id string, d approval.Decision) (*approval.Approval, error)
}

// Session is what an escalation's report shows of the agent session that asked.
type Session struct {
	ID      string
	Title   string
	Summary string // what the run did so far
}

// Users finds tenants and the users who answer.
type Users interface {
	Tenant(ctx context.Context, id string) (*auth.Tenant, error)
	Tenants(ctx context.Context) ([]auth.Tenant, error)
	User(ctx context.Context, id string) (*auth.User, error) // of the tenant in ctx
	Users(ctx context.Context) ([]auth.User, error)          // of the tenant in ctx
}

// AuditLog records state changes, and lists them (to tell whether a record was written before a crash).
type AuditLog interface {
	Record(ctx context.Context, r audit.Record) (*audit.Entry, error)
	List(ctx context.Context, f audit.Filter) ([]audit.Entry, error)
}

// Job kinds comm registers with the job runner.
const (
	JobStep  = "escalation.step" // one step of an escalation chain
	JobRetry = "comm.retry"      // a send that failed transiently
)

// Config tunes the service.
type Config struct {
	// PublicURL is where providers and people reach IT0 (callback and answer links). Required for links
	// and the phone keypad; without it messages carry no links.
	PublicURL string
	// LinkSecret signs answer links (HMAC-SHA256). Required.
	LinkSecret []byte
	// Schedule enqueues durable work for the tenant in ctx; CancelKey cancels it. Required.
	Schedule  func(ctx context.Context, kind string, args any, at time.Time, uniqueKey string) error
	CancelKey func(ctx context.Context, tenantID, uniqueKey string) error
	// MaxAttempts bounds sends of one message (default 5); retries back off from RetryBase (default 5 s),
	// doubling, or wait as long as the provider's Retry-After says.
	MaxAttempts int
	RetryBase   time.Duration
	// Twilio validates X-Twilio-Signature on inbound webhooks; nil refuses them all.
	Twilio interface {
		ValidateSignature(url string, form map[string][]string, signature string) bool
	}
	// Telegram checks the webhook secret and answers button presses; nil refuses its webhook.
	Telegram interface {
		CheckSecret(token string) bool
		AnswerCallback(ctx context.Context, callbackID, text string) error
	}
	// Route, when set, says how an unattended run's escalation goes and what it tells people (the
	// standing order's escalation rules and policy); nil = the tenant's default policy and the request.
	Route func(ctx context.Context, a *approval.Approval) (Route, error)
	// Session, when set, describes the session an approval belongs to, for escalation reports; nil (or
	// an error) reports the session id only.
	Session func(ctx context.Context, id string) (*Session, error)
	// OnMessage, when set, is told each message that reached a final status (metrics). It must not block
	// or change m.
	OnMessage func(m *Message)
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service is the comm context: contacts, messages, policies, escalation chains and answers.
type Service struct {
	cfg       Config
	store     Store
	approvals Approvals
	users     Users
	audit     AuditLog
	hub       *Hub
	senders   map[string]Sender
	log       *slog.Logger

	tenantsMu  sync.Mutex
	tenantList []auth.Tenant // cached for inbound lookups (tenants)
	tenantsAt  time.Time
}

// New returns a Service sending through senders (one per channel; the in-app channel is built in).
func New(cfg Config, store Store, approvals Approvals, users Users, log AuditLog, senders ...Sender) (*Service, error) {
	if len(cfg.LinkSecret) < 16 {
		return nil, errors.New("comm: LinkSecret must be at least 16 bytes")
	}
	if cfg.Schedule == nil || cfg.CancelKey == nil {
		return nil, errors.New("comm: Schedule and CancelKey are required")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Now().UTC() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Service{cfg: cfg, store: store, approvals: approvals, users: users, audit: log, hub: NewHub(),
		senders: map[string]Sender{}, log: cfg.Logger.With(slog.String("component", "comm"))}
	s.senders[ChannelApp] = appSender{hub: s.hub}
	for _, snd := range senders {
		if snd != nil {
			s.senders[snd.Channel()] = snd
		}
	}
	return s, nil
}

// Hub is the in-app push hub that /ws/comm serves.
func (s *Service) Hub() *Hub { return s.hub }

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// ChannelInfo says whether a channel can send.
type ChannelInfo struct {
	Channel   string `json:"channel"`
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	Mode      string `json:"mode,omitempty"` // how the channel works when it is several ways (phone: conversation or keypad)
}

// ChannelStatus lists every outbound channel and whether it is configured.
func (s *Service) ChannelStatus() []ChannelInfo {
	var out []ChannelInfo
	for _, c := range Channels {
		ci := ChannelInfo{Channel: c, Available: true}
		if err := s.available(c); err != nil {
			ci.Available, ci.Reason = false, err.Error()
		}
		if m, ok := s.senders[c].(interface{ Mode() string }); ok {
			ci.Mode = m.Mode()
		}
		out = append(out, ci)
	}
	return out
}

func (s *Service) available(channel string) error {
	snd, ok := s.senders[channel]
	if !ok {
		return Unavailable(channel, "a provider")
	}
	return snd.Available()
}

// --- contacts ---

// CreateContact validates and stores c. Without an audience it is a primary contact; without a user it is
// linked to the active user with its email, if there is one, and otherwise carries a Warning.
func (s *Service) CreateContact(ctx context.Context, c *Contact) error {
	if c.Audience == "" {
		c.Audience = AudiencePrimary
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := s.checkUser(ctx, c.UserID); err != nil {
		return err
	}
	if err := s.linkUser(ctx, c); err != nil {
		return err
	}
	defer c.warn()
	now := s.now()
	c.ID, c.CreatedAt, c.UpdatedAt = uuid.NewString(), now, now
	if err := s.store.ContactCreate(ctx, c); err != nil {
		return err
	}
	return s.record(ctx, "contact.created", "contact", c.ID, "contact "+c.Name+" added ("+c.Audience+")", map[string]any{"audience": c.Audience})
}

// linkUser links a contact without a user to the tenant's active user with the same email.
func (s *Service) linkUser(ctx context.Context, c *Contact) error {
	if c.UserID != "" || c.Email == "" {
		return nil
	}
	users, err := s.users.Users(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Status == "active" && strings.EqualFold(u.Email, c.Email) {
			c.UserID = u.ID
			return nil
		}
	}
	return nil
}

func (s *Service) checkUser(ctx context.Context, userID string) error {
	if userID == "" {
		return nil
	}
	if _, err := s.users.User(ctx, userID); errs.Is(err, errs.NotFound) {
		return errs.Invalidf("user_id", "user_id %s is not a user of this tenant", userID)
	} else if err != nil {
		return err
	}
	return nil
}

// Contact returns contact id (with its Warning).
func (s *Service) Contact(ctx context.Context, id string) (*Contact, error) {
	c, err := s.store.ContactGet(ctx, id)
	if err == nil {
		c.warn()
	}
	return c, err
}

// Contacts lists contacts, optionally of one audience.
func (s *Service) Contacts(ctx context.Context, audience string) ([]Contact, error) {
	if audience != "" && !slices.Contains(Audiences, audience) {
		return nil, errs.Invalidf("audience", "audience %q is not one of primary, backup, managers", audience)
	}
	list, err := s.store.ContactList(ctx, audience)
	for i := range list {
		list[i].warn()
	}
	return list, err
}

// UpdateContact replaces contact c.ID with c (validated).
func (s *Service) UpdateContact(ctx context.Context, c *Contact) error {
	old, err := s.store.ContactGet(ctx, c.ID)
	if err != nil {
		return err
	}
	if c.Audience == "" {
		c.Audience = old.Audience
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := s.checkUser(ctx, c.UserID); err != nil {
		return err
	}
	if err := s.linkUser(ctx, c); err != nil {
		return err
	}
	defer c.warn()
	c.TenantID, c.CreatedAt, c.UpdatedAt = old.TenantID, old.CreatedAt, s.now()
	if err := s.store.ContactUpdate(ctx, c); err != nil {
		return err
	}
	return s.record(ctx, "contact.updated", "contact", c.ID, "contact "+c.Name+" changed", nil)
}

// DeleteContact removes contact id.
func (s *Service) DeleteContact(ctx context.Context, id string) error {
	c, err := s.store.ContactGet(ctx, id)
	if err != nil {
		return err
	}
	if err := s.store.ContactDelete(ctx, id); err != nil {
		return err
	}
	return s.record(ctx, "contact.deleted", "contact", id, "contact "+c.Name+" removed", nil)
}

// --- policies ---

// Policies returns the tenant's policy for every severity (the default where it set none).
func (s *Service) Policies(ctx context.Context) ([]Policy, error) {
	stored, err := s.store.PolicyList(ctx)
	if err != nil {
		return nil, err
	}
	var out []Policy
	for _, sev := range Severities {
		p := DefaultPolicy(sev)
		for _, st := range stored {
			if st.Severity == sev {
				p = st
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// Policy returns the tenant's policy for severity.
func (s *Service) Policy(ctx context.Context, severity string) (Policy, error) {
	if !slices.Contains(Severities, severity) {
		return Policy{}, errs.Invalidf("severity", "severity %q is not one of info, warning, critical, fatal", severity)
	}
	all, err := s.Policies(ctx)
	if err != nil {
		return Policy{}, err
	}
	return all[slices.Index(Severities, severity)], nil
}

// SetPolicy validates and stores p for its severity.
func (s *Service) SetPolicy(ctx context.Context, p *Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p.UpdatedAt = s.now()
	if err := s.store.PolicyPut(ctx, p); err != nil {
		return err
	}
	return s.record(ctx, "escalation_policy.updated", "escalation_policy", p.Severity, "escalation policy "+p.Severity+" changed",
		map[string]any{"steps": p.Steps})
}

// --- messages and escalations ---

// Messages lists recorded messages, newest first.
func (s *Service) Messages(ctx context.Context, f MessageFilter) ([]Message, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	return s.store.MessageList(ctx, f)
}

// Escalations lists escalations, optionally with one status, newest first.
func (s *Service) Escalations(ctx context.Context, status string, limit int) ([]Escalation, error) {
	if status != "" && status != EscalationActive && status != EscalationAnswered && status != EscalationClosed {
		return nil, errs.Invalidf("status", "status %q is not one of active, answered, closed", status)
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.store.EscalationList(ctx, status, limit)
}

// Escalation returns escalation id (the approval's id).
func (s *Service) Escalation(ctx context.Context, id string) (*Escalation, error) {
	return s.store.EscalationGet(ctx, id)
}

func (s *Service) record(ctx context.Context, action, typ, id, desc string, detail map[string]any) error {
	_, err := s.audit.Record(ctx, audit.Record{Action: action, ResourceType: typ, ResourceID: id, Description: desc, Detail: detail})
	return err
}

// --- notices ---

// Notify sends n at once to the tenant's contacts of n.Audience on n.Channels; each message is recorded,
// and one already sent under the same key is not sent again. Channels that are not configured are
// recorded as skipped.
func (s *Service) Notify(ctx context.Context, n Notice) error {
	var list []error
	if !slices.Contains(Audiences, n.Audience) {
		list = append(list, errs.Invalidf("audience", "audience %q is not one of primary, backup, managers", n.Audience))
	}
	for _, c := range n.Channels {
		if !slices.Contains(Channels, c) {
			list = append(list, errs.Invalidf("channels", "channel %q is not one of %s", c, strings.Join(Channels, ", ")))
		}
	}
	if strings.TrimSpace(n.Body) == "" {
		list = append(list, errs.Invalidf("body", "body is required"))
	}
	if n.Key == "" {
		list = append(list, errs.Invalidf("key", "key (the idempotency key) is required"))
	}
	if err := errs.Join(list...); err != nil {
		return err
	}
	contacts, err := s.store.ContactList(ctx, n.Audience)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(contacts))
	for i := range contacts {
		c := &contacts[i]
		if !c.Enabled {
			continue
		}
		wg.Go(func() { errc <- s.notifyContact(ctx, n, c) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		list = append(list, err)
	}
	return errors.Join(list...)
}

// fallbackChannels are tried in order, for a notice that reached a contact on none of its channels.
var fallbackChannels = []string{ChannelSMS, ChannelTelegram, ChannelWeCom, ChannelEmail}

// notifyContact sends notice n to c on each of its channels at once. When none of them reaches c (no app
// client connected, push not configured…), it falls back to the first other channel the tenant can send
// on and c has an address for, and notes the fallback on the messages that failed: a report never reaches
// nobody silently.
func (s *Service) notifyContact(ctx context.Context, n Notice, c *Contact) error {
	var wg sync.WaitGroup
	msgs := make([]*Message, len(n.Channels))
	errc := make(chan error, len(n.Channels))
	for i, ch := range n.Channels {
		m := &Message{Direction: Outbound, Channel: ch, ContactID: c.ID, Address: c.Address(ch), Subject: n.Subject, Body: n.Body,
			IdempotencyKey: "notice:" + n.Key + ":" + c.ID + ":" + ch}
		msgs[i] = m
		wg.Go(func() { errc <- s.deliver(ctx, m, s.noticeMessage(c, m)) })
	}
	wg.Wait()
	close(errc)
	var list []error
	for err := range errc {
		list = append(list, err)
	}
	if err := errors.Join(list...); err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Status != StatusFailed && m.Status != StatusSkipped {
			return nil // reached (or a retry is on its way)
		}
	}
	for _, ch := range fallbackChannels {
		if slices.Contains(n.Channels, ch) || c.Address(ch) == "" || s.available(ch) != nil {
			continue
		}
		fb := &Message{Direction: Outbound, Channel: ch, ContactID: c.ID, Address: c.Address(ch), Subject: n.Subject, Body: n.Body,
			IdempotencyKey: "notice:" + n.Key + ":" + c.ID + ":" + ch}
		if err := s.deliver(ctx, fb, s.noticeMessage(c, fb)); err != nil {
			return err
		}
		for _, m := range msgs {
			if m.ID == "" {
				continue
			}
			m.Error += "; fell back to " + ch + " (message " + fb.ID + ")"
			if err := s.save(ctx, m); err != nil {
				return err
			}
		}
		return s.record(ctx, "comm.notice_fallback", "message", fb.ID, fmt.Sprintf("notice to %s reached no one on %s: sent by %s",
			c.Name, strings.Join(n.Channels, ", "), ch), map[string]any{"contact_id": c.ID, "channels": n.Channels, "fallback": ch, "key": n.Key})
	}
	s.log.WarnContext(ctx, "notice reached nobody", slog.String("contact_id", c.ID), slog.String("key", n.Key))
	return s.record(ctx, "comm.notice_undelivered", "contact", c.ID, fmt.Sprintf("notice to %s reached no one on %s, and no other channel is available",
		c.Name, strings.Join(n.Channels, ", ")), map[string]any{"channels": n.Channels, "key": n.Key})
}

func (s *Service) noticeMessage(c *Contact, m *Message) OutboundMessage {
	return OutboundMessage{To: c.Address(m.Channel), Subject: m.Subject, Text: m.Body, Speech: m.Body, Language: speechLanguage(c.Locale),
		Data: map[string]string{"kind": "notice"}, Key: m.IdempotencyKey}
}

// --- delivery ---

// deliver records m (pending) under its idempotency key and sends it once. A message already recorded under
// the key is left alone unless it is still pending (a send interrupted before its outcome was recorded).
// Only storage errors are returned: a provider's refusal is recorded on the message.
func (s *Service) deliver(ctx context.Context, m *Message, out OutboundMessage) error {
	now := s.now()
	m.ID, m.Status, m.CreatedAt, m.UpdatedAt = uuid.NewString(), StatusPending, now, now
	if err := s.store.MessageCreate(ctx, m); errs.Is(err, errs.Conflict) {
		old, err := s.store.MessageByKey(ctx, m.IdempotencyKey)
		if err != nil {
			return err
		}
		if old.Status != StatusPending {
			return nil // sent (or settled) before: never twice
		}
		*m = *old
	} else if err != nil {
		return err
	}
	return s.attempt(ctx, m, out)
}

// attempt sends a pending message once and records the outcome, scheduling a retry on a temporary failure.
func (s *Service) attempt(ctx context.Context, m *Message, out OutboundMessage) error {
	tid, _ := tenant.ID(ctx)
	out.TenantID, out.Key = tid, m.IdempotencyKey
	if err := s.available(m.Channel); err != nil {
		m.Status, m.Error = StatusSkipped, err.Error()
		return s.save(ctx, m)
	}
	if out.To == "" {
		m.Status, m.Error = StatusSkipped, "the contact has no "+m.Channel+" address"
		return s.save(ctx, m)
	}
	m.Attempts++
	id, err := s.senders[m.Channel].Send(ctx, out)
	if err == nil {
		m.Status, m.ProviderID, m.Error = StatusSent, id, ""
		return s.save(ctx, m)
	}
	m.Error = err.Error()
	if errors.Is(err, ErrAddressGone) {
		s.forgetAddress(ctx, m, out.To)
	}
	temp, after := IsTemporary(err)
	if !temp || m.Attempts >= s.cfg.MaxAttempts {
		m.Status = StatusFailed
		s.log.WarnContext(ctx, "message failed", slog.String("channel", m.Channel), slog.String("message_id", m.ID),
			slog.Int("attempts", m.Attempts), slog.String("error", m.Error))
		return s.save(ctx, m)
	}
	wait := s.cfg.RetryBase << (m.Attempts - 1)
	if after > wait {
		wait = after
	}
	if err := s.save(ctx, m); err != nil {
		return err
	}
	return s.cfg.Schedule(ctx, JobRetry, retryArgs{MessageID: m.ID}, s.now().Add(wait), fmt.Sprintf("comm-retry:%s:%d", m.ID, m.Attempts))
}

func (s *Service) save(ctx context.Context, m *Message) error {
	m.UpdatedAt = s.now()
	if err := s.store.MessageUpdate(ctx, m); err != nil {
		return err
	}
	s.counted(m)
	return nil
}

// counted reports a message that reached a final status to Config.OnMessage.
func (s *Service) counted(m *Message) {
	if s.cfg.OnMessage != nil && m.Status != StatusPending {
		s.cfg.OnMessage(m)
	}
}

type retryArgs struct {
	MessageID string `json:"message_id"`
}

// Retry is the JobRetry handler: it sends a message again if it is still pending.
func (s *Service) Retry(ctx context.Context, messageID string) error {
	m, err := s.store.MessageGet(ctx, messageID)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil || m.Status != StatusPending {
		return err
	}
	c, err := s.contact(ctx, m.ContactID)
	if errs.Is(err, errs.NotFound) {
		m.Status, m.Error = StatusFailed, "the contact was removed"
		return s.save(ctx, m)
	} else if err != nil {
		return err
	}
	out := s.noticeMessage(c, m)
	if m.EscalationID != "" {
		e, err := s.store.EscalationGet(ctx, m.EscalationID)
		if err != nil {
			return err
		}
		if e.Status != EscalationActive {
			m.Status, m.Error = StatusFailed, "the escalation was answered before the retry"
			return s.save(ctx, m)
		}
		loc, err := s.locale(ctx, c)
		if err != nil {
			return err
		}
		out = s.render(e, m.Step, c, m.Channel, loc)
	}
	return s.attempt(ctx, m, out)
}

// locale is the language to address c in: theirs, else the tenant's.
func (s *Service) locale(ctx context.Context, c *Contact) (string, error) {
	if c != nil && c.Locale != "" {
		return c.Locale, nil
	}
	tid, _ := tenant.ID(ctx)
	t, err := s.users.Tenant(ctx, tid)
	if err != nil {
		return "", err
	}
	return Locale(t.Locale), nil
}

// forgetAddress removes addr, where m went, from m's contact after the provider said it no longer exists
// (only push tokens, today). A failure is logged: the message's own failure is what matters.
func (s *Service) forgetAddress(ctx context.Context, m *Message, addr string) {
	if m.ContactID == "" || m.Channel != ChannelPush {
		return
	}
	c, err := s.store.ContactGet(ctx, m.ContactID)
	if err == nil && c.FCMToken == addr {
		c.FCMToken, c.UpdatedAt = "", s.now()
		err = s.store.ContactUpdate(ctx, c)
	}
	if err != nil {
		s.log.WarnContext(ctx, "forget an unregistered push token", slog.String("contact_id", m.ContactID), slog.String("error", err.Error()))
		return
	}
	s.log.InfoContext(ctx, "push token unregistered; removed from the contact", slog.String("contact_id", m.ContactID))
}
