package email

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strings"

	"github.com/it0/it0/internal/comm"
	"github.com/wneessen/go-mail/smtp"
)

// mechAuth is the AUTH step of one connection: it picks the mechanism from what the server advertises
// (auto) or checks that the configured one is offered, refuses to send a password or a bearer token over
// an unencrypted connection to anything but loopback, and then delegates to go-mail's implementation.
// Wrapping it also tells a failed AUTH apart from a failed dial or STARTTLS, so errors say which it was.
type mechAuth struct {
	mode   string // an Auth* constant, not AuthNone
	user   string
	secret string // the password, or the XOAUTH2 access token
	host   string

	started bool   // the server got as far as AUTH
	refused bool   // the server answered AUTH with a permanent refusal (5xx)
	mech    string // the SASL name chosen
	inner   smtp.Auth
}

// sasl maps our names to the SASL names servers advertise.
var sasl = map[string]string{AuthPlain: "PLAIN", AuthLogin: "LOGIN", AuthCramMD5: "CRAM-MD5", AuthXOAUTH2: "XOAUTH2"}

// autoOrder is what auto tries: PLAIN and LOGIN need TLS (or loopback); CRAM-MD5 keeps the password off
// the wire, so it is the one choice over plain text.
var autoOrder = []string{AuthPlain, AuthLogin, AuthCramMD5}

var (
	errNotOffered  = errors.New("the server does not offer the mechanism")
	errUnencrypted = errors.New("refusing to send credentials over an unencrypted connection")
)

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start implements smtp.Auth.
func (a *mechAuth) Start(si *smtp.ServerInfo) (string, []byte, error) {
	a.started = true
	offered := make([]string, 0, len(si.Auth))
	for _, m := range si.Auth {
		offered = append(offered, strings.ToUpper(m))
	}
	secure := si.TLS || isLoopback(si.Name)
	mode := a.mode
	if mode == AuthAuto {
		mode = ""
		for _, m := range autoOrder {
			if slices.Contains(offered, sasl[m]) && (secure || m == AuthCramMD5) {
				mode = m
				break
			}
		}
		if mode == "" {
			if !secure {
				return "", nil, fmt.Errorf("%w (the server offers %s without TLS; set IT0_SMTP_TLS=starttls or tls)", errUnencrypted, strings.Join(offered, " "))
			}
			return "", nil, fmt.Errorf("%w: it offers %q, none of PLAIN, LOGIN, CRAM-MD5", errNotOffered, strings.Join(offered, " "))
		}
	}
	a.mech = sasl[mode]
	if !slices.Contains(offered, a.mech) {
		return "", nil, fmt.Errorf("%w: %s (it offers %q; set IT0_SMTP_AUTH to one of them)", errNotOffered, a.mech, strings.Join(offered, " "))
	}
	if !secure && mode != AuthCramMD5 {
		return "", nil, fmt.Errorf("%w (AUTH %s; set IT0_SMTP_TLS=starttls or tls)", errUnencrypted, a.mech)
	}
	// go-mail's PLAIN and LOGIN repeat the TLS check, so they are told the connection is fine only when it
	// is: TLS, or loopback (their own exception).
	switch mode {
	case AuthPlain:
		a.inner = smtp.PlainAuth("", a.user, a.secret, a.host, false)
	case AuthLogin:
		a.inner = smtp.LoginAuth(a.user, a.secret, a.host, false)
	case AuthCramMD5:
		a.inner = smtp.CRAMMD5Auth(a.user, a.secret)
	case AuthXOAUTH2:
		a.inner = smtp.XOAuth2Auth(a.user, a.secret)
	default:
		return "", nil, fmt.Errorf("unknown IT0_SMTP_AUTH %q", a.mode)
	}
	return a.inner.Start(si)
}

// Next implements smtp.Auth.
func (a *mechAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if a.inner == nil {
		return nil, errors.New("smtp auth: no mechanism started")
	}
	return a.inner.Next(fromServer, more)
}

// failure explains a failed AUTH. The reply's text is the server's; the secret never is in it.
func (a *mechAuth) failure(err error) error {
	mech := a.mech
	if mech == "" {
		mech = strings.ToUpper(a.mode)
	}
	hint := "check IT0_SMTP_USERNAME and IT0_SMTP_PASSWORD"
	if a.mode == AuthXOAUTH2 || mech == "XOAUTH2" {
		hint = "check the OAuth2 client's SMTP scope and that the mailbox allows SMTP AUTH"
	}
	var te *textproto.Error
	var ne net.Error
	switch {
	case errors.As(err, &te):
		// 454 is a temporary authentication failure (RFC 4954); 5xx are refusals.
		a.refused = te.Code >= 500
		return &comm.SendError{Temporary: te.Code >= 400 && te.Code < 500,
			Err: fmt.Errorf("%w: AUTH %s as %s: %d %s (%s)", ErrAuth, mech, a.user, te.Code, te.Msg, hint)}
	case errors.Is(err, errNotOffered), errors.Is(err, errUnencrypted):
		return &comm.SendError{Err: fmt.Errorf("%w: %v", ErrAuth, err)}
	case errors.Is(err, smtp.ErrUnencrypted):
		return &comm.SendError{Err: fmt.Errorf("%w: %v", ErrAuth, errUnencrypted)}
	case errors.As(err, &ne):
		return comm.NetError("smtp auth", err)
	}
	return &comm.SendError{Err: fmt.Errorf("%w: AUTH %s as %s: %v", ErrAuth, mech, a.user, err)}
}
