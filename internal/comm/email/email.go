// Package email is comm's SMTP adapter: STARTTLS or implicit TLS, AUTH PLAIN, and multipart/alternative
// messages with a text and an HTML part. It uses net/smtp from the standard library.
package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/vault"
)

// TLS modes.
const (
	TLSStartTLS = "starttls" // plain connect, then STARTTLS (required): port 587
	TLSImplicit = "tls"      // TLS from the first byte: port 465
	TLSNone     = "none"     // no TLS (a local relay only); AUTH is then refused by net/smtp except on localhost
)

// Config configures the SMTP relay. Empty Host or From leave the channel unavailable.
type Config struct {
	Host     string
	Port     int // default 587 (465 with TLSImplicit)
	Username string
	Password vault.Secret
	From     string // "IT0 <it0@example.com>"
	TLS      string // starttls (default), tls or none
	// TLSConfig overrides the TLS client settings (tests trust their own CA); ServerName defaults to Host.
	TLSConfig *tls.Config
	Timeout   time.Duration // per message; default 30 s
	Now       func() time.Time
}

// Sender sends email.
type Sender struct{ cfg Config }

// New returns a sender for cfg.
func New(cfg Config) *Sender {
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Port == 0 {
		cfg.Port = 587
		if cfg.TLS == TLSImplicit {
			cfg.Port = 465
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
	if len(missing) > 0 {
		return comm.Unavailable(comm.ChannelEmail, missing...)
	}
	if s.cfg.TLS != TLSStartTLS && s.cfg.TLS != TLSImplicit && s.cfg.TLS != TLSNone {
		return fmt.Errorf("IT0_SMTP_TLS %q: want starttls, tls or none", s.cfg.TLS)
	}
	return nil
}

// Send implements comm.Sender: one message to m.To. The id returned is the Message-ID.
func (s *Sender) Send(ctx context.Context, m comm.OutboundMessage) (string, error) {
	from, err := mail.ParseAddress(s.cfg.From)
	if err != nil {
		return "", fmt.Errorf("IT0_SMTP_FROM %q: %w", s.cfg.From, err)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return "", fmt.Errorf("recipient %q: %w", m.To, err)
	}
	msgID := messageID(m.Key, from.Address)
	raw, err := Build(from, to, m.Subject, m.Text, m.HTML, msgID, s.cfg.Now())
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.deliver(ctx, from.Address, to.Address, raw); err != nil {
		return "", classify(err)
	}
	return msgID, nil
}

func (s *Sender) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		c = s.cfg.TLSConfig.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = s.cfg.Host
	}
	return c
}

func (s *Sender) deliver(ctx context.Context, from, to string, raw []byte) error {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return comm.NetError("smtp dial", err)
	}
	if s.cfg.TLS == TLSImplicit {
		tc := tls.Client(conn, s.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("smtp tls: %w", err)
		}
		conn = tc
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("smtp: the server does not offer STARTTLS (set IT0_SMTP_TLS=tls for port 465, or none for a local relay)")
		}
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password.Reveal(), s.cfg.Host)); err != nil {
			return fmt.Errorf("smtp auth as %s: %w", s.cfg.Username, err)
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// classify marks SMTP 4xx replies and network failures temporary; 5xx replies are permanent.
func classify(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &comm.SendError{Temporary: te.Code >= 400 && te.Code < 500, Err: fmt.Errorf("smtp: %d %s", te.Code, te.Msg)}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return comm.NetError("smtp", err)
	}
	return err
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

// Build renders a MIME message: multipart/alternative with a quoted-printable UTF-8 text part and, when html
// is not empty, an HTML part (the last part is the preferred one).
func Build(from, to *mail.Address, subject, text, html, msgID string, date time.Time) ([]byte, error) {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from.String())
	h("To", to.String())
	h("Subject", mime.QEncoding.Encode("utf-8", subject))
	h("Date", date.Format(time.RFC1123Z))
	h("Message-ID", msgID)
	h("MIME-Version", "1.0")
	if html == "" {
		h("Content-Type", "text/plain; charset=utf-8")
		h("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, text); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	h("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	for _, p := range []struct{ typ, body string }{{"text/plain; charset=utf-8", text}, {"text/html; charset=utf-8", html}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {p.typ}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		if err := writeQP(w, p.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeQP(w interface{ Write([]byte) (int, error) }, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(strings.ReplaceAll(s, "\n", "\r\n"))); err != nil {
		return err
	}
	return qp.Close()
}
