// Package fcm is comm's Firebase Cloud Messaging adapter: HTTP v1 messages:send, authorised with an OAuth2
// access token obtained from a service account (a JWT signed with its RSA key, exchanged at its token URI).
// No SDK: the few documented HTTP calls are enough.
package fcm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
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
	email   string
	keyID   string
	key     *rsa.PrivateKey
	err     error // why the channel is unavailable

	mu      sync.Mutex
	token   string
	expires time.Time
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
	rk, ok := k.(*rsa.PrivateKey)
	if err != nil || !ok {
		return errors.New("the service account's private_key is not an RSA key")
	}
	c.project, c.email, c.keyID, c.key = sa.ProjectID, sa.ClientEmail, sa.PrivateKeyID, rk
	if c.cfg.TokenURL == "" {
		c.cfg.TokenURL = sa.TokenURI
	}
	if c.cfg.TokenURL == "" {
		c.cfg.TokenURL = "https://oauth2.googleapis.com/token"
	}
	return nil
}

// Channel implements comm.Sender.
func (c *Client) Channel() string { return comm.ChannelPush }

// Available implements comm.Sender.
func (c *Client) Available() error { return c.err }

// assertion is the signed JWT (RS256) the token endpoint exchanges for an access token.
func (c *Client) assertion(now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": c.keyID})
	cl, _ := json.Marshal(map[string]any{"iss": c.email, "scope": scope, "aud": c.cfg.TokenURL, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(cl)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// accessToken returns a cached token, or exchanges a new assertion when it is missing, close to expiry or
// refresh is set.
func (c *Client) accessToken(ctx context.Context, refresh bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if !refresh && c.token != "" && now.Before(c.expires) {
		return c.token, nil
	}
	jwt, err := c.assertion(now)
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jwt}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", errors.New("fcm: bad token URL")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return "", comm.NetError("fcm token", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.Unmarshal(body, &tr)
	if resp.StatusCode/100 != 2 || tr.AccessToken == "" {
		return "", comm.HTTPError(resp, 0, fmt.Errorf("fcm token: %s %s", tr.Error, tr.Description))
	}
	// Reuse it until five minutes before it expires.
	c.token, c.expires = tr.AccessToken, now.Add(time.Duration(tr.ExpiresIn)*time.Second-5*time.Minute)
	return c.token, nil
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
		tok, err := c.accessToken(ctx, attempt > 0)
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
