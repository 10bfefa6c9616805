package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"

	"github.com/it0/it0/internal/agent"
	"github.com/it0/it0/internal/ops/approval"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/email"
	"github.com/it0/it0/internal/comm/fcm"
	"github.com/it0/it0/internal/comm/telegram"
	"github.com/it0/it0/internal/comm/twilio"
	"github.com/it0/it0/internal/comm/wecom"
	"github.com/it0/it0/internal/ops"
	"github.com/it0/it0/internal/vault"
	"github.com/prometheus/client_golang/prometheus"
)

// Comm modules: the service that reaches people (contacts, channels, escalation chains) and takes their
// answers, and the deploy target that runs its work (escalation steps, retries, approval events).
const (
	CommService = "comm-service"
	Comm        = "comm"
)

// CommConfig configures the providers of the comm channels, all from IT0_* environment variables. A
// channel whose settings are missing reports itself unavailable and escalation chains skip it.
type CommConfig struct {
	TwilioAccountSID  string
	TwilioAuthToken   vault.Secret
	TwilioPhoneNumber string
	TwilioBaseURL     string

	SMTPHost     string
	SMTPPort     string // default 587 (465 with IT0_SMTP_TLS=tls)
	SMTPUsername string
	SMTPPassword vault.Secret
	SMTPFrom     string
	SMTPTLS      string // starttls (default), opportunistic, tls or none
	SMTPAuth     string // auto (default), plain, login, cram-md5, xoauth2 or none
	SMTPOAuth2   email.OAuth2Config

	TelegramBotToken      vault.Secret
	TelegramWebhookSecret vault.Secret
	TelegramBaseURL       string

	WeComWebhookKey vault.Secret
	WeComWebhookURL vault.Secret
	WeComCorpID     string
	WeComSecret     vault.Secret
	WeComAgentID    string
	WeComBaseURL    string
	// The app's callback ("API receive"): WeCom users' replies answer escalations.
	WeComCallbackToken  vault.Secret
	WeComEncodingAESKey vault.Secret

	FCMCredentialsFile string
	FCMBaseURL         string
	FCMTokenURL        string
}

func (c *CommConfig) load(getenv func(string) string) {
	*c = CommConfig{
		TwilioAccountSID: getenv("IT0_TWILIO_ACCOUNT_SID"), TwilioAuthToken: vault.Secret(getenv("IT0_TWILIO_AUTH_TOKEN")),
		TwilioPhoneNumber: getenv("IT0_TWILIO_PHONE_NUMBER"), TwilioBaseURL: getenv("IT0_TWILIO_BASE_URL"),
		SMTPHost: getenv("IT0_SMTP_HOST"), SMTPPort: getenv("IT0_SMTP_PORT"), SMTPUsername: getenv("IT0_SMTP_USERNAME"),
		SMTPPassword: vault.Secret(getenv("IT0_SMTP_PASSWORD")), SMTPFrom: getenv("IT0_SMTP_FROM"), SMTPTLS: getenv("IT0_SMTP_TLS"),
		SMTPAuth: getenv("IT0_SMTP_AUTH"),
		SMTPOAuth2: email.OAuth2Config{TokenURL: getenv("IT0_SMTP_OAUTH2_TOKEN_URL"), ClientID: getenv("IT0_SMTP_OAUTH2_CLIENT_ID"),
			ClientSecret: vault.Secret(getenv("IT0_SMTP_OAUTH2_CLIENT_SECRET")), RefreshToken: vault.Secret(getenv("IT0_SMTP_OAUTH2_REFRESH_TOKEN")),
			Scopes: strings.Fields(strings.ReplaceAll(getenv("IT0_SMTP_OAUTH2_SCOPES"), ",", " ")), CredentialsFile: getenv("IT0_SMTP_OAUTH2_CREDENTIALS_FILE"),
			TokenFile: getenv("IT0_SMTP_OAUTH2_TOKEN_FILE")},
		TelegramBotToken: vault.Secret(getenv("IT0_TELEGRAM_BOT_TOKEN")), TelegramWebhookSecret: vault.Secret(getenv("IT0_TELEGRAM_WEBHOOK_SECRET")),
		TelegramBaseURL: getenv("IT0_TELEGRAM_BASE_URL"),
		WeComWebhookKey: vault.Secret(getenv("IT0_WECOM_WEBHOOK_KEY")), WeComWebhookURL: vault.Secret(getenv("IT0_WECOM_WEBHOOK_URL")),
		WeComCorpID: getenv("IT0_WECOM_CORP_ID"), WeComSecret: vault.Secret(getenv("IT0_WECOM_SECRET")), WeComAgentID: getenv("IT0_WECOM_AGENT_ID"),
		WeComBaseURL:       getenv("IT0_WECOM_BASE_URL"),
		WeComCallbackToken: vault.Secret(getenv("IT0_WECOM_CALLBACK_TOKEN")), WeComEncodingAESKey: vault.Secret(getenv("IT0_WECOM_ENCODING_AES_KEY")),
		FCMCredentialsFile: getenv("IT0_FCM_CREDENTIALS_FILE"), FCMBaseURL: getenv("IT0_FCM_BASE_URL"), FCMTokenURL: getenv("IT0_FCM_TOKEN_URL"),
	}
}

func (c *CommConfig) validate() []error {
	var list []error
	if c.SMTPPort != "" {
		if p, err := strconv.Atoi(c.SMTPPort); err != nil || p < 1 || p > 65535 {
			list = append(list, fmt.Errorf("IT0_SMTP_PORT %q: want a port from 1 to 65535", c.SMTPPort))
		}
	}
	if err := email.CheckTLS(c.SMTPTLS); err != nil {
		list = append(list, err)
	}
	if err := email.CheckAuth(c.SMTPAuth); err != nil {
		list = append(list, err)
	}
	if err := c.SMTPOAuth2.Validate(); err != nil {
		list = append(list, err)
	}
	if strings.EqualFold(c.SMTPAuth, email.AuthXOAUTH2) && c.SMTPOAuth2.IsZero() {
		list = append(list, errors.New("IT0_SMTP_AUTH=xoauth2: set IT0_SMTP_OAUTH2_TOKEN_URL (with client id and refresh token or secret), IT0_SMTP_OAUTH2_CREDENTIALS_FILE or IT0_SMTP_OAUTH2_TOKEN_FILE"))
	}
	if !c.WeComCallbackToken.IsZero() || !c.WeComEncodingAESKey.IsZero() {
		if c.WeComCallbackToken.IsZero() || c.WeComEncodingAESKey.IsZero() || c.WeComCorpID == "" {
			list = append(list, errors.New("IT0_WECOM_CALLBACK_TOKEN, IT0_WECOM_ENCODING_AES_KEY and IT0_WECOM_CORP_ID go together (the app's API receive settings)"))
		} else if _, err := wecom.AESKey(c.WeComEncodingAESKey.Reveal()); err != nil {
			list = append(list, fmt.Errorf("IT0_WECOM_ENCODING_AES_KEY: %w", err))
		}
	}
	if c.WeComAgentID != "" {
		if _, err := strconv.Atoi(c.WeComAgentID); err != nil {
			list = append(list, fmt.Errorf("IT0_WECOM_AGENT_ID %q: want the application's numeric agent id", c.WeComAgentID))
		}
	}
	if c.TwilioPhoneNumber != "" && !comm.ValidPhone(c.TwilioPhoneNumber) {
		list = append(list, fmt.Errorf("IT0_TWILIO_PHONE_NUMBER %q: want E.164, e.g. +15005550006", c.TwilioPhoneNumber))
	}
	return list
}

// linkSecret derives the key of signed answer links from the JWT secret, so the two never share a key.
func linkSecret(jwtSecret string) []byte {
	m := hmac.New(sha256.New, []byte(jwtSecret))
	m.Write([]byte("it0 comm answer links"))
	return m.Sum(nil)
}

// initComm builds the channels and the comm service. Its escalation jobs and its subscription to the
// approval events are the comm target's work (initCommWork).
func (a *App) initComm(ctx context.Context) (func(context.Context) error, error) {
	c := a.cfg.Comm
	tw := twilio.New(twilio.Config{AccountSID: c.TwilioAccountSID, AuthToken: c.TwilioAuthToken, From: c.TwilioPhoneNumber, BaseURL: c.TwilioBaseURL,
		Media: voiceMedia{a}})
	tg := telegram.New(telegram.Config{Token: c.TelegramBotToken, WebhookSecret: c.TelegramWebhookSecret, BaseURL: c.TelegramBaseURL})
	port, _ := strconv.Atoi(c.SMTPPort)
	smtpUser := c.SMTPUsername
	if from, err := mail.ParseAddress(c.SMTPFrom); err == nil && smtpUser == "" {
		smtpUser = from.Address
	}
	smtpTokens, err := email.NewTokenSource(c.SMTPOAuth2, smtpUser)
	if err != nil {
		return nil, err
	}
	agentID, _ := strconv.Atoi(c.WeComAgentID)
	senders := []comm.Sender{tw.SMS(), tw.Voice(), tg,
		email.New(email.Config{Host: c.SMTPHost, Port: port, Username: c.SMTPUsername, Password: c.SMTPPassword, From: c.SMTPFrom, TLS: c.SMTPTLS,
			Auth: c.SMTPAuth, OAuth2: smtpTokens, TLSConfig: a.opts.MailTLS}),
		wecom.New(wecom.Config{CorpID: c.WeComCorpID, Secret: c.WeComSecret, AgentID: agentID, WebhookKey: c.WeComWebhookKey,
			WebhookURL: c.WeComWebhookURL, BaseURL: c.WeComBaseURL, Cards: !c.WeComCallbackToken.IsZero()}),
		fcm.New(fcm.Config{CredentialsFile: c.FCMCredentialsFile, BaseURL: c.FCMBaseURL, TokenURL: c.FCMTokenURL}),
	}
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "it0_comm_messages_total",
		Help: "Messages by channel, direction and final status (sent, failed, skipped, received, refused)."}, []string{"channel", "direction", "status"})
	if err := a.registry.Register(msgs); err != nil {
		return nil, fmt.Errorf("register it0_comm_messages_total: %w", err)
	}
	cs, err := comm.New(comm.Config{PublicURL: a.cfg.PublicURL, LinkSecret: linkSecret(a.cfg.JWTSecret), Schedule: a.schedule,
		CancelKey: a.Jobs.CancelKey, Twilio: tw, Telegram: tg, Logger: a.log, Now: a.opts.Now, Route: a.escalationRoute, Session: a.commSession,
		OnMessage: func(m *comm.Message) {
			msgs.WithLabelValues(m.Channel, m.Direction, m.Status).Inc()
			if m.EscalationID != "" && m.Direction == comm.Outbound {
				a.metrics.escalationSteps.WithLabelValues(m.Channel, m.Status).Inc()
			}
		}}, a.Store, a.Approvals, a.Auth, a.Audit, senders...)
	if err != nil {
		return nil, err
	}
	for _, ch := range cs.ChannelStatus() {
		if ch.Available {
			a.log.Info("comm channel ready", slog.String("channel", ch.Channel))
		} else {
			a.log.Info("comm channel unavailable", slog.String("channel", ch.Channel), slog.String("reason", ch.Reason))
		}
	}
	if a.cfg.PublicURL == "" {
		a.log.Warn("IT0_PUBLIC_URL is not set: messages carry no answer links and calls take no keypad answers")
	}
	a.Comm = cs
	return nil, nil
}

// commNotifier delivers the ops module's notices through comm.
type commNotifier struct{ c *comm.Service }

// Notify implements ops.Notifier.
func (n commNotifier) Notify(ctx context.Context, x ops.Notice) error {
	return n.c.Notify(ctx, comm.Notice(x))
}

// escalationRoute routes an unattended run's escalation by its standing order (ops is built after comm;
// comm's subscription starts once both exist).
func (a *App) escalationRoute(ctx context.Context, ap *approval.Approval) (comm.Route, error) {
	if a.Orders == nil {
		return comm.Route{}, nil
	}
	return a.Orders.EscalationRoute(ctx, ap)
}

// commSession describes an approval's session for an escalation report.
func (a *App) commSession(ctx context.Context, id string) (*comm.Session, error) {
	sess, err := a.Agent.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	return &comm.Session{ID: sess.ID, Title: sess.Title, Summary: sess.Summary}, nil
}

// voiceAgent is what voice needs of the agent and of the approvals, in one (voice.Agent).
type voiceAgent struct {
	*agent.Service
	approvals *approval.Service
}

// Approval implements voice.Agent.
func (v voiceAgent) Approval(ctx context.Context, id string) (*approval.Approval, error) {
	return v.approvals.Get(ctx, id)
}

// Approvals implements voice.Agent.
func (v voiceAgent) Approvals(ctx context.Context, sessionID, status string, limit int) ([]approval.Approval, error) {
	return v.approvals.List(ctx, sessionID, status, limit)
}

// Decide implements voice.Agent: a decision spoken on a call.
func (v voiceAgent) Decide(ctx context.Context, id string, approve bool, reason string) (*approval.Approval, error) {
	return v.approvals.Decide(ctx, id, approval.Decision{Approve: approve, Reason: reason, Via: comm.ChannelPhone})
}

// wecomCallback is WeCom's callback for the API, or nil when IT0_WECOM_CALLBACK_TOKEN is not set (the
// route then refuses). The settings were validated with the config.
func (a *App) wecomCallback() *wecom.Callback {
	c := a.cfg.Comm
	if c.WeComCallbackToken.IsZero() {
		return nil
	}
	cb, err := wecom.NewCallback(wecom.CallbackConfig{Token: c.WeComCallbackToken, EncodingAESKey: c.WeComEncodingAESKey, ReceiverID: c.WeComCorpID})
	if err != nil {
		a.log.Error("wecom callback not served", slog.String("error", err.Error()))
		return nil
	}
	return cb
}
