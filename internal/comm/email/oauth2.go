package email

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/google"

	"github.com/it0/it0/internal/vault"
)

// OAuth2Config says where XOAUTH2 access tokens come from: exactly one of
//   - TokenURL + ClientID (+ ClientSecret) + RefreshToken: the refresh-token grant, for a mailbox that
//     consented once (Gmail, Microsoft 365 delegated);
//   - TokenURL + ClientID + ClientSecret without RefreshToken: the client-credentials grant (Microsoft 365
//     app-only SMTP, scope https://outlook.office365.com/.default);
//   - CredentialsFile: a Google service account's JSON key with domain-wide delegation, acting as Subject
//     (scope https://mail.google.com/);
//   - TokenFile: a file another process keeps fresh with a current access token, read on every send.
//
// Tokens are cached until shortly before they expire, and fetched again at once when the server refuses
// one.
type OAuth2Config struct {
	TokenURL        string
	ClientID        string
	ClientSecret    vault.Secret
	RefreshToken    vault.Secret
	Scopes          []string
	CredentialsFile string
	Subject         string // the mailbox a service account acts as (default: the SMTP user)
	TokenFile       string
	HTTP            *http.Client // default: 15 s timeout
}

// IsZero reports whether no token source is configured.
func (c OAuth2Config) IsZero() bool {
	return c.TokenURL == "" && c.ClientID == "" && c.ClientSecret.IsZero() && c.RefreshToken.IsZero() &&
		c.CredentialsFile == "" && c.TokenFile == ""
}

// Validate checks that exactly one source is complete, naming the settings.
func (c OAuth2Config) Validate() error {
	n := 0
	if c.TokenURL != "" || c.ClientID != "" || !c.ClientSecret.IsZero() || !c.RefreshToken.IsZero() {
		n++
		var missing []string
		if c.TokenURL == "" {
			missing = append(missing, "IT0_SMTP_OAUTH2_TOKEN_URL")
		}
		if c.ClientID == "" {
			missing = append(missing, "IT0_SMTP_OAUTH2_CLIENT_ID")
		}
		if c.RefreshToken.IsZero() && c.ClientSecret.IsZero() {
			missing = append(missing, "IT0_SMTP_OAUTH2_REFRESH_TOKEN or IT0_SMTP_OAUTH2_CLIENT_SECRET")
		}
		if len(missing) > 0 {
			return fmt.Errorf("SMTP OAuth2 token endpoint: set %s", strings.Join(missing, ", "))
		}
	}
	if c.CredentialsFile != "" {
		n++
	}
	if c.TokenFile != "" {
		n++
	}
	if n > 1 {
		return errors.New("SMTP OAuth2: set one of IT0_SMTP_OAUTH2_TOKEN_URL (with client id), IT0_SMTP_OAUTH2_CREDENTIALS_FILE or IT0_SMTP_OAUTH2_TOKEN_FILE, not several")
	}
	return nil
}

// NewTokenSource returns the token source c describes, or nil when c is zero. user is the SMTP user (the
// default Subject of a service account).
func NewTokenSource(c OAuth2Config, user string) (oauth2.TokenSource, error) {
	if c.IsZero() {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 15 * time.Second}
	}
	// The token sources keep this ctx for their HTTP requests: it carries only the client, never a
	// deadline, because it outlives any one send.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, c.HTTP)
	switch {
	case c.TokenFile != "":
		return tokenFile(c.TokenFile), nil
	case c.CredentialsFile != "":
		b, err := os.ReadFile(c.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("IT0_SMTP_OAUTH2_CREDENTIALS_FILE: %w", err)
		}
		scopes := c.Scopes
		if len(scopes) == 0 {
			scopes = []string{"https://mail.google.com/"}
		}
		jc, err := google.JWTConfigFromJSON(b, scopes...)
		if err != nil {
			return nil, fmt.Errorf("IT0_SMTP_OAUTH2_CREDENTIALS_FILE: not a service account key: %w", err)
		}
		jc.Subject = cmpOr(c.Subject, user)
		return &TokenSource{fetch: func() (*oauth2.Token, error) { return jc.TokenSource(ctx).Token() }}, nil
	case !c.RefreshToken.IsZero():
		oc := &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret.Reveal(), Scopes: c.Scopes,
			Endpoint: oauth2.Endpoint{TokenURL: c.TokenURL}}
		refresh := c.RefreshToken.Reveal()
		return &TokenSource{fetch: func() (*oauth2.Token, error) {
			t, err := oc.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
			if err == nil && t.RefreshToken != "" {
				refresh = t.RefreshToken // the endpoint rotated it (Microsoft does): the old one may stop working
			}
			return t, err
		}}, nil
	default:
		cc := &clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret.Reveal(), TokenURL: c.TokenURL, Scopes: c.Scopes}
		return &TokenSource{fetch: func() (*oauth2.Token, error) { return cc.Token(ctx) }}, nil
	}
}

// TokenSource caches an access token until shortly before it expires, and forgets it when the SMTP
// server refuses it (a token revoked before its expiry), so that the next send fetches a new one.
type TokenSource struct {
	fetch func() (*oauth2.Token, error) // called with mu held: one fetch at a time

	mu  sync.Mutex
	tok *oauth2.Token
}

// Token implements oauth2.TokenSource.
func (s *TokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Valid() { // false for nil, and from 10 s before the expiry
		return s.tok, nil
	}
	t, err := s.fetch()
	if err != nil {
		return nil, err
	}
	s.tok = t
	return t, nil
}

// Forget drops the cached token.
func (s *TokenSource) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tok = nil
}

// tokenFile reads a current access token from a file on every call.
type tokenFile string

// Token implements oauth2.TokenSource.
func (f tokenFile) Token() (*oauth2.Token, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("IT0_SMTP_OAUTH2_TOKEN_FILE: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return nil, errors.New("IT0_SMTP_OAUTH2_TOKEN_FILE is empty")
	}
	return &oauth2.Token{AccessToken: tok, TokenType: "Bearer"}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
