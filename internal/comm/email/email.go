// Package email is comm's SMTP adapter, built on github.com/wneessen/go-mail: implicit TLS (port 465) or a
// STARTTLS policy (mandatory, opportunistic or none); AUTH PLAIN, LOGIN, CRAM-MD5 or XOAUTH2 (Gmail and
// Google Workspace, Microsoft 365 / Exchange Online); and multipart/alternative messages with a text and an
// HTML part.
package email

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
	"golang.org/x/oauth2"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/vault"
)

// TLS modes (IT0_SMTP_TLS).
const (
	TLSStartTLS      = "starttls"      // plain connect, then STARTTLS, required (port 587)
	TLSOpportunistic = "opportunistic" // STARTTLS when the server offers it, else plain text
	TLSImplicit      = "tls"           // TLS from the first byte (port 465)
	TLSNone          = "none"          // no TLS: a relay on a trusted network only
)

// TLSModes are the values IT0_SMTP_TLS takes.
var TLSModes = []string{TLSStartTLS, TLSOpportunistic, TLSImplicit, TLSNone}

// AUTH mechanisms (IT0_SMTP_AUTH).
const (
	AuthAuto    = "auto"     // XOAUTH2 when a token source is set, else the first of PLAIN, LOGIN, CRAM-MD5 the server offers
	AuthPlain   = "plain"    // RFC 4616
	AuthLogin   = "login"    // Microsoft's LOGIN (Office 365, Exchange)
	AuthCramMD5 = "cram-md5" // RFC 2195: the password never crosses the wire
	AuthXOAUTH2 = "xoauth2"  // an OAuth 2.0 bearer token (Gmail, Microsoft 365)
	AuthNone    = "none"     // no AUTH (a relay that trusts the network)
)

// AuthModes are the values IT0_SMTP_AUTH takes.
var AuthModes = []string{AuthAuto, AuthPlain, AuthLogin, AuthCramMD5, AuthXOAUTH2, AuthNone}

// Errors a send wraps, for callers and tests that branch on the cause.
var (
	// ErrAuth: the server refused the credentials or the mechanism.
	ErrAuth = errors.New("smtp authentication failed")
	// ErrTLS: the TLS handshake or the certificate check failed.
	ErrTLS = errors.New("smtp tls failed")
	// ErrToken: no XOAUTH2 access token could be obtained.
	ErrToken = errors.New("smtp oauth2 token")
)

// Config configures the SMTP relay. Empty Host or From leave the channel unavailable.
type Config struct {
	Host     string
	Port     int // default 587 (465 with TLSImplicit, 25 with TLSNone)
	Username string
	Password vault.Secret
	From     string // "IT0 <it0@example.com>"
	TLS      string // starttls (default), opportunistic, tls or none
	Auth     string // auto (default), plain, login, cram-md5, xoauth2 or none
	// OAuth2 supplies XOAUTH2 access tokens (see NewTokenSource); required with Auth xoauth2, and auto then
	// picks XOAUTH2. The user is Username, or From's address when Username is empty.
	OAuth2 oauth2.TokenSource
	// TLSConfig overrides the TLS client settings (tests trust their own CA); ServerName defaults to Host.
	TLSConfig *tls.Config
	Timeout   time.Duration // per message; default 30 s
	Now       func() time.Time
}

// Sender sends email.
type Sender struct{ cfg Config }

// New returns a sender for cfg.
func New(cfg Config) *Sender {
	cfg.TLS = strings.ToLower(cfg.TLS)
	cfg.Auth = strings.ToLower(cfg.Auth)
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Auth == "" {
		cfg.Auth = AuthAuto
	}
	if cfg.Port == 0 {
		switch cfg.TLS {
		case TLSImplicit:
			cfg.Port = 465
		case TLSNone:
			cfg.Port = 25
		default:
			cfg.Port = 587
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sender{cfg: cfg}
}

// Channel implements comm.Sender.
func (s *Sender) Channel() string { return comm.ChannelEmail }

// Available implements comm.Sender.
func (s *Sender) Available() error {
	var missing []string
	if s.cfg.Host == "" {
		missing = append(missing, "IT0_SMTP_HOST")
	}
	if s.cfg.From == "" {
		missing = append(missing, "IT0_SMTP_FROM")
	}
	switch s.cfg.Auth {
	case AuthPlain, AuthLogin, AuthCramMD5:
		if s.cfg.Username == "" {
			missing = append(missing, "IT0_SMTP_USERNAME")
		}
		if s.cfg.Password.IsZero() {
			missing = append(missing, "IT0_SMTP_PASSWORD")
		}
	case AuthXOAUTH2:
		if s.cfg.OAuth2 == nil {
			missing = append(missing, "an OAuth2 token source (IT0_SMTP_OAUTH2_*)")
		}
	}
	if len(missing) > 0 {
		return comm.Unavailable(comm.ChannelEmail, missing...)
	}
	return errors.Join(CheckTLS(s.cfg.TLS), CheckAuth(s.cfg.Auth))
}

// CheckTLS validates an IT0_SMTP_TLS value ("" is the default, starttls).
func CheckTLS(mode string) error {
	if mode == "" || contains(TLSModes, strings.ToLower(mode)) {
		return nil
	}
	return fmt.Errorf("IT0_SMTP_TLS %q: want one of %s", mode, strings.Join(TLSModes, ", "))
}

// CheckAuth validates an IT0_SMTP_AUTH value ("" is the default, auto).
func CheckAuth(mode string) error {
	if mode == "" || contains(AuthModes, strings.ToLower(mode)) {
		return nil
	}
	return fmt.Errorf("IT0_SMTP_AUTH %q: want one of %s", mode, strings.Join(AuthModes, ", "))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Send implements comm.Sender: one message to m.To. The id returned is the Message-ID.
func (s *Sender) Send(ctx context.Context, m comm.OutboundMessage) (string, error) {
	if err := s.Available(); err != nil {
		return "", err
	}
	from, err := mail.ParseAddress(s.cfg.From)
	if err != nil {
		return "", fmt.Errorf("IT0_SMTP_FROM %q: %w", s.cfg.From, err)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return "", fmt.Errorf("recipient %q: %w", m.To, err)
	}
	msgID := messageID(m.Key, from.Address)
	msg, err := Build(from, to, m.Subject, m.Text, m.HTML, msgID, s.cfg.Now())
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	a, err := s.auth(from.Address)
	if err != nil {
		return "", err
	}
	err = s.deliver(ctx, a, msg)
	if f, ok := s.cfg.OAuth2.(interface{ Forget() }); ok && err != nil && a != nil && a.mech == "XOAUTH2" && a.refused {
		// A refused bearer token may have been revoked before its expiry: try once more with a new one.
		f.Forget()
		if a, err = s.auth(from.Address); err != nil {
			return "", err
		}
		err = s.deliver(ctx, a, msg)
	}
	if err != nil {
		return "", err
	}
	return msgID, nil
}

// auth is the AUTH step for one connection; nil sends no AUTH. An XOAUTH2 token is fetched now, before
// the connection opens, so a slow token endpoint holds no SMTP session.
func (s *Sender) auth(fromAddr string) (*mechAuth, error) {
	mode := s.cfg.Auth
	if mode == AuthAuto && s.cfg.OAuth2 != nil {
		mode = AuthXOAUTH2
	}
	if mode == AuthNone || (mode == AuthAuto && s.cfg.Username == "") {
		return nil, nil
	}
	a := &mechAuth{mode: mode, user: s.cfg.Username, secret: s.cfg.Password.Reveal(), host: s.cfg.Host}
	if mode == AuthXOAUTH2 {
		if a.user == "" {
			a.user = fromAddr
		}
		tok, err := s.cfg.OAuth2.Token()
		if err != nil {
			return nil, tokenError(err)
		}
		a.secret = tok.AccessToken
	}
	return a, nil
}

// deliver connects (TLS per the policy, then AUTH) and sends msg.
func (s *Sender) deliver(ctx context.Context, a *mechAuth, msg *gomail.Msg) error {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		tc = s.cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = s.cfg.Host
	}
	implicit := s.cfg.TLS == TLSImplicit
	// go-mail bounds each command by its timeout but takes no ctx after the dial: closing the connection
	// when ctx ends is what makes a hung server or a shutdown stop the send.
	var stop func() bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		var err error
		if implicit {
			d := tls.Dialer{Config: tc}
			conn, err = d.DialContext(dctx, network, addr)
		} else {
			var d net.Dialer
			conn, err = d.DialContext(dctx, network, addr)
		}
		if err == nil {
			stop = context.AfterFunc(ctx, func() { conn.Close() })
		}
		return conn, err
	}
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	policy := gomail.TLSMandatory
	switch s.cfg.TLS {
	case TLSOpportunistic:
		policy = gomail.TLSOpportunistic
	case TLSNone, TLSImplicit: // implicit TLS needs no STARTTLS on top
		policy = gomail.NoTLS
	}
	timeout := s.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	opts := []gomail.Option{gomail.WithPort(s.cfg.Port), gomail.WithTLSPolicy(policy), gomail.WithTLSConfig(tc),
		gomail.WithTimeout(max(timeout, time.Millisecond)), gomail.WithDialContextFunc(dial), gomail.WithoutNoop()}
	if a != nil {
		opts = append(opts, gomail.WithSMTPAuthCustom(a))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return s.connectError(ctx, err, a)
	}
	defer sc.Close()
	if err := c.SendWithSMTPClient(sc, msg); err != nil {
		return sendError(err)
	}
	c.CloseWithSMTPClient(sc) // QUIT; the message is already accepted
	return nil
}

// connectError explains a failure before MAIL FROM: the dial, the greeting, TLS, or AUTH.
func (s *Sender) connectError(ctx context.Context, err error, a *mechAuth) error {
	if ctx.Err() != nil {
		return comm.NetError("smtp", ctx.Err())
	}
	var (
		uae    x509.UnknownAuthorityError
		he     x509.HostnameError
		cie    x509.CertificateInvalidError
		cve    *tls.CertificateVerificationError
		rhe    tls.RecordHeaderError
		ae     tls.AlertError
		te     *textproto.Error
		neterr net.Error
	)
	switch {
	case errors.As(err, &uae), errors.As(err, &he), errors.As(err, &cie), errors.As(err, &cve):
		return &comm.SendError{Err: fmt.Errorf("%w: the server's certificate is not trusted for %s: %v", ErrTLS, s.cfg.Host, certReason(err))}
	case errors.As(err, &rhe):
		return &comm.SendError{Err: fmt.Errorf("%w: the server did not answer TLS (IT0_SMTP_TLS=%s; port 587 usually wants starttls, 465 tls)", ErrTLS, s.cfg.TLS)}
	case errors.As(err, &ae):
		return &comm.SendError{Err: fmt.Errorf("%w: the server refused the handshake: %v", ErrTLS, ae)}
	case a != nil && a.started:
		return a.failure(err)
	case errors.As(err, &te):
		return replyError(te)
	case errors.As(err, &neterr):
		return comm.NetError("smtp connect", err)
	}
	// Mostly the STARTTLS policy: "STARTTLS mode set to: TLSMandatory, but target host does not support STARTTLS".
	return &comm.SendError{Err: fmt.Errorf("smtp connect to %s (IT0_SMTP_TLS=%s): %v", s.cfg.Host, s.cfg.TLS, err)}
}

// certReason is the certificate error without the chain's details.
func certReason(err error) string {
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && cve.Err != nil {
		return cve.Err.Error()
	}
	return err.Error()
}

func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		// ErrorCode is the token endpoint's "error" (invalid_grant, invalid_client…); the body may echo
		// request fields, so it stays out.
		temp := re.Response != nil && (re.Response.StatusCode >= 500 || re.Response.StatusCode == 429)
		code := re.ErrorCode
		if code == "" && re.Response != nil {
			code = "HTTP " + strconv.Itoa(re.Response.StatusCode)
		}
		return &comm.SendError{Temporary: temp, Err: fmt.Errorf("%w: the token endpoint refused: %s", ErrToken, code)}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &comm.SendError{Temporary: true, Err: fmt.Errorf("%w: %v", ErrToken, ne)}
	}
	return &comm.SendError{Err: fmt.Errorf("%w: %v", ErrToken, err)}
}

// sendError classifies a failure after the connection was set up: SMTP 4xx replies and network failures
// are temporary, 5xx replies permanent.
func sendError(err error) error {
	var ge *gomail.SendError
	var te *textproto.Error
	if errors.As(err, &te) {
		return replyError(te)
	}
	if errors.As(err, &ge) {
		var ne net.Error
		if errors.As(err, &ne) {
			return comm.NetError("smtp", err)
		}
		return &comm.SendError{Temporary: ge.IsTemp(), Err: fmt.Errorf("smtp: %v", err)}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return comm.NetError("smtp", err)
	}
	return &comm.SendError{Err: fmt.Errorf("smtp: %v", err)}
}

func replyError(te *textproto.Error) error {
	return &comm.SendError{Temporary: te.Code >= 400 && te.Code < 500, Err: fmt.Errorf("smtp: %d %s", te.Code, te.Msg)}
}

// messageID derives a stable Message-ID from the idempotency key, so a resent message is recognisable as
// the same one.
func messageID(key, from string) string {
	domain := "it0.local"
	if _, d, ok := strings.Cut(from, "@"); ok {
		domain = d
	}
	if key == "" {
		b := make([]byte, 12)
		rand.Read(b)
		return "<" + hex.EncodeToString(b) + "@" + domain + ">"
	}
	sum := sha256.Sum256([]byte(key))
	return "<" + hex.EncodeToString(sum[:12]) + "@" + domain + ">"
}

// Build renders a message: a quoted-printable UTF-8 text part and, when html is not empty, an HTML
// alternative (the last part is the preferred one). msgID is "<id@domain>".
func Build(from, to *mail.Address, subject, text, html, msgID string, date time.Time) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingQP))
	if err := m.From(from.String()); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(to.String()); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	m.Subject(subject)
	m.SetMessageIDWithValue(strings.TrimSuffix(strings.TrimPrefix(msgID, "<"), ">"))
	m.SetDateWithValue(date)
	m.SetBodyString(gomail.TypeTextPlain, text)
	if html != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, html)
	}
	return m, nil
}

var _ smtp.Auth = (*mechAuth)(nil)
