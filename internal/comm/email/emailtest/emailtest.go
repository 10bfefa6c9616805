// Package emailtest runs a real SMTP server (github.com/emersion/go-smtp) on loopback for tests of
// package email and of the modules that send mail: a certificate issued by its own test CA, STARTTLS,
// implicit TLS or neither, and AUTH PLAIN, LOGIN, CRAM-MD5 and XOAUTH2, each checking the credentials the
// way a real server does (XOAUTH2's failure is the 334 JSON challenge, then 535).
package emailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Credentials the server accepts.
const (
	User     = "it0@example.com"
	Password = "smtp-pw-secret"
	Token    = "ya29.oauth-access-token"
)

// SASL mechanism names.
const (
	Plain   = "PLAIN"
	Login   = "LOGIN"
	CramMD5 = "CRAM-MD5"
	XOAUTH2 = "XOAUTH2"
)

// TLS modes of the server.
const (
	StartTLS = "starttls" // offers STARTTLS and takes AUTH only after it
	Implicit = "tls"      // TLS from the first byte
	NoTLS    = "none"     // offers no STARTTLS; takes AUTH in plain text
)

// Options shape a server.
type Options struct {
	TLS   string   // StartTLS (default), Implicit or NoTLS
	Mechs []string // advertised mechanisms; default PLAIN
	// SelfSigned serves a certificate no CA issued (the client's pool does not trust it).
	SelfSigned bool
	// Open takes mail without AUTH (a relay that trusts its network).
	Open bool
}

// Mail is one message the server accepted.
type Mail struct {
	From, To string
	Data     []byte
	TLS      bool   // the session was encrypted
	Mech     string // the mechanism it authenticated with ("" = none)
}

// Server is a running SMTP server.
type Server struct {
	Host string
	Port int
	// Pool trusts the test CA that issued the server's certificate.
	Pool *x509.CertPool

	opts    Options
	mu      sync.Mutex
	mails   []Mail
	rcptErr error
	authErr error
	auths   []string // mechanisms tried, in order
}

// Start starts a server, stopped when the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.TLS == "" {
		opts.TLS = StartTLS
	}
	if len(opts.Mechs) == 0 {
		opts.Mechs = []string{Plain}
	}
	leaf, pool := certs(tb, opts.SelfSigned)
	s := &Server{Pool: pool, opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{srv: s, conn: c}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	tlsConf := &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}
	switch opts.TLS {
	case StartTLS:
		srv.TLSConfig = tlsConf
	case NoTLS:
		srv.AllowInsecureAuth = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if opts.TLS == Implicit {
		ln = tls.NewListener(ln, tlsConf)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	s.Host, s.Port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	return s
}

// Mails returns the accepted messages.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Auths returns the mechanisms clients started AUTH with.
func (s *Server) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

// FailRcpt makes RCPT answer err (nil to accept again).
func (s *Server) FailRcpt(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcptErr = err
}

// FailAuth makes AUTH answer err whatever the credentials (nil to check them again).
func (s *Server) FailAuth(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authErr = err
}

var errBadCredentials = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}

type session struct {
	srv  *Server
	conn *smtp.Conn
	mech string // set once AUTH succeeded
	cur  Mail
}

func (s *session) AuthMechanisms() []string { return s.srv.opts.Mechs }

func (s *session) Auth(mech string) (sasl.Server, error) {
	s.srv.mu.Lock()
	s.srv.auths = append(s.srv.auths, mech)
	forced := s.srv.authErr
	s.srv.mu.Unlock()
	offered := false
	for _, m := range s.srv.opts.Mechs {
		offered = offered || m == mech
	}
	if !offered {
		return nil, &smtp.SMTPError{Code: 504, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Unrecognized authentication type"}
	}
	ok := func(m string) error {
		if forced != nil {
			return forced
		}
		s.mech = m
		return nil
	}
	switch mech {
	case Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error {
			if user != User || pass != Password {
				return errBadCredentials
			}
			return ok(Plain)
		}), nil
	case Login:
		return &loginServer{check: func(user, pass string) error {
			if user != User || pass != Password {
				return errBadCredentials
			}
			return ok(Login)
		}}, nil
	case CramMD5:
		return &cramServer{challenge: fmt.Sprintf("<%d.%d@localhost>", time.Now().UnixNano(), mathRand()), check: func(user, digest string, challenge []byte) error {
			m := hmac.New(md5.New, []byte(Password))
			m.Write(challenge)
			if user != User || !hmac.Equal([]byte(digest), []byte(hex.EncodeToString(m.Sum(nil)))) {
				return errBadCredentials
			}
			return ok(CramMD5)
		}}, nil
	case XOAUTH2:
		return &xoauth2Server{check: func(user, token string) error {
			if user != User || token != Token {
				return errBadCredentials
			}
			return ok(XOAUTH2)
		}}, nil
	}
	return nil, &smtp.SMTPError{Code: 504, Message: "Unrecognized authentication type"}
}

func mathRand() int64 {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<40))
	return n.Int64()
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.mech == "" && !s.srv.opts.Open {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	s.cur = Mail{From: from, Mech: s.mech}
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.srv.mu.Lock()
	err := s.srv.rcptErr
	s.srv.mu.Unlock()
	if err != nil {
		return err
	}
	s.cur.To = to
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.cur.TLS = s.conn.TLSConnectionState()
	s.cur.Data = b
	s.srv.mu.Lock()
	s.srv.mails = append(s.srv.mails, s.cur)
	s.srv.mu.Unlock()
	return nil
}

// loginServer is the server side of LOGIN: "Username:", "Password:" challenges, one answer each.
type loginServer struct {
	step  int
	user  string
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if resp != nil { // an initial response is the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.step++
		l.user = string(resp)
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.user, string(resp))
	}
	return nil, false, errors.New("unexpected LOGIN response")
}

// cramServer is the server side of CRAM-MD5 (RFC 2195).
type cramServer struct {
	challenge string
	sent      bool
	check     func(user, digest string, challenge []byte) error
}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if !c.sent {
		c.sent = true
		return []byte(c.challenge), false, nil
	}
	user, digest, ok := strings.Cut(string(resp), " ")
	if !ok {
		return nil, false, &smtp.SMTPError{Code: 501, Message: "malformed CRAM-MD5 response"}
	}
	return nil, true, c.check(user, digest, []byte(c.challenge))
}

// xoauth2Server is the server side of XOAUTH2 as Gmail documents it: the initial response is
// "user=<user>\x01auth=Bearer <token>\x01\x01"; a refusal is a 334 challenge carrying a JSON error, which
// the client answers with an empty line, and then 535.
type xoauth2Server struct {
	failed bool
	check  func(user, token string) error
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, false, errBadCredentials
	}
	if resp == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	var user, token string
	for _, f := range bytes.Split(resp, []byte{1}) {
		k, v, _ := strings.Cut(string(f), "=")
		switch k {
		case "user":
			user = v
		case "auth":
			token = strings.TrimPrefix(v, "Bearer ")
		}
	}
	if err := x.check(user, token); err != nil {
		if !errors.Is(err, errBadCredentials) {
			return nil, false, err
		}
		x.failed = true
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	return nil, true, nil
}

// certs issues a leaf for 127.0.0.1 and localhost from a fresh test CA; the pool trusts the CA. With
// selfSigned the leaf signs itself and the pool trusts only the (unrelated) CA.
func certs(tb testing.TB, selfSigned bool) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "IT0 test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	parent, signer := ca, any(caKey)
	if selfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}
