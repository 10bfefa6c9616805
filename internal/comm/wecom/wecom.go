// Package wecom is comm's WeCom (企业微信) adapter: application messages to a user (with a cached access
// token, refreshed on expiry) and, when no application is configured, the group robot webhook mentioning
// the user.
package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/vault"
)

// DefaultBaseURL is WeCom's server API.
const DefaultBaseURL = "https://qyapi.weixin.qq.com"

// Config configures WeCom. An application (CorpID, Secret, AgentID) is used when set; otherwise the group
// robot (WebhookKey, or a full WebhookURL).
type Config struct {
	CorpID     string
	Secret     vault.Secret
	AgentID    int
	WebhookKey vault.Secret
	WebhookURL vault.Secret // the robot's full URL (it carries the key)
	BaseURL    string
	HTTP       *http.Client
	Now        func() time.Time
}

// Client sends WeCom messages.
type Client struct {
	cfg     Config
	mu      sync.Mutex
	token   string
	expires time.Time
}

// New returns a client for cfg.
func New(cfg Config) *Client {
	cfg.BaseURL, cfg.HTTP = comm.Endpoint(cfg.BaseURL, DefaultBaseURL, cfg.HTTP)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}
}

func (c *Client) app() bool {
	return c.cfg.CorpID != "" && !c.cfg.Secret.IsZero() && c.cfg.AgentID != 0
}
func (c *Client) robot() bool {
	return !c.cfg.WebhookKey.IsZero() || !c.cfg.WebhookURL.IsZero()
}

// Channel implements comm.Sender.
func (c *Client) Channel() string { return comm.ChannelWeCom }

// Available implements comm.Sender.
func (c *Client) Available() error {
	if c.app() || c.robot() {
		return nil
	}
	return comm.Unavailable(comm.ChannelWeCom, "IT0_WECOM_CORP_ID+IT0_WECOM_SECRET+IT0_WECOM_AGENT_ID", "or IT0_WECOM_WEBHOOK_KEY")
}

// result is every WeCom answer's envelope.
type result struct {
	ErrCode      int    `json:"errcode"`
	ErrMsg       string `json:"errmsg"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	InvalidUser  string `json:"invaliduser"`
	Unlicensed   string `json:"unlicenseduser"`
	MsgID        string `json:"msgid"`
	ResponseCode string `json:"response_code"`
}

// Error codes WeCom documents.
const (
	codeBusy         = -1
	codeInvalidToken = 40014
	codeExpiredToken = 42001
	codeRateLimit    = 45009
)

func (c *Client) do(ctx context.Context, method, u string, body any) (*result, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("wecom: bad URL")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return nil, comm.NetError("wecom", err) // drops the URL: it carries the key or the token
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return nil, comm.HTTPError(resp, 0, fmt.Errorf("wecom: HTTP %d", resp.StatusCode))
	}
	var r result
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("wecom: unexpected answer")
	}
	return &r, nil
}

// codeError turns a non-zero errcode into an error: system busy and rate limits are temporary.
func codeError(op string, r *result) error {
	return &comm.SendError{Temporary: r.ErrCode == codeBusy || r.ErrCode == codeRateLimit,
		Err: fmt.Errorf("wecom %s: errcode %d: %s", op, r.ErrCode, r.ErrMsg)}
}

// accessToken returns the cached token, fetching a new one when it is missing, near expiry, or refresh.
func (c *Client) accessToken(ctx context.Context, refresh bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !refresh && c.token != "" && c.cfg.Now().Before(c.expires) {
		return c.token, nil
	}
	q := url.Values{"corpid": {c.cfg.CorpID}, "corpsecret": {c.cfg.Secret.Reveal()}}
	r, err := c.do(ctx, http.MethodGet, c.cfg.BaseURL+"/cgi-bin/gettoken?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	if r.ErrCode != 0 || r.AccessToken == "" {
		return "", codeError("gettoken", r)
	}
	// Refresh five minutes early so a token never expires mid-send.
	c.token, c.expires = r.AccessToken, c.cfg.Now().Add(time.Duration(r.ExpiresIn)*time.Second-5*time.Minute)
	return c.token, nil
}

// content renders m as WeCom markdown: the subject in bold, the text, and the answer links.
func content(m comm.OutboundMessage) string {
	var b strings.Builder
	if m.Subject != "" {
		fmt.Fprintf(&b, "**%s**\n", m.Subject)
	}
	b.WriteString(m.Text)
	for _, a := range m.Actions {
		if a.URL != "" {
			fmt.Fprintf(&b, "\n[%s](%s)", a.Label, a.URL)
		}
	}
	s := b.String()
	for len(s) > 4096 { // the byte limit of markdown content
		r := []rune(s)
		s = string(r[:len(r)*9/10])
	}
	return s
}

// Send implements comm.Sender: an application message to user m.To, or the robot's group message
// mentioning them.
func (c *Client) Send(ctx context.Context, m comm.OutboundMessage) (string, error) {
	if c.app() {
		return c.sendApp(ctx, m)
	}
	u := c.cfg.WebhookURL.Reveal()
	if u == "" {
		u = c.cfg.BaseURL + "/cgi-bin/webhook/send?key=" + url.QueryEscape(c.cfg.WebhookKey.Reveal())
	}
	text := content(m)
	if m.To != "" {
		text += "\n<@" + m.To + ">"
	}
	r, err := c.do(ctx, http.MethodPost, u, map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": text}})
	if err != nil {
		return "", err
	}
	if r.ErrCode != 0 {
		return "", codeError("webhook", r)
	}
	return "", nil
}

func (c *Client) sendApp(ctx context.Context, m comm.OutboundMessage) (string, error) {
	body := map[string]any{"touser": m.To, "msgtype": "markdown", "agentid": c.cfg.AgentID,
		"markdown": map[string]string{"content": content(m)}, "safe": 0, "enable_duplicate_check": 1, "duplicate_check_interval": 1800}
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx, attempt > 0)
		if err != nil {
			return "", err
		}
		r, err := c.do(ctx, http.MethodPost, c.cfg.BaseURL+"/cgi-bin/message/send?access_token="+url.QueryEscape(tok), body)
		if err != nil {
			return "", err
		}
		switch {
		case (r.ErrCode == codeInvalidToken || r.ErrCode == codeExpiredToken) && attempt == 0:
			continue // refresh once and retry
		case r.ErrCode != 0:
			return "", codeError("message/send", r)
		case r.InvalidUser != "" || r.Unlicensed != "":
			// errcode 0 can still be a partial failure: our one recipient was not reached.
			return "", fmt.Errorf("wecom message/send: user %s is invalid or unlicensed", m.To)
		}
		return r.MsgID, nil
	}
}
