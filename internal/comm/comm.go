// Package comm reaches humans and takes their answers: contacts and their channel addresses, every
// message in and out, escalation policies (severity → steps of delay, channels and audience), the durable
// escalation chain that runs while an unattended run waits for a human, and the answers that come back on
// any channel (SMS, phone keypad, Telegram buttons, signed links, the app).
//
// Providers live in subpackages (twilio, email, telegram, wecom, fcm), each behind Sender. The context
// itself imports no database or vendor package: Store is what it needs from storage.
package comm

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/it0/it0/internal/errs"
)

// Channels a message can travel on.
const (
	ChannelApp      = "app"      // in-app WebSocket push (/ws/comm)
	ChannelPush     = "push"     // mobile push (FCM)
	ChannelSMS      = "sms"      // Twilio SMS
	ChannelPhone    = "phone"    // Twilio voice call
	ChannelEmail    = "email"    // SMTP
	ChannelTelegram = "telegram" // Telegram Bot API
	ChannelWeCom    = "wecom"    // WeCom app message or group robot
	ChannelLink     = "link"     // inbound only: a signed answer link
	ChannelAPI      = "api"      // inbound only: the REST API
)

// Channels lists the outbound channels.
var Channels = []string{ChannelApp, ChannelPush, ChannelSMS, ChannelPhone, ChannelEmail, ChannelTelegram, ChannelWeCom}

// Audiences a contact belongs to.
const (
	AudiencePrimary  = "primary"  // on call: reached first
	AudienceBackup   = "backup"   // reached when the primary does not answer
	AudienceManagers = "managers" // the management group: reports and the last steps
)

// Audiences lists the audiences.
var Audiences = []string{AudiencePrimary, AudienceBackup, AudienceManagers}

// Severities of an escalation, mildest first.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
	SeverityFatal    = "fatal"
)

// Severities lists the severities.
var Severities = []string{SeverityInfo, SeverityWarning, SeverityCritical, SeverityFatal}

// Contact is a person IT0 may reach, with an address per channel. Only a contact linked to a user of the
// tenant (UserID) can answer an escalation: the answer is decided with that user's role.
type Contact struct {
	ID               string    `json:"id"`
	TenantID         string    `json:"tenant_id"`
	UserID           string    `json:"user_id,omitempty"`
	Name             string    `json:"name"`
	Audience         string    `json:"audience"`
	Phone            string    `json:"phone,omitempty"` // E.164
	Email            string    `json:"email,omitempty"`
	TelegramChatID   string    `json:"telegram_chat_id,omitempty"`
	WeComUserID      string    `json:"wecom_user_id,omitempty"`
	FCMToken         string    `json:"fcm_token,omitempty"`
	PreferredChannel string    `json:"preferred_channel,omitempty"`
	Locale           string    `json:"locale,omitempty"` // zh-CN or en; empty = the tenant's
	Enabled          bool      `json:"enabled"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	// Warning says what keeps the contact from doing its part (not stored): one with no user can be
	// reached but cannot answer.
	Warning string `json:"warning,omitempty"`
}

// warnUnlinked is the warning of a contact linked to no user.
const warnUnlinked = "this contact is linked to no user of the tenant: IT0 can reach it, but its answers to escalations are refused; set user_id (or give it the email of a user)"

// warn fills c.Warning.
func (c *Contact) warn() {
	c.Warning = ""
	if c.UserID == "" {
		c.Warning = warnUnlinked
	}
}

var (
	e164         = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	chatID       = regexp.MustCompile(`^-?[0-9]{1,20}$`)
)

// ValidPhone reports whether p is an E.164 number (+ country code and subscriber number, 8–15 digits).
func ValidPhone(p string) bool { return e164.MatchString(p) }

// Validate checks c, naming every bad field.
func (c *Contact) Validate() error {
	var list []error
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > 200 {
		list = append(list, errs.Invalidf("name", "name is required (at most 200 characters)"))
	}
	if !slices.Contains(Audiences, c.Audience) {
		list = append(list, errs.Invalidf("audience", "audience %q is not one of primary, backup, managers", c.Audience))
	}
	if c.Phone != "" && !ValidPhone(c.Phone) {
		list = append(list, errs.Invalidf("phone", "phone %q is not E.164: write it as +<country code><number>, e.g. +8613800001111", c.Phone))
	}
	if c.Email != "" && !emailPattern.MatchString(c.Email) {
		list = append(list, errs.Invalidf("email", "email %q is not an address", c.Email))
	}
	if c.TelegramChatID != "" && !chatID.MatchString(c.TelegramChatID) {
		list = append(list, errs.Invalidf("telegram_chat_id", "telegram_chat_id must be the numeric chat id (negative for groups)"))
	}
	if c.PreferredChannel != "" && !slices.Contains(Channels, c.PreferredChannel) {
		list = append(list, errs.Invalidf("preferred_channel", "preferred_channel %q is not one of %s", c.PreferredChannel, strings.Join(Channels, ", ")))
	}
	if c.Locale != "" && c.Locale != "zh-CN" && c.Locale != "en" {
		list = append(list, errs.Invalidf("locale", "locale must be zh-CN or en (or empty for the tenant's)"))
	}
	if c.Phone == "" && c.Email == "" && c.TelegramChatID == "" && c.WeComUserID == "" && c.FCMToken == "" && c.UserID == "" {
		list = append(list, errs.Invalidf("phone", "give at least one way to reach the contact: phone, email, telegram_chat_id, wecom_user_id, fcm_token or user_id"))
	}
	return errs.Join(list...)
}

// Address is c's address on channel, or "" when it has none there.
func (c *Contact) Address(channel string) string {
	switch channel {
	case ChannelSMS, ChannelPhone:
		return c.Phone
	case ChannelEmail:
		return c.Email
	case ChannelTelegram:
		return c.TelegramChatID
	case ChannelWeCom:
		return c.WeComUserID
	case ChannelPush:
		return c.FCMToken
	case ChannelApp:
		return c.UserID
	}
	return ""
}

// Message directions and statuses.
const (
	Outbound = "outbound"
	Inbound  = "inbound"

	StatusPending   = "pending"   // recorded, not sent yet (or waiting for a retry)
	StatusSent      = "sent"      // the provider accepted it
	StatusDelivered = "delivered" // the provider confirmed delivery
	StatusFailed    = "failed"    // the provider refused it, or retries ran out
	StatusSkipped   = "skipped"   // the channel is not configured, or the contact has no address there
	StatusReceived  = "received"  // an inbound answer that was accepted
	StatusRefused   = "refused"   // an inbound answer that was refused (unknown sender, replay, late, forbidden)
)

// Message is one message in or out, with its delivery status. IdempotencyKey is unique per tenant: a send
// retried under the same key never reaches the provider twice once it succeeded.
type Message struct {
	ID             string    `json:"id"`
	TenantID       string    `json:"tenant_id"`
	Direction      string    `json:"direction"`
	Channel        string    `json:"channel"`
	ContactID      string    `json:"contact_id,omitempty"`
	Address        string    `json:"address,omitempty"`
	EscalationID   string    `json:"escalation_id,omitempty"`
	Step           int       `json:"step"`
	Subject        string    `json:"subject,omitempty"`
	Body           string    `json:"body"`
	Status         string    `json:"status"`
	ProviderID     string    `json:"provider_id,omitempty"`
	Error          string    `json:"error,omitempty"`
	Attempts       int       `json:"attempts"`
	IdempotencyKey string    `json:"idempotency_key"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// MessageFilter selects messages; zero fields match everything.
type MessageFilter struct {
	EscalationID string
	ContactID    string
	Channel      string
	Direction    string
	Limit        int
}

// Step is one rung of an escalation policy: after Delay from the start, reach Audience on Channels.
type Step struct {
	DelaySeconds int      `json:"delay_seconds"`
	Channels     []string `json:"channels"`
	Audience     string   `json:"audience"`
	// Report sends the full report (the session's summary and the escalation's detail), for email to the
	// management group.
	Report bool `json:"report,omitempty"`
}

// Policy is a tenant's escalation ladder for one severity.
type Policy struct {
	Severity  string    `json:"severity"`
	Steps     []Step    `json:"steps"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks p, naming each bad step field.
func (p *Policy) Validate() error {
	var list []error
	if !slices.Contains(Severities, p.Severity) {
		list = append(list, errs.Invalidf("severity", "severity %q is not one of info, warning, critical, fatal", p.Severity))
	}
	if len(p.Steps) == 0 || len(p.Steps) > 20 {
		list = append(list, errs.Invalidf("steps", "a policy needs 1 to 20 steps"))
	}
	prev := -1
	for i, s := range p.Steps {
		f := fmt.Sprintf("steps[%d]", i)
		if s.DelaySeconds < 0 || s.DelaySeconds > 24*3600 {
			list = append(list, errs.Invalidf(f+".delay_seconds", "delay_seconds must be from 0 to 86400"))
		}
		if s.DelaySeconds < prev {
			list = append(list, errs.Invalidf(f+".delay_seconds", "steps must be in order of delay (%d comes after %d)", s.DelaySeconds, prev))
		}
		prev = s.DelaySeconds
		if len(s.Channels) == 0 {
			list = append(list, errs.Invalidf(f+".channels", "name at least one channel: %s", strings.Join(Channels, ", ")))
		}
		for _, c := range s.Channels {
			if !slices.Contains(Channels, c) {
				list = append(list, errs.Invalidf(f+".channels", "channel %q is not one of %s", c, strings.Join(Channels, ", ")))
			}
		}
		if !slices.Contains(Audiences, s.Audience) {
			list = append(list, errs.Invalidf(f+".audience", "audience %q is not one of primary, backup, managers", s.Audience))
		}
	}
	return errs.Join(list...)
}

// DefaultPolicy is the policy of severity for a tenant that has not set its own: info reaches the app;
// warning the app, SMS and IM; critical runs the full ladder (app push at once, phone call at
// 2 minutes, SMS and IM at 5, backup contacts at 10, the full report by email to the management group at
// 20); fatal reaches everyone on every channel at once.
func DefaultPolicy(severity string) Policy {
	app := []string{ChannelApp, ChannelPush}
	im := []string{ChannelSMS, ChannelTelegram, ChannelWeCom}
	all := []string{ChannelApp, ChannelPush, ChannelPhone, ChannelSMS, ChannelTelegram, ChannelWeCom, ChannelEmail}
	p := Policy{Severity: severity}
	switch severity {
	case SeverityInfo:
		p.Steps = []Step{{Channels: app, Audience: AudiencePrimary}}
	case SeverityWarning:
		p.Steps = []Step{{Channels: append(app, im...), Audience: AudiencePrimary}}
	case SeverityFatal:
		p.Steps = []Step{{Channels: all, Audience: AudiencePrimary}, {Channels: all, Audience: AudienceBackup},
			{Channels: all, Audience: AudienceManagers, Report: true}}
	default:
		p.Severity = SeverityCritical
		p.Steps = []Step{
			{Channels: app, Audience: AudiencePrimary},
			{DelaySeconds: 120, Channels: []string{ChannelPhone}, Audience: AudiencePrimary},
			{DelaySeconds: 300, Channels: im, Audience: AudiencePrimary},
			{DelaySeconds: 600, Channels: []string{ChannelApp, ChannelPush, ChannelPhone, ChannelSMS, ChannelTelegram, ChannelWeCom}, Audience: AudienceBackup},
			{DelaySeconds: 1200, Channels: []string{ChannelEmail}, Audience: AudienceManagers, Report: true},
		}
	}
	return p
}

// Escalation statuses.
const (
	EscalationActive   = "active"   // the chain runs
	EscalationAnswered = "answered" // a human answered through comm
	EscalationClosed   = "closed"   // the approval was decided elsewhere or expired: the chain stopped
)

// Escalation is the chain started for one approval of an unattended run. Its ID is the approval's.
type Escalation struct {
	ID              string     `json:"id"`
	TenantID        string     `json:"tenant_id"`
	SessionID       string     `json:"session_id"`
	Severity        string     `json:"severity"`
	Status          string     `json:"status"`
	Ref             string     `json:"ref"` // a short code people can quote in an SMS answer ("Y 482113")
	Summary         string     `json:"summary"`
	Report          string     `json:"report,omitempty"`
	Steps           []Step     `json:"steps"`
	VoiceSession    string     `json:"voice_session,omitempty"` // prepared for the voice channel
	StartedAt       time.Time  `json:"started_at"`
	ExpiresAt       time.Time  `json:"expires_at"`
	AnsweredAt      *time.Time `json:"answered_at,omitempty"`
	AnsweredBy      string     `json:"answered_by,omitempty"`
	AnsweredChannel string     `json:"answered_channel,omitempty"`
	Decision        string     `json:"decision,omitempty"`
}

// Notice is a message for a whole audience at once (ops reports, daily summaries).
type Notice struct {
	Audience string   // primary, backup or managers
	Channels []string // app, push, sms, phone, email, telegram, wecom
	Severity string
	Subject  string
	Body     string
	Key      string // idempotency key: a notice sent twice under the same key reaches nobody twice
}

// Store is what comm needs from storage; every method acts on the tenant in ctx.
type Store interface {
	ContactCreate(ctx context.Context, c *Contact) error
	ContactGet(ctx context.Context, id string) (*Contact, error) // errs.NotFound
	ContactList(ctx context.Context, audience string) ([]Contact, error)
	ContactUpdate(ctx context.Context, c *Contact) error // errs.NotFound
	ContactDelete(ctx context.Context, id string) error  // errs.NotFound
	// ContactFind returns the enabled contact whose address on channel is addr; errs.NotFound if none.
	ContactFind(ctx context.Context, channel, addr string) (*Contact, error)

	// MessageCreate stores m; errs.Conflict if its idempotency key is taken.
	MessageCreate(ctx context.Context, m *Message) error
	MessageByKey(ctx context.Context, key string) (*Message, error) // errs.NotFound
	MessageGet(ctx context.Context, id string) (*Message, error)    // errs.NotFound
	MessageUpdate(ctx context.Context, m *Message) error
	MessageList(ctx context.Context, f MessageFilter) ([]Message, error)

	PolicyList(ctx context.Context) ([]Policy, error)
	PolicyPut(ctx context.Context, p *Policy) error

	// EscalationCreate stores e; errs.Conflict if one exists for the approval already.
	EscalationCreate(ctx context.Context, e *Escalation) error
	EscalationGet(ctx context.Context, id string) (*Escalation, error) // errs.NotFound
	// EscalationByRef returns the active escalation with ref; errs.NotFound if none.
	EscalationByRef(ctx context.Context, ref string) (*Escalation, error)
	EscalationList(ctx context.Context, status string, limit int) ([]Escalation, error)
	// EscalationFinish moves e from active to e.Status with its answer; errs.Conflict if it is no longer
	// active (someone else finished it first).
	EscalationFinish(ctx context.Context, e *Escalation) error
}
