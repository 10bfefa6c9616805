// Package wecom is comm's WeCom (企业微信) adapter: application messages to a user (with a cached access
// token, refreshed on expiry, and a button card when the callback is configured) and, when no application
// is configured, the group robot webhook mentioning the user; and the application's encrypted callback
// (callback.go), by which users' replies and button presses come back.
package wecom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	// Cards adds, to an application message that offers answers, a button card ("button_interaction")
	// whose presses come back on the callback; set it only when the callback is configured.
	Cards bool
	HTTP  *http.Client
	Now   func() time.Time
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
	codeTaskExists   = 42014 // a template card's task_id was used already
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

// APIError is WeCom's non-zero errcode answer.
type APIError struct {
	Op      string // the API called: gettoken, message/send, webhook
	Code    int
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("wecom %s: errcode %d: %s", e.Op, e.Code, e.Message)
}

// codeError turns a non-zero errcode into an error: system busy and rate limits are temporary.
func codeError(op string, r *result) error {
	return &comm.SendError{Temporary: r.ErrCode == codeBusy || r.ErrCode == codeRateLimit,
		Err: &APIError{Op: op, Code: r.ErrCode, Message: r.ErrMsg}}
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
	id, err := c.post(ctx, m.To, body)
	if err != nil {
		return "", err
	}
	if card := c.card(m); card != nil {
		// The markdown carries the whole text and the links; the card only the buttons. A retry after a
		// failed card resends the markdown, which WeCom's duplicate check (30 minutes) drops.
		_, err := c.post(ctx, m.To, card)
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == codeTaskExists {
			err = nil // the card of this message was sent before (a retry whose first answer was lost)
		}
		if err != nil {
			return "", fmt.Errorf("wecom button card: %w", err)
		}
	}
	return id, nil
}

// card is the button card of m (nil when m offers no button answers or cards are off): one button per
// action with callback data, whose key comes back as the callback's EventKey.
func (c *Client) card(m comm.OutboundMessage) map[string]any {
	if !c.cfg.Cards {
		return nil
	}
	var buttons []map[string]any
	for i, a := range m.Actions {
		if a.Data == "" || len(a.Data) > 1024 {
			continue
		}
		style := 1 // the first (approve) stands out; the others are plain
		if i > 0 {
			style = 2
		}
		buttons = append(buttons, map[string]any{"text": clipRunes(a.Label, 10), "style": style, "key": a.Data})
	}
	if len(buttons) == 0 {
		return nil
	}
	// task_id (letters, digits and _-@, at most 128 bytes) must be unique per app and stable across
	// retries of one message: it is derived from the message's key.
	seed := m.Key
	if seed == "" {
		seed = m.To + "\x00" + m.Subject + "\x00" + m.Text
	}
	sum := sha256.Sum256([]byte(seed))
	task := "it0-" + hex.EncodeToString(sum[:16])
	title := m.Subject
	if title == "" {
		title = "IT0"
	}
	return map[string]any{"touser": m.To, "msgtype": "template_card", "agentid": c.cfg.AgentID,
		"template_card": map[string]any{"card_type": "button_interaction", "task_id": task,
			"main_title":     map[string]string{"title": clipRunes(title, 26)},
			"sub_title_text": clipRunes(m.Text, 112), "button_list": buttons},
		"enable_duplicate_check": 1, "duplicate_check_interval": 1800}
}

func clipRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// post sends one application message to user to, refreshing the access token once when WeCom says it
// expired.
func (c *Client) post(ctx context.Context, to string, body map[string]any) (string, error) {
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
			return "", fmt.Errorf("wecom message/send: user %s is invalid or unlicensed", to)
		}
		return r.MsgID, nil
	}
}
