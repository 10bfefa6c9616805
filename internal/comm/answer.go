package comm

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/ops/approval"
	"github.com/it0/it0/internal/tenant"
)

// Decisions an answer carries.
const (
	DecisionApprove  = "approve"
	DecisionReject   = "reject"
	DecisionInstruct = "instruct" // approve, with free text the agent receives as the human's instruction
)

// Sentinel refusals of answers; each is also recorded as a refused inbound message.
var (
	ErrUnknownSender = errs.New(errs.Forbidden, "the sender is not a contact of any tenant")
	ErrReplayed      = errs.New(errs.Conflict, "this answer was already used")
	ErrLate          = errs.New(errs.Conflict, "the escalation was already answered or closed")
	ErrBadLink       = errs.New(errs.Forbidden, "the answer link is invalid or expired")
	ErrNoEscalation  = errs.New(errs.NotFound, "there is no open escalation for this contact")
)

// Reply is a parsed free-text answer (SMS, Telegram text).
type Reply struct {
	Decision string
	Ref      string // the escalation's ref when quoted ("Y 482113")
	Text     string // the instruction or the reason
}

// ParseReply reads an answer: Y/YES/OK/1/是/同意/批准 approves, N/NO/2/否/拒绝 rejects, each optionally
// followed by the escalation's 6-digit ref and free text; any other non-empty text is an instruction
// (approve, with the text passed to the agent). It returns false for an empty reply.
func ParseReply(body string) (Reply, bool) {
	body = strings.TrimSpace(body)
	if body == "" {
		return Reply{}, false
	}
	first, rest, _ := strings.Cut(body, " ")
	word := strings.ToUpper(strings.TrimRightFunc(first, unicode.IsPunct))
	r := Reply{Decision: DecisionInstruct, Text: body}
	switch word {
	case "Y", "YES", "OK", "1", "是", "同意", "批准":
		r.Decision, r.Text = DecisionApprove, strings.TrimSpace(rest)
	case "N", "NO", "2", "否", "拒绝":
		r.Decision, r.Text = DecisionReject, strings.TrimSpace(rest)
	default:
		return r, true
	}
	if ref, more, _ := strings.Cut(r.Text, " "); len(ref) == 6 && strings.Trim(ref, "0123456789") == "" {
		r.Ref, r.Text = ref, strings.TrimSpace(more)
	}
	if r.Decision == DecisionApprove && r.Text != "" {
		r.Decision = DecisionInstruct
	}
	return r, true
}

// Answer is one human answer to an escalation (or to any pending approval).
type Answer struct {
	ApprovalID string
	Contact    *Contact // who answered, when reached as a contact
	UserID     string   // who answered, when known as a user (the app, the API, a user's link)
	Channel    string
	Address    string
	Decision   string
	Text       string
	// Key identifies the inbound message (a link's nonce, Twilio's MessageSid, Telegram's update id): the
	// same key twice is a replay.
	Key string

	esc *Escalation // the escalation, when the caller has read it already
}

// Answered is the outcome of an accepted answer.
type Answered struct {
	ApprovalID string `json:"approval_id"`
	Decision   string `json:"decision"`
	By         string `json:"by"`
	Channel    string `json:"channel"`
}

// Answer applies ans: the first valid answer decides the approval (as the responder, with their role),
// finishes the escalation, cancels the rest of its chain and is audited with the responder and channel.
// Unknown responders, replays, late answers and responders without the permission are refused and recorded.
func (s *Service) Answer(ctx context.Context, ans Answer) (*Answered, error) {
	m := &Message{ID: uuid.NewString(), Direction: Inbound, Channel: ans.Channel, Address: ans.Address, EscalationID: ans.ApprovalID,
		Body: clip(strings.TrimSpace(ans.Decision+" "+ans.Text), 2000), Status: StatusReceived, IdempotencyKey: ans.Key}
	if ans.Contact != nil {
		m.ContactID = ans.Contact.ID
	}
	if m.IdempotencyKey == "" {
		m.IdempotencyKey = "in:" + m.ID
	}
	m.CreatedAt, m.UpdatedAt = s.now(), s.now()
	if err := s.store.MessageCreate(ctx, m); errs.Is(err, errs.Conflict) {
		// Recorded as a new message: the first one keeps its key.
		m.ID, m.IdempotencyKey, m.CreatedAt = uuid.NewString(), ans.Key+":replay:"+m.ID, time.Time{}
		return nil, s.refuse(ctx, m, ErrReplayed)
	} else if err != nil {
		return nil, err
	}
	userID := ans.UserID
	if userID == "" && ans.Contact != nil {
		userID = ans.Contact.UserID
	}
	if userID == "" {
		return nil, s.refuse(ctx, m, errs.New(errs.Forbidden, "the contact is not linked to a user of the tenant, so it cannot decide").
			WithHint("set the contact's user_id"))
	}
	u, err := s.users.User(ctx, userID)
	if errs.Is(err, errs.NotFound) || (err == nil && u.Status != "active") {
		return nil, s.refuse(ctx, m, errs.New(errs.Forbidden, "the responder is not an active user of the tenant"))
	} else if err != nil {
		return nil, err
	}
	tid, _ := tenant.ID(ctx)
	p := auth.Principal{UserID: u.ID, TenantID: tid, Role: u.Role, Email: u.Email}
	dctx := audit.WithActor(auth.WithPrincipal(ctx, p), audit.Actor{Type: audit.ActorUser, ID: u.ID, IP: audit.ActorFrom(ctx).IP})
	approve := ans.Decision != DecisionReject
	a, err := s.approvals.Decide(dctx, ans.ApprovalID, approval.Decision{Approve: approve, Reason: ans.Text, Via: ans.Channel})
	if err != nil && (a == nil || a.Status == approval.Pending) {
		switch {
		case errs.Is(err, errs.Conflict):
			return nil, s.refuse(ctx, m, ErrLate)
		case errs.Is(err, errs.Forbidden), errs.Is(err, errs.NotFound):
			return nil, s.refuse(ctx, m, err)
		}
		return nil, err
	} else if err != nil {
		// Decided, but not audited: the answer stands.
		s.log.ErrorContext(ctx, "answer decided but not recorded", slog.String("approval_id", ans.ApprovalID), slog.String("error", err.Error()))
	}
	// The escalation is finished here, as answered by this responder on this channel (the approval.decided
	// event leaves decisions made through comm to this step). A crash in between leaves the chain to its
	// next step, which finds the approval decided and closes it.
	s.finishEscalation(context.WithoutCancel(ctx), a, answering{by: u.ID, channel: ans.Channel, decision: ans.Decision, esc: ans.esc})
	s.counted(m)
	if err := s.record(dctx, "escalation.answered", "escalation", ans.ApprovalID,
		fmt.Sprintf("%s by %s via %s", ans.Decision, u.Email, ans.Channel),
		map[string]any{"decision": ans.Decision, "channel": ans.Channel, "responder": u.ID, "text": clip(ans.Text, 500)}); err != nil {
		return nil, err
	}
	return &Answered{ApprovalID: ans.ApprovalID, Decision: ans.Decision, By: u.ID, Channel: ans.Channel}, nil
}

// refuse records m as refused with why and returns why.
func (s *Service) refuse(ctx context.Context, m *Message, why error) error {
	m.Status, m.Error = StatusRefused, why.Error()
	m.UpdatedAt = s.now()
	var err error
	if m.CreatedAt.IsZero() {
		m.CreatedAt = m.UpdatedAt
		err = s.store.MessageCreate(ctx, m)
	} else {
		err = s.store.MessageUpdate(ctx, m)
	}
	if err != nil {
		return err
	}
	s.counted(m)
	if rerr := s.record(ctx, "escalation.answer_refused", "escalation", m.EscalationID, "answer refused via "+m.Channel+": "+why.Error(),
		map[string]any{"channel": m.Channel, "contact_id": m.ContactID, "reason": why.Error()}); rerr != nil {
		return rerr
	}
	return why
}

// --- inbound channels ---

// senderTenants finds the tenants where addr is an enabled contact on channel: the contact index spans
// tenants because a provider's webhook names only the sender.
func (s *Service) senderTenants(ctx context.Context, channel, addr string) ([]tenantContact, error) {
	if addr == "" {
		return nil, nil
	}
	ts, err := s.tenants(ctx)
	if err != nil {
		return nil, err
	}
	var out []tenantContact
	for _, t := range ts {
		if t.Status != auth.TenantActive {
			continue
		}
		tctx := tenant.WithID(ctx, t.ID)
		c, err := s.store.ContactFind(tctx, channel, addr)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, tenantContact{ctx: tctx, contact: c, locale: cmpOr(c.Locale, Locale(t.Locale))})
	}
	return out, nil
}

// tenantsTTL is how long the tenant list behind inbound lookups is reused: a new tenant's contacts can
// answer after at most this long.
const tenantsTTL = 5 * time.Second

// tenants lists the tenants, cached for tenantsTTL (every inbound message needs the list).
func (s *Service) tenants(ctx context.Context) ([]auth.Tenant, error) {
	s.tenantsMu.Lock()
	defer s.tenantsMu.Unlock()
	if s.tenantList != nil && time.Since(s.tenantsAt) < tenantsTTL {
		return s.tenantList, nil
	}
	ts, err := s.users.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	s.tenantList, s.tenantsAt = ts, time.Now()
	return ts, nil
}

type tenantContact struct {
	ctx     context.Context
	contact *Contact
	locale  string
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// openFor finds the escalation a free-text answer of c means: the one with ref, else the newest active
// escalation that reached c.
func (s *Service) openFor(ctx context.Context, c *Contact, ref string) (*Escalation, error) {
	if ref != "" {
		return s.store.EscalationByRef(ctx, ref)
	}
	msgs, err := s.store.MessageList(ctx, MessageFilter{ContactID: c.ID, Direction: Outbound, Limit: 200})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if m.EscalationID == "" || seen[m.EscalationID] {
			continue
		}
		seen[m.EscalationID] = true
		e, err := s.store.EscalationGet(ctx, m.EscalationID)
		if err == nil && e.Status == EscalationActive {
			return e, nil
		}
	}
	return nil, ErrNoEscalation
}

// InboundText answers with free text from addr on channel (an SMS, a Telegram message): the sender must be
// a contact; the reply names the escalation by ref or means the newest one that reached them. key
// identifies the provider's message (replays are refused). It returns the text to answer the sender with.
func (s *Service) InboundText(ctx context.Context, channel, addr, body, key string) (string, error) {
	tcs, err := s.senderTenants(ctx, channel, addr)
	if err != nil {
		return "", err
	}
	if len(tcs) == 0 {
		return T("en", "unknown"), s.unknownSender(ctx, channel, addr, body)
	}
	if res, err, replay := s.replayed(tcs, channel, addr, key); replay {
		return res, err
	}
	r, ok := ParseReply(body)
	for _, tc := range tcs {
		if !ok {
			continue
		}
		e, err := s.openFor(tc.ctx, tc.contact, r.Ref)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		res, err := s.Answer(tc.ctx, Answer{ApprovalID: e.ID, Contact: tc.contact, Channel: channel, Address: addr, Decision: r.Decision, Text: r.Text,
			Key: key, esc: e})
		return s.replyText(tc.locale, res, err)
	}
	// Nothing to answer: record the message in the sender's (first) tenant.
	tc := tcs[0]
	m := &Message{ID: uuid.NewString(), Direction: Inbound, Channel: channel, ContactID: tc.contact.ID, Address: addr, Body: clip(body, 2000),
		IdempotencyKey: cmpOr(key, "in:"+uuid.NewString())}
	return T(tc.locale, "no_pending"), s.refuse(tc.ctx, m, ErrNoEscalation)
}

// replayed refuses a provider's message that was already taken (a webhook the provider retried, a
// captured request sent again): it reports whether key was used before, and the reply.
func (s *Service) replayed(tcs []tenantContact, channel, addr, key string) (string, error, bool) {
	if key == "" {
		return "", nil, false
	}
	for _, tc := range tcs {
		old, err := s.store.MessageByKey(tc.ctx, key)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return "", err, true
		}
		m := &Message{ID: uuid.NewString(), Direction: Inbound, Channel: channel, ContactID: tc.contact.ID, Address: addr,
			EscalationID: old.EscalationID, Body: old.Body, IdempotencyKey: key + ":replay:" + uuid.NewString()}
		return T(tc.locale, "late"), s.refuse(tc.ctx, m, ErrReplayed), true
	}
	return "", nil, false
}

// unknownSender records an answer from an address that is no tenant's contact. It belongs to no tenant,
// so it goes to the platform's audit log.
func (s *Service) unknownSender(ctx context.Context, channel, addr, body string) error {
	s.log.WarnContext(ctx, "answer from an unknown sender refused", slog.String("channel", channel), slog.String("sender", mask(addr)))
	if err := s.record(tenant.WithID(ctx, tenant.Platform), "escalation.answer_refused", "message", "",
		"answer from unknown "+channel+" sender "+mask(addr)+" refused",
		map[string]any{"channel": channel, "sender": addr, "body": clip(body, 200), "reason": ErrUnknownSender.Error()}); err != nil {
		return err
	}
	return ErrUnknownSender
}

func (s *Service) replyText(locale string, res *Answered, err error) (string, error) {
	switch {
	case err == nil:
		return T(locale, "answered", T(locale, "decision_"+res.Decision)), nil
	case errors.Is(err, ErrLate), errors.Is(err, ErrReplayed):
		return T(locale, "late"), err
	case errs.Is(err, errs.Forbidden):
		return T(locale, "forbidden", err.Error()), err
	}
	return "", err
}

// InboundButton answers a button press (Telegram callback data "y:<approval id>" or "n:<approval id>") from
// addr on channel; key is the provider's callback id. It returns the text to show the presser.
func (s *Service) InboundButton(ctx context.Context, channel, addr, data, key string) (string, error) {
	dec, id, ok := strings.Cut(data, ":")
	if !ok || (dec != "y" && dec != "n") || id == "" {
		return "", errs.Invalidf("data", "unknown button data")
	}
	decision := DecisionApprove
	if dec == "n" {
		decision = DecisionReject
	}
	tcs, err := s.senderTenants(ctx, channel, addr)
	if err != nil {
		return "", err
	}
	if res, err, replay := s.replayed(tcs, channel, addr, key); replay {
		return res, err
	}
	for _, tc := range tcs {
		e, err := s.store.EscalationGet(tc.ctx, id)
		if errs.Is(err, errs.NotFound) {
			continue
		} else if err != nil {
			return "", err
		}
		res, err := s.Answer(tc.ctx, Answer{ApprovalID: id, Contact: tc.contact, Channel: channel, Address: addr, Decision: decision, Key: key, esc: e})
		return s.replyText(tc.locale, res, err)
	}
	return T("en", "unknown"), s.unknownSender(ctx, channel, addr, data)
}

// InboundDigits answers a phone keypad press (1 approve, 2 reject) on the call of escalation id made to
// addr (the contact's number).
func (s *Service) InboundDigits(ctx context.Context, id, addr, digits, key string) (string, error) {
	switch digits {
	case "1":
		return s.InboundButton(ctx, ChannelPhone, addr, "y:"+id, key)
	case "2":
		return s.InboundButton(ctx, ChannelPhone, addr, "n:"+id, key)
	}
	return T("en", "speech_none"), nil
}

// ValidTwilio reports whether signature is Twilio's over url and form; false when Twilio is not configured.
func (s *Service) ValidTwilio(url string, form map[string][]string, signature string) bool {
	return s.cfg.Twilio != nil && signature != "" && s.cfg.Twilio.ValidateSignature(url, form, signature)
}

// ValidTelegram reports whether token is the Telegram webhook's secret; false when not configured.
func (s *Service) ValidTelegram(token string) bool {
	return s.cfg.Telegram != nil && s.cfg.Telegram.CheckSecret(token)
}

// AnswerTelegramCallback stops the button's spinner with text (best effort).
func (s *Service) AnswerTelegramCallback(ctx context.Context, callbackID, text string) {
	if s.cfg.Telegram == nil || callbackID == "" {
		return
	}
	if err := s.cfg.Telegram.AnswerCallback(ctx, callbackID, clip(text, 200)); err != nil {
		s.log.WarnContext(ctx, "answerCallbackQuery failed", slog.String("error", err.Error()))
	}
}

// PublicURL is the configured public base URL ("" when unset).
func (s *Service) PublicURL() string { return s.cfg.PublicURL }

func mask(addr string) string {
	if len(addr) <= 4 {
		return "****"
	}
	return strings.Repeat("*", len(addr)-4) + addr[len(addr)-4:]
}

// --- signed links ---

// linkClaims are what an answer link carries, signed.
type linkClaims struct {
	Tenant   string `json:"t"`
	Approval string `json:"a"`
	Contact  string `json:"c,omitempty"`
	User     string `json:"u,omitempty"`
	Decision string `json:"d"` // y or n
	Exp      int64  `json:"e"` // unix seconds
	Nonce    string `json:"n"`
}

func (s *Service) sign(payload []byte) []byte {
	m := hmac.New(sha256.New, s.cfg.LinkSecret)
	m.Write([]byte("it0-comm-link\x00"))
	m.Write(payload)
	return m.Sum(nil)
}

// linkURL is the signed, single-use answer link for c ("" without a public URL).
func (s *Service) linkURL(c linkClaims) string {
	if s.cfg.PublicURL == "" {
		return ""
	}
	return s.cfg.PublicURL + "/api/v1/comm/answer/" + s.LinkToken(c.Tenant, c.Approval, c.Contact, c.User, c.Decision, c.Exp)
}

// LinkToken signs an answer link's token: decision y or n on approval, by contactID or userID, valid until
// exp (unix seconds).
func (s *Service) LinkToken(tenantID, approvalID, contactID, userID, decision string, exp int64) string {
	n := make([]byte, 12)
	rand.Read(n)
	b, _ := json.Marshal(linkClaims{Tenant: tenantID, Approval: approvalID, Contact: contactID, User: userID, Decision: decision, Exp: exp,
		Nonce: hex.EncodeToString(n)})
	enc := base64.RawURLEncoding
	return enc.EncodeToString(b) + "." + enc.EncodeToString(s.sign(b))
}

// ParseLink verifies token's signature and expiry and returns its claims; ErrBadLink otherwise.
func (s *Service) parseLink(token string) (*linkClaims, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1024 {
		return nil, ErrBadLink
	}
	enc := base64.RawURLEncoding.Strict() // one spelling per token: no variants of a used link
	payload, err1 := enc.DecodeString(p)
	got, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(got, s.sign(payload)) {
		return nil, ErrBadLink
	}
	var c linkClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.Tenant == "" || c.Approval == "" || c.Nonce == "" || (c.Decision != "y" && c.Decision != "n") {
		return nil, ErrBadLink
	}
	if s.now().Unix() >= c.Exp {
		return nil, ErrBadLink
	}
	return &c, nil
}

// LinkInfo is what an answer link's confirmation page shows.
type LinkInfo struct {
	Decision string
	Summary  string
	Locale   string
}

// PeekLink checks token and describes what answering it will do, without using it: ErrBadLink for a
// forged or expired link, ErrReplayed for a used one, ErrLate when the approval was decided.
func (s *Service) PeekLink(ctx context.Context, token string) (*LinkInfo, error) {
	c, err := s.parseLink(token)
	if err != nil {
		return nil, err
	}
	ctx = tenant.WithID(ctx, c.Tenant)
	a, err := s.approvals.Get(ctx, c.Approval)
	if err != nil {
		return nil, ErrBadLink
	}
	if _, err := s.store.MessageByKey(ctx, "link:"+c.Nonce); err == nil {
		return nil, ErrReplayed
	} else if !errs.Is(err, errs.NotFound) {
		return nil, err
	}
	if a.Status != approval.Pending {
		return nil, ErrLate
	}
	loc, err := s.locale(ctx, nil)
	if err != nil {
		return nil, err
	}
	dec := DecisionApprove
	if c.Decision == "n" {
		dec = DecisionReject
	}
	return &LinkInfo{Decision: dec, Summary: a.Command, Locale: loc}, nil
}

// AnswerLink uses a signed link: once, before it expires, by the contact or user it was made for. text is
// an optional instruction or reason.
func (s *Service) AnswerLink(ctx context.Context, token, text string) (*Answered, error) {
	c, err := s.parseLink(token)
	if err != nil {
		return nil, err
	}
	ctx = tenant.WithID(ctx, c.Tenant)
	ans := Answer{ApprovalID: c.Approval, UserID: c.User, Channel: ChannelLink, Decision: DecisionApprove, Text: strings.TrimSpace(text), Key: "link:" + c.Nonce}
	if c.Decision == "n" {
		ans.Decision = DecisionReject
	} else if ans.Text != "" {
		ans.Decision = DecisionInstruct
	}
	if c.Contact != "" {
		ct, err := s.store.ContactGet(ctx, c.Contact)
		if err != nil {
			return nil, ErrBadLink
		}
		ans.Contact = ct
	}
	return s.Answer(ctx, ans)
}
