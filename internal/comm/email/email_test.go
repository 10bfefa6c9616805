package email_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/email"
)

// received is one message the test server accepted.
type received struct {
	from, to string
	data     []byte
	tls      bool
}

// smtpServer is a real SMTP server on loopback (go-smtp) that requires AUTH PLAIN as it0/pw-secret.
type smtpServer struct {
	mu      sync.Mutex
	got     []received
	rcptErr error // answer RCPT with this
	host    string
	port    int
	pool    *x509.CertPool
}

type session struct {
	srv    *smtpServer
	conn   *smtp.Conn
	authed bool
	cur    received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "it0" || pass != "pw-secret" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.authed = true
		return nil
	}), nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	s.cur.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.srv.rcptErr != nil {
		return s.srv.rcptErr
	}
	s.cur.to = to
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.data = b
	s.srv.mu.Lock()
	s.srv.got = append(s.srv.got, s.cur)
	s.srv.mu.Unlock()
	return nil
}

func startSMTP(t *testing.T, implicit bool) *smtpServer {
	t.Helper()
	cert, pool := selfSigned(t)
	ss := &smtpServer{pool: pool}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{srv: ss, conn: c}, nil }))
	srv.Domain = "127.0.0.1"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ss.host, ss.port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	return ss
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func (s *smtpServer) sender(mode, password string) *email.Sender {
	return email.New(email.Config{Host: s.host, Port: s.port, Username: "it0", Password: "pw-secret", From: "IT0 <it0@example.com>", TLS: mode,
		TLSConfig: &tls.Config{RootCAs: s.pool}})
}

var msg = comm.OutboundMessage{To: "li@example.com", Subject: "[IT0 CRITICAL] 需要您处理: disk", Text: "磁盘已满 on web-1\nReply Y",
	HTML: "<p>磁盘已满 <a href=\"https://it0.example/a\">Approve</a></p>", Key: "esc:a1:4:c1:email"}

func TestSend(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{email.TLSStartTLS, email.TLSImplicit} {
		// Ensure the message arrives over TLS after AUTH, as multipart/alternative with both parts intact.
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, mode == email.TLSImplicit)
			id, err := srv.sender(mode, "pw-secret").Send(context.Background(), msg)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if len(srv.got) != 1 {
				t.Fatalf("got %d messages", len(srv.got))
			}
			g := srv.got[0]
			if !g.tls || g.from != "it0@example.com" || g.to != "li@example.com" {
				t.Errorf("envelope: tls=%v from=%s to=%s", g.tls, g.from, g.to)
			}
			m, err := mail.ReadMessage(bytes.NewReader(g.data))
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
		srv := startSMTP(t, false)
		srv.rcptErr = &smtp.SMTPError{Code: 451, Message: "try again later"}
		_, err := srv.sender(email.TLSStartTLS, "pw-secret").Send(context.Background(), msg)
		if temp, _ := comm.IsTemporary(err); !temp {
			t.Errorf("451: %v", err)
		}
		srv.rcptErr = &smtp.SMTPError{Code: 550, Message: "no such user"}
		_, err = srv.sender(email.TLSStartTLS, "pw-secret").Send(context.Background(), msg)
		if temp, _ := comm.IsTemporary(err); temp || err == nil {
			t.Errorf("550: %v", err)
		}
	})
	// Ensure a wrong password fails without the password in the error.
	t.Run("BadAuth", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t, false)
		s := email.New(email.Config{Host: srv.host, Port: srv.port, Username: "it0", Password: "wrong-pass", From: "it0@example.com",
			TLSConfig: &tls.Config{RootCAs: srv.pool}})
		_, err := s.Send(context.Background(), msg)
		if err == nil || strings.Contains(err.Error(), "wrong-pass") || len(srv.got) != 0 {
			t.Errorf("bad auth: %v", err)
		}
	})
	// Ensure a server without a trusted certificate is refused.
	t.Run("UntrustedCert", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t, false)
		s := email.New(email.Config{Host: srv.host, Port: srv.port, From: "it0@example.com"})
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
