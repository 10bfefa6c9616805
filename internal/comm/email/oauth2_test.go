package email_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/email"
	"github.com/it0/it0/internal/comm/email/emailtest"
)

// Token endpoint credentials.
const (
	clientID     = "it0-client"
	clientSecret = "client-secret-value"
	refreshToken = "refresh-token-value"
	saEmail      = "it0-mailer@it0-test.iam.gserviceaccount.com"
)

// tokenServer is an OAuth 2.0 token endpoint (RFC 6749 §4.4, §6; RFC 7523 for the service account's JWT
// bearer grant) that issues emailtest.Token to the credentials above and counts requests.
type tokenServer struct {
	URL    string
	saKey  *rsa.PrivateKey
	mu     sync.Mutex
	hits   int
	status int      // answer this status with an OAuth error instead, when set
	issue  []string // access tokens to issue first, before emailtest.Token
}

func startTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{saKey: key}
	srv := httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL + "/token"
	return ts
}

func (ts *tokenServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.hits
}

func (ts *tokenServer) fail(status int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.status = status
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	ts.hits++
	status := ts.status
	token := emailtest.Token
	if len(ts.issue) > 0 {
		token, ts.issue = ts.issue[0], ts.issue[1:]
	}
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	oauthErr := func(code int, e string) {
		w.WriteHeader(code)
		// Some endpoints echo the request in the description: the client must not repeat it.
		fmt.Fprintf(w, `{"error":%q,"error_description":"refused %s"}`, e, r.PostFormValue("refresh_token"))
	}
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		oauthErr(404, "not_found")
		return
	}
	if status != 0 {
		oauthErr(status, map[bool]string{true: "temporarily_unavailable", false: "invalid_grant"}[status >= 500])
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	switch r.PostFormValue("grant_type") {
	case "refresh_token":
		if id != clientID || secret != clientSecret || r.PostFormValue("refresh_token") != refreshToken {
			oauthErr(400, "invalid_grant")
			return
		}
	case "client_credentials":
		if id != clientID || secret != clientSecret || r.PostFormValue("scope") != "https://outlook.office365.com/.default" {
			oauthErr(401, "invalid_client")
			return
		}
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		var claims struct {
			jwt.RegisteredClaims
			Scope string `json:"scope"`
		}
		_, err := jwt.ParseWithClaims(r.PostFormValue("assertion"), &claims, func(*jwt.Token) (any, error) { return &ts.saKey.PublicKey, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(ts.URL), jwt.WithIssuer(saEmail))
		if err != nil || claims.Subject != emailtest.User || claims.Scope != "https://mail.google.com/" {
			oauthErr(400, "invalid_grant")
			return
		}
	default:
		oauthErr(400, "unsupported_grant_type")
		return
	}
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, token)
}

// serviceAccount writes a Google service account key file for ts and returns its path.
func (ts *tokenServer) serviceAccount(t *testing.T) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(ts.saKey)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "it0-test", "private_key_id": "k1",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "client_email": saEmail,
		"client_id": "1234567890", "token_uri": ts.URL})
	p := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOAuth2 sends with XOAUTH2 tokens from each source, to a server that checks the token.
func TestOAuth2(t *testing.T) {
	t.Parallel()
	xoauth := []string{emailtest.XOAUTH2, emailtest.Plain}
	send := func(t *testing.T, srv *emailtest.Server, oc email.OAuth2Config) error {
		t.Helper()
		ts, err := email.NewTokenSource(oc, emailtest.User)
		if err != nil {
			t.Fatal(err)
		}
		cfg := config(srv, email.TLSStartTLS, "")
		cfg.Password = ""
		cfg.OAuth2 = ts
		s := email.New(cfg)
		for range 2 {
			if _, err := s.Send(context.Background(), msg); err != nil {
				return err
			}
		}
		if m := srv.Mails(); len(m) != 2 || m[0].Mech != emailtest.XOAUTH2 {
			t.Errorf("mails %+v", m)
		}
		return nil
	}
	for _, tc := range []struct {
		name string
		cfg  func(ts *tokenServer, t *testing.T) email.OAuth2Config
	}{
		{"RefreshToken", func(ts *tokenServer, _ *testing.T) email.OAuth2Config {
			return email.OAuth2Config{TokenURL: ts.URL, ClientID: clientID, ClientSecret: clientSecret, RefreshToken: refreshToken,
				Scopes: []string{"https://mail.google.com/"}}
		}},
		{"ClientCredentials", func(ts *tokenServer, _ *testing.T) email.OAuth2Config {
			return email.OAuth2Config{TokenURL: ts.URL, ClientID: clientID, ClientSecret: clientSecret,
				Scopes: []string{"https://outlook.office365.com/.default"}}
		}},
		{"ServiceAccount", func(ts *tokenServer, t *testing.T) email.OAuth2Config {
			return email.OAuth2Config{CredentialsFile: ts.serviceAccount(t)}
		}},
	} {
		// Ensure the grant yields a token the server takes, fetched once for two sends.
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startTokenServer(t)
			srv := emailtest.Start(t, emailtest.Options{Mechs: xoauth})
			if err := send(t, srv, tc.cfg(ts, t)); err != nil {
				t.Fatal(err)
			}
			if n := ts.count(); n != 1 {
				t.Errorf("%d token requests, want 1 (cached)", n)
			}
		})
	}
	// Ensure a token file is read on every send: a sidecar's new token is used at once.
	t.Run("TokenFile", func(t *testing.T) {
		t.Parallel()
		p := filepath.Join(t.TempDir(), "token")
		os.WriteFile(p, []byte(emailtest.Token+"\n"), 0o600)
		srv := emailtest.Start(t, emailtest.Options{Mechs: xoauth})
		if err := send(t, srv, email.OAuth2Config{TokenFile: p}); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, []byte("expired-token-value"), 0o600)
		err := send(t, srv, email.OAuth2Config{TokenFile: p})
		if !errors.Is(err, email.ErrAuth) || strings.Contains(err.Error(), "expired-token-value") {
			t.Errorf("err = %v", err)
		}
	})
	// Ensure a refused grant is a permanent ErrToken naming the OAuth error and nothing it was sent or echoed.
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		ts := startTokenServer(t)
		srv := emailtest.Start(t, emailtest.Options{Mechs: xoauth})
		err := send(t, srv, email.OAuth2Config{TokenURL: ts.URL, ClientID: clientID, ClientSecret: clientSecret, RefreshToken: "revoked-refresh-value"})
		if !errors.Is(err, email.ErrToken) || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("err = %v", err)
		}
		if temp, _ := comm.IsTemporary(err); temp {
			t.Error("invalid_grant is not worth retrying")
		}
		for _, s := range []string{"revoked-refresh-value", clientSecret} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("secret in %q", err)
			}
		}
		if len(srv.Auths()) != 0 {
			t.Error("connected without a token")
		}
	})
	// Ensure a token the server refuses before its expiry (revoked) is dropped and a new one tried at once.
	t.Run("RevokedEarly", func(t *testing.T) {
		t.Parallel()
		ts := startTokenServer(t)
		ts.issue = []string{"revoked-token-value"}
		srv := emailtest.Start(t, emailtest.Options{Mechs: xoauth})
		if err := send(t, srv, email.OAuth2Config{TokenURL: ts.URL, ClientID: clientID, ClientSecret: clientSecret, RefreshToken: refreshToken}); err != nil {
			t.Fatal(err)
		}
		if n, a := ts.count(), srv.Auths(); n != 2 || len(a) != 3 {
			t.Errorf("%d token requests (want 2), AUTH tried %v (want 3: refused, then one per send)", n, a)
		}
	})
	// Ensure an unavailable token endpoint is temporary.
	t.Run("Unavailable", func(t *testing.T) {
		t.Parallel()
		ts := startTokenServer(t)
		ts.fail(503)
		srv := emailtest.Start(t, emailtest.Options{Mechs: xoauth})
		err := send(t, srv, email.OAuth2Config{TokenURL: ts.URL, ClientID: clientID, ClientSecret: clientSecret, RefreshToken: refreshToken})
		if temp, _ := comm.IsTemporary(err); !temp || !errors.Is(err, email.ErrToken) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestOAuth2ConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  email.OAuth2Config
		want string // "" = valid
	}{
		{"Zero", email.OAuth2Config{}, ""},
		{"NoTokenURL", email.OAuth2Config{ClientID: "c", RefreshToken: "r"}, "IT0_SMTP_OAUTH2_TOKEN_URL"},
		{"NoGrant", email.OAuth2Config{TokenURL: "https://t", ClientID: "c"}, "IT0_SMTP_OAUTH2_REFRESH_TOKEN or IT0_SMTP_OAUTH2_CLIENT_SECRET"},
		{"Several", email.OAuth2Config{TokenFile: "/t", CredentialsFile: "/c"}, "not several"},
		{"TokenFile", email.OAuth2Config{TokenFile: "/t"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("validate = %v, want %q", err, tc.want)
			}
		})
	}
	// Ensure a file that is not a service account key is refused with the setting's name.
	p := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(p, []byte(`{"type":"authorized_user"}`), 0o600)
	if _, err := email.NewTokenSource(email.OAuth2Config{CredentialsFile: p}, "u"); err == nil || !strings.Contains(err.Error(), "IT0_SMTP_OAUTH2_CREDENTIALS_FILE") {
		t.Errorf("err = %v", err)
	}
}
