// Package fcm is comm's Firebase Cloud Messaging adapter: HTTP v1 messages:send, authorised with an OAuth2
// access token for a service account. golang.org/x/oauth2/google signs and exchanges the token; the send
// itself is one documented HTTP call, so no Firebase SDK.
package fcm

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/vault"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"golang.org/x/oauth2/jwt"
)

// Defaults.
const (
	DefaultBaseURL = "https://fcm.googleapis.com"
	scope          = "https://www.googleapis.com/auth/firebase.messaging"
)

// Config configures FCM. Credentials (the service-account JSON) or CredentialsFile; neither leaves the
// channel unavailable.
type Config struct {
	CredentialsFile string
	Credentials     vault.Secret
	BaseURL         string // default DefaultBaseURL
	TokenURL        string // default: the service account's token_uri
	HTTP            *http.Client
	Now             func() time.Time
}

// serviceAccount is the part of the key file we use.
type serviceAccount struct {
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// Client sends pushes for one Firebase project.
type Client struct {
	cfg     Config
	project string
	jwt     *jwt.Config // the service account's token exchange
	err     error       // why the channel is unavailable

	mu sync.Mutex
	ts oauth2.TokenSource // caches the token until shortly before it expires
}

// New returns a client; a bad credentials file makes the channel unavailable (Available says why).
func New(cfg Config) *Client {
	cfg.BaseURL, cfg.HTTP = comm.Endpoint(cfg.BaseURL, DefaultBaseURL, cfg.HTTP)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg}
	c.err = c.load()
	return c
}

func (c *Client) load() error {
	raw := []byte(c.cfg.Credentials.Reveal())
	if len(raw) == 0 && c.cfg.CredentialsFile != "" {
		b, err := os.ReadFile(c.cfg.CredentialsFile)
		if err != nil {
			return fmt.Errorf("IT0_FCM_CREDENTIALS_FILE: %w", err)
		}
		raw = b
	}
	if len(raw) == 0 {
		return comm.Unavailable(comm.ChannelPush, "IT0_FCM_CREDENTIALS_FILE")
	}
	var sa serviceAccount
	if err := json.Unmarshal(raw, &sa); err != nil {
		return errors.New("IT0_FCM_CREDENTIALS_FILE is not a service-account JSON key")
	}
	if sa.ProjectID == "" || sa.ClientEmail == "" || sa.PrivateKey == "" {
		return errors.New("IT0_FCM_CREDENTIALS_FILE lacks project_id, client_email or private_key")
	}
	blk, _ := pem.Decode([]byte(sa.PrivateKey))
	if blk == nil {
		return errors.New("the service account's private_key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		if k1, err1 := x509.ParsePKCS1PrivateKey(blk.Bytes); err1 == nil {
			k, err = k1, nil
		}
	}
	if _, ok := k.(*rsa.PrivateKey); err != nil || !ok {
		return errors.New("the service account's private_key is not an RSA key")
	}
	conf, err := google.JWTConfigFromJSON(raw, scope)
	if err != nil {
		return fmt.Errorf("IT0_FCM_CREDENTIALS_FILE: %w", err)
	}
	if c.cfg.TokenURL != "" {
		conf.TokenURL = c.cfg.TokenURL
	}
	c.project, c.jwt = sa.ProjectID, conf
	return nil
}

// Channel implements comm.Sender.
func (c *Client) Channel() string { return comm.ChannelPush }

// Available implements comm.Sender.
func (c *Client) Available() error { return c.err }

// accessToken returns the cached token, or a new one when it is missing or close to expiry; refresh drops
// the cached one first (FCM refused it).
func (c *Client) accessToken(refresh bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if refresh || c.ts == nil {
		// The token source outlives the send that creates it, so it gets its own context: only the HTTP
		// client (timeouts, test servers) is taken from the configuration.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, c.cfg.HTTP)
		c.ts = oauth2.ReuseTokenSource(nil, c.jwt.TokenSource(ctx))
	}
	tok, err := c.ts.Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			return "", comm.HTTPError(re.Response, 0, fmt.Errorf("fcm token: %s %s", re.ErrorCode, re.ErrorDescription))
		}
		return "", comm.NetError("fcm token", err)
	}
	return tok.AccessToken, nil
}

// Send implements comm.Sender: one high-priority notification with data to device token m.To.
func (c *Client) Send(ctx context.Context, m comm.OutboundMessage) (string, error) {
	if c.err != nil {
		return "", c.err
	}
	data := map[string]string{}
	for k, v := range m.Data {
		data[k] = v
	}
	for _, a := range m.Actions {
		if a.URL != "" && strings.HasPrefix(a.Data, "y:") {
			data["approve_url"] = a.URL
		} else if a.URL != "" && strings.HasPrefix(a.Data, "n:") {
			data["reject_url"] = a.URL
		}
	}
	collapse := m.Data["approval_id"]
	msg := map[string]any{"message": map[string]any{
		"token":        m.To,
		"notification": map[string]string{"title": m.Subject, "body": clip(m.Text, 1000)},
		"data":         data,
		"android":      map[string]any{"priority": "HIGH", "ttl": "3600s", "collapse_key": collapse, "notification": map[string]string{"channel_id": "approvals"}},
		"apns":         map[string]any{"headers": map[string]string{"apns-priority": "10"}, "payload": map[string]any{"aps": map[string]string{"sound": "default"}}},
	}}
	b, _ := json.Marshal(msg)
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(attempt > 0)
		if err != nil {
			return "", err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+"/v1/projects/"+url.PathEscape(c.project)+"/messages:send", bytes.NewReader(b))
		if err != nil {
			return "", errors.New("fcm: bad base URL")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.cfg.HTTP.Do(req)
		if err != nil {
			return "", comm.NetError("fcm send", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			continue // the access token was revoked or expired early: get a new one once
		}
		if resp.StatusCode/100 != 2 {
			var e struct {
				Error struct {
					Message string `json:"message"`
					Status  string `json:"status"`
					Details []struct {
						ErrorCode string `json:"errorCode"`
					} `json:"details"`
				} `json:"error"`
			}
			json.Unmarshal(body, &e)
			code := e.Error.Status
			for _, d := range e.Error.Details {
				if d.ErrorCode != "" {
					code = d.ErrorCode
				}
			}
			if code == "UNREGISTERED" {
				// The app was uninstalled or the token expired: the token must not be used again.
				return "", comm.HTTPError(resp, 0, fmt.Errorf("fcm send: UNREGISTERED: %w: %s", comm.ErrAddressGone, e.Error.Message))
			}
			return "", comm.HTTPError(resp, 0, fmt.Errorf("fcm send: %s: %s", code, e.Error.Message))
		}
		var ok struct {
			Name string `json:"name"`
		}
		json.Unmarshal(body, &ok)
		return ok.Name, nil
	}
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
