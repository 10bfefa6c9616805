package email_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/email"
	"github.com/it0/it0/internal/comm/email/emailtest"
	"golang.org/x/oauth2"
)

var msg = comm.OutboundMessage{To: "li@example.com", Subject: "[IT0 CRITICAL] 需要您处理: disk", Text: "磁盘已满 on web-1\nReply Y",
	HTML: "<p>磁盘已满 <a href=\"https://it0.example/a\">Approve</a></p>", Key: "esc:a1:4:c1:email"}

// config is a sender's configuration for srv in mode, authenticating with auth.
func config(srv *emailtest.Server, mode, auth string) email.Config {
	return email.Config{Host: srv.Host, Port: srv.Port, Username: emailtest.User, Password: emailtest.Password,
		From: "IT0 <it0@example.com>", TLS: mode, Auth: auth, TLSConfig: &tls.Config{RootCAs: srv.Pool}}
}

// staticToken is an XOAUTH2 token source that always returns tok.
type staticToken string

func (s staticToken) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: string(s)}, nil
}

func TestSend(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{email.TLSStartTLS, email.TLSImplicit} {
		// Ensure the message arrives over TLS after AUTH, as multipart/alternative with both parts intact.
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srvMode := emailtest.StartTLS
			if mode == email.TLSImplicit {
				srvMode = emailtest.Implicit
			}
			srv := emailtest.Start(t, emailtest.Options{TLS: srvMode})
			id, err := email.New(config(srv, mode, "")).Send(context.Background(), msg)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			mails := srv.Mails()
			if len(mails) != 1 {
				t.Fatalf("got %d messages", len(mails))
			}
			g := mails[0]
			if !g.TLS || g.From != "it0@example.com" || g.To != "li@example.com" || g.Mech != emailtest.Plain {
				t.Errorf("envelope: tls=%v from=%s to=%s mech=%s", g.TLS, g.From, g.To, g.Mech)
			}
			m, err := mail.ReadMessage(bytes.NewReader(g.Data))
			if err != nil {
				t.Fatal(err)
			}
			subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			if subj != msg.Subject || m.Header.Get("Message-Id") != id {
				t.Errorf("subject %q, id %q vs %q", subj, m.Header.Get("Message-Id"), id)
			}
			if from, _ := m.Header.AddressList("From"); len(from) != 1 || from[0].Address != "it0@example.com" || from[0].Name != "IT0" {
				t.Errorf("from header %q", m.Header.Get("From"))
			}
			mt, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
			if mt != "multipart/alternative" {
				t.Fatalf("content type %s", mt)
			}
			mr := multipart.NewReader(m.Body, params["boundary"])
			var parts []string
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(quotedprintable.NewReader(p))
				parts = append(parts, p.Header.Get("Content-Type")+"|"+string(b))
			}
			if len(parts) != 2 || !strings.HasPrefix(parts[0], "text/plain") || !strings.Contains(parts[0], "磁盘已满 on web-1\r\nReply Y") ||
				!strings.HasPrefix(parts[1], "text/html") || !strings.Contains(parts[1], `href="https://it0.example/a"`) {
				t.Errorf("parts: %q", parts)
			}
		})
	}
	// Ensure a text-only message is a single text/plain part.
	t.Run("TextOnly", func(t *testing.T) {
		t.Parallel()
		srv := emailtest.Start(t, emailtest.Options{})
		m := msg
		m.HTML = ""
		if _, err := email.New(config(srv, email.TLSStartTLS, "")).Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		got, err := mail.ReadMessage(bytes.NewReader(srv.Mails()[0].Data))
		if err != nil {
			t.Fatal(err)
		}
		if mt, _, _ := mime.ParseMediaType(got.Header.Get("Content-Type")); mt != "text/plain" {
			t.Errorf("content type %s", mt)
		}
	})
	// Ensure a 4xx reply is temporary and a 5xx reply permanent.
	t.Run("Replies", func(t *testing.T) {
		t.Parallel()
		srv := emailtest.Start(t, emailtest.Options{})
		srv.FailRcpt(&smtp.SMTPError{Code: 451, Message: "try again later"})
		_, err := email.New(config(srv, email.TLSStartTLS, "")).Send(context.Background(), msg)
		if temp, _ := comm.IsTemporary(err); !temp || !strings.Contains(err.Error(), "451") {
			t.Errorf("451: %v", err)
		}
		srv.FailRcpt(&smtp.SMTPError{Code: 550, Message: "no such user"})
		_, err = email.New(config(srv, email.TLSStartTLS, "")).Send(context.Background(), msg)
		if temp, _ := comm.IsTemporary(err); temp || err == nil {
			t.Errorf("550: %v", err)
		}
	})
	// Ensure a closed port is a temporary failure.
	t.Run("Down", func(t *testing.T) {
		t.Parallel()
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		_, err := email.New(email.Config{Host: "127.0.0.1", Port: port, From: "it0@example.com"}).Send(context.Background(), msg)
		var se *comm.SendError
		if !errors.As(err, &se) || !se.Temporary {
			t.Errorf("down: %v", err)
		}
	})
	// Ensure a relay without TLS or AUTH (IT0_SMTP_TLS=none, no username) takes the message in plain text.
	t.Run("Relay", func(t *testing.T) {
		t.Parallel()
		srv := emailtest.Start(t, emailtest.Options{TLS: emailtest.NoTLS, Open: true})
		cfg := email.Config{Host: srv.Host, Port: srv.Port, From: "it0@example.com", TLS: email.TLSNone}
		if _, err := email.New(cfg).Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		if m := srv.Mails(); len(m) != 1 || m[0].TLS || m[0].Mech != "" || len(srv.Auths()) != 0 {
			t.Errorf("relay: %+v auths %v", m, srv.Auths())
		}
	})
}

// TestAuth sends with each mechanism, over STARTTLS and over implicit TLS, to a server that offers all of
// them and checks the credentials.
func TestAuth(t *testing.T) {
	t.Parallel()
	all := []string{emailtest.Plain, emailtest.Login, emailtest.CramMD5, emailtest.XOAUTH2}
	for _, tc := range []struct {
		auth, mech string
		offered    []string // default all
		oauth      bool
	}{
		{auth: email.AuthPlain, mech: emailtest.Plain},
		{auth: email.AuthLogin, mech: emailtest.Login},
		{auth: email.AuthCramMD5, mech: emailtest.CramMD5},
		{auth: email.AuthXOAUTH2, mech: emailtest.XOAUTH2, oauth: true},
		// auto: XOAUTH2 when a token source is set, else PLAIN, LOGIN, CRAM-MD5 in that order.
		{auth: email.AuthAuto, mech: emailtest.XOAUTH2, oauth: true},
		{auth: email.AuthAuto, mech: emailtest.Plain},
		{auth: email.AuthAuto, mech: emailtest.Login, offered: []string{emailtest.CramMD5, emailtest.Login}},
		{auth: email.AuthAuto, mech: emailtest.CramMD5, offered: []string{emailtest.CramMD5}},
	} {
		for _, mode := range []string{email.TLSStartTLS, email.TLSImplicit} {
			// Ensure the mechanism authenticates, over TLS, and nothing else is tried.
			t.Run(tc.auth+"/"+tc.mech+"/"+mode, func(t *testing.T) {
				t.Parallel()
				offered := tc.offered
				if offered == nil {
					offered = all
				}
				srvMode := emailtest.StartTLS
				if mode == email.TLSImplicit {
					srvMode = emailtest.Implicit
				}
				srv := emailtest.Start(t, emailtest.Options{TLS: srvMode, Mechs: offered})
				cfg := config(srv, mode, tc.auth)
				if tc.oauth {
					cfg.OAuth2 = staticToken(emailtest.Token)
				}
				if _, err := email.New(cfg).Send(context.Background(), msg); err != nil {
					t.Fatalf("send: %v", err)
				}
				m := srv.Mails()
				if len(m) != 1 || m[0].Mech != tc.mech || !m[0].TLS {
					t.Errorf("mails %+v", m)
				}
				if a := srv.Auths(); len(a) != 1 || a[0] != tc.mech {
					t.Errorf("AUTH tried %v", a)
				}
			})
		}
	}
	for _, tc := range []struct{ auth, mech string }{
		{email.AuthPlain, emailtest.Plain}, {email.AuthLogin, emailtest.Login}, {email.AuthCramMD5, emailtest.CramMD5}, {email.AuthXOAUTH2, emailtest.XOAUTH2},
	} {
		// Ensure wrong credentials are a permanent ErrAuth that names the mechanism and not the secret.
		t.Run("Wrong/"+tc.mech, func(t *testing.T) {
			t.Parallel()
			srv := emailtest.Start(t, emailtest.Options{Mechs: all})
			cfg := config(srv, email.TLSStartTLS, tc.auth)
			cfg.Password = "wrong-pass-value"
			cfg.OAuth2 = staticToken("wrong-token-value")
			_, err := email.New(cfg).Send(context.Background(), msg)
			if !errors.Is(err, email.ErrAuth) || !strings.Contains(err.Error(), "535") || !strings.Contains(err.Error(), tc.mech) {
				t.Fatalf("err = %v", err)
			}
			if temp, _ := comm.IsTemporary(err); temp {
				t.Error("a refused password is not worth retrying")
			}
			for _, secret := range []string{"wrong-pass-value", "wrong-token-value", emailtest.Password} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("secret in %q", err)
				}
			}
			if len(srv.Mails()) != 0 {
				t.Error("mail taken")
			}
		})
	}
	// Ensure a mechanism the server does not offer fails before any credential is sent, saying what it offers.
	t.Run("NotOffered", func(t *testing.T) {
		t.Parallel()
		srv := emailtest.Start(t, emailtest.Options{Mechs: []string{emailtest.Plain}})
		_, err := email.New(config(srv, email.TLSStartTLS, email.AuthLogin)).Send(context.Background(), msg)
		if !errors.Is(err, email.ErrAuth) || !strings.Contains(err.Error(), `offers "PLAIN"`) || len(srv.Auths()) != 0 {
			t.Errorf("err = %v, auths %v", err, srv.Auths())
		}
	})
	// Ensure a temporary AUTH failure (454) is retried later.
	t.Run("Temporary", func(t *testing.T) {
		t.Parallel()
		srv := emailtest.Start(t, emailtest.Options{})
		srv.FailAuth(&smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"})
		_, err := email.New(config(srv, email.TLSStartTLS, "")).Send(context.Background(), msg)
		if temp, _ := comm.IsTemporary(err); !temp || !errors.Is(err, email.ErrAuth) {
			t.Errorf("err = %v", err)
		}
	})
}

// TestTLS checks the TLS policies against servers that offer STARTTLS, implicit TLS or neither.
func TestTLS(t *testing.T) {
	t.Parallel()
	// Ensure a certificate no trusted CA issued is refused in both modes, before AUTH.
	for _, mode := range []string{email.TLSStartTLS, email.TLSImplicit, email.TLSOpportunistic} {
		t.Run("Untrusted/"+mode, func(t *testing.T) {
			t.Parallel()
			srvMode := emailtest.StartTLS
			if mode == email.TLSImplicit {
				srvMode = emailtest.Implicit
			}
			srv := emailtest.Start(t, emailtest.Options{TLS: srvMode, SelfSigned: true})
			_, err := email.New(config(srv, mode, "")).Send(context.Background(), msg)
			if !errors.Is(err, email.ErrTLS) || !strings.Contains(err.Error(), "not trusted") || len(srv.Auths()) != 0 {
				t.Errorf("err = %v, auths %v", err, srv.Auths())
			}
			if temp, _ := comm.IsTemporary(err); temp {
				t.Error("a bad certificate is not worth retrying")
			}
		})
	}
	// Ensure the system roots do not trust the test CA (the pool is what made the other tests pass).
	t.Run("SystemRoots", func(t *testing.T) {
		t.Parallel()
		srv := emailtest.Start(t, emailtest.Options{})
		cfg := config(srv, email.TLSStartTLS, "")
		cfg.TLSConfig = nil
		if _, err := email.New(cfg).Send(context.Background(), msg); !errors.Is(err, email.ErrTLS) {
			t.Errorf("err = %v", err)
		}
	})
	// Ensure implicit TLS against a STARTTLS port says the server did not answer TLS.
	t.Run("ImplicitOnStartTLSPort", func(t *testing.T) {
		t.Parallel()
		srv := emailtest.Start(t, emailtest.Options{})
		_, err := email.New(config(srv, email.TLSImplicit, "")).Send(context.Background(), msg)
		if !errors.Is(err, email.ErrTLS) || !strings.Contains(err.Error(), "did not answer TLS") {
			t.Errorf("err = %v", err)
		}
	})
	// Ensure mandatory STARTTLS refuses a server that does not offer it, before AUTH.
	t.Run("MandatoryWithout", func(t *testing.T) {
		t.Parallel()
		srv := emailtest.Start(t, emailtest.Options{TLS: emailtest.NoTLS})
		_, err := email.New(config(srv, email.TLSStartTLS, "")).Send(context.Background(), msg)
		if err == nil || !strings.Contains(err.Error(), "STARTTLS") || len(srv.Auths()) != 0 || len(srv.Mails()) != 0 {
			t.Errorf("err = %v, auths %v", err, srv.Auths())
		}
	})
	// Ensure opportunistic STARTTLS upgrades when offered and goes on in plain text when not (where auto
	// AUTH then picks CRAM-MD5, which keeps the password off the wire).
	t.Run("Opportunistic", func(t *testing.T) {
		t.Parallel()
		with := emailtest.Start(t, emailtest.Options{Mechs: []string{emailtest.Plain, emailtest.CramMD5}})
		without := emailtest.Start(t, emailtest.Options{TLS: emailtest.NoTLS, Mechs: []string{emailtest.CramMD5}})
		for _, tc := range []struct {
			srv  *emailtest.Server
			tls  bool
			mech string
		}{{with, true, emailtest.Plain}, {without, false, emailtest.CramMD5}} {
			if _, err := email.New(config(tc.srv, email.TLSOpportunistic, "")).Send(context.Background(), msg); err != nil {
				t.Fatalf("send: %v", err)
			}
			if m := tc.srv.Mails(); len(m) != 1 || m[0].TLS != tc.tls || m[0].Mech != tc.mech {
				t.Errorf("mails %+v", m)
			}
		}
	})
}

// Ensure a send stops when its context ends, even while the server holds the connection silent.
func TestCancel(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // never greets
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := email.Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "it0@example.com", Timeout: time.Hour}
	go func() {
		_, err := email.New(cfg).Send(ctx, msg)
		done <- err
	}()
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
	cancel()
	select {
	case err := <-done:
		if temp, _ := comm.IsTemporary(err); !temp {
			t.Errorf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the send did not stop with its context")
	}
}

func TestAvailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  email.Config
		want string // "" = available
	}{
		{"Empty", email.Config{}, "IT0_SMTP_HOST"},
		{"Relay", email.Config{Host: "h", From: "a@b.c", TLS: "none"}, ""},
		{"PlainNeedsPassword", email.Config{Host: "h", From: "a@b.c", Auth: "plain", Username: "u"}, "IT0_SMTP_PASSWORD"},
		{"XOAUTH2NeedsSource", email.Config{Host: "h", From: "a@b.c", Auth: "xoauth2"}, "IT0_SMTP_OAUTH2"},
		{"BadTLS", email.Config{Host: "h", From: "a@b.c", TLS: "ssl"}, "IT0_SMTP_TLS"},
		{"BadAuth", email.Config{Host: "h", From: "a@b.c", Auth: "ntlm"}, "IT0_SMTP_AUTH"},
		{"UpperCase", email.Config{Host: "h", From: "a@b.c", TLS: "STARTTLS", Auth: "CRAM-MD5", Username: "u", Password: "p"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := email.New(tc.cfg).Available()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("available = %v, want %q", err, tc.want)
			}
		})
	}
}

// Ensure the password never shows in logs.
func TestPasswordRedacted(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	cfg := email.Config{Host: "h", Password: "smtp-pass-value"}
	oc := email.OAuth2Config{ClientSecret: "client-secret-value", RefreshToken: "refresh-token-value"}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", slog.Any("cfg", cfg), slog.Any("oauth2", oc))
	for _, s := range []string{"smtp-pass-value", "client-secret-value", "refresh-token-value"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("%s leaked: %s", s, buf.String())
		}
	}
}

// BenchmarkSend measures one message over STARTTLS with AUTH PLAIN to a loopback server (a connection each).
func BenchmarkSend(b *testing.B) {
	srv := emailtest.Start(b, emailtest.Options{})
	s := email.New(config(srv, email.TLSStartTLS, ""))
	b.ResetTimer()
	for range b.N {
		if _, err := s.Send(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
}
