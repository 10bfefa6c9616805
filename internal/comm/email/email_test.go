package email_test

import (
	"bytes"
	"context"
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

	"github.com/emersion/go-smtp"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/commtest"
	"github.com/it0/it0/internal/comm/email"
)

var msg = comm.OutboundMessage{To: "li@example.com", Subject: "[IT0 CRITICAL] 需要您处理: disk", Text: "磁盘已满 on web-1\nReply Y",
	HTML: "<p>磁盘已满 <a href=\"https://it0.example/a\">Approve</a></p>", Key: "esc:a1:4:c1:email"}

func TestSend(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{email.TLSStartTLS, email.TLSImplicit} {
		// Ensure the message arrives over TLS after AUTH, as multipart/alternative with both parts intact.
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := commtest.StartSMTP(t, mode == email.TLSImplicit)
			id, err := email.New(srv.Config(mode)).Send(context.Background(), msg)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			mails := srv.Mails()
			if len(mails) != 1 {
				t.Fatalf("got %d messages", len(mails))
			}
			g := mails[0]
			if !g.TLS || g.From != "it0@example.com" || g.To != "li@example.com" {
				t.Errorf("envelope: tls=%v from=%s to=%s", g.TLS, g.From, g.To)
			}
			m, err := mail.ReadMessage(bytes.NewReader(g.Data))
			if err != nil {
				t.Fatal(err)
			}
			subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			if subj != msg.Subject || m.Header.Get("Message-Id") != id {
				t.Errorf("subject %q, id %q vs %q", subj, m.Header.Get("Message-Id"), id)
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
	// Ensure a 4xx reply is temporary and a 5xx reply permanent.
	t.Run("Replies", func(t *testing.T) {
		t.Parallel()
		srv := commtest.StartSMTP(t, false)
		srv.FailRcpt(&smtp.SMTPError{Code: 451, Message: "try again later"})
		_, err := email.New(srv.Config(email.TLSStartTLS)).Send(context.Background(), msg)
		if temp, _ := comm.IsTemporary(err); !temp {
			t.Errorf("451: %v", err)
		}
		srv.FailRcpt(&smtp.SMTPError{Code: 550, Message: "no such user"})
		_, err = email.New(srv.Config(email.TLSStartTLS)).Send(context.Background(), msg)
		if temp, _ := comm.IsTemporary(err); temp || err == nil {
			t.Errorf("550: %v", err)
		}
	})
	// Ensure a wrong password fails without the password in the error.
	t.Run("BadAuth", func(t *testing.T) {
		t.Parallel()
		srv := commtest.StartSMTP(t, false)
		cfg := srv.Config(email.TLSStartTLS)
		cfg.Password = "wrong-pass"
		_, err := email.New(cfg).Send(context.Background(), msg)
		if err == nil || strings.Contains(err.Error(), "wrong-pass") || len(srv.Mails()) != 0 {
			t.Errorf("bad auth: %v", err)
		}
	})
	// Ensure a server without a trusted certificate is refused.
	t.Run("UntrustedCert", func(t *testing.T) {
		t.Parallel()
		srv := commtest.StartSMTP(t, false)
		s := email.New(email.Config{Host: srv.Host, Port: srv.Port, From: "it0@example.com"})
		if _, err := s.Send(context.Background(), msg); err == nil {
			t.Error("sent to an untrusted server")
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
	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		if err := email.New(email.Config{}).Available(); err == nil || !strings.Contains(err.Error(), "IT0_SMTP_HOST") {
			t.Errorf("available: %v", err)
		}
	})
}

// Ensure the password never shows in logs.
func TestPasswordRedacted(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	cfg := email.Config{Host: "h", Password: "smtp-pass-value"}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", slog.Any("cfg", cfg))
	if strings.Contains(buf.String(), "smtp-pass-value") {
		t.Errorf("password leaked: %s", buf.String())
	}
}
