// Package twilio is comm's Twilio adapter: SMS and voice calls over the REST API (2010-04-01), and the
// X-Twilio-Signature check of inbound webhooks. It speaks the documented HTTP API directly (no SDK).
package twilio

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/vault"
)

// DefaultBaseURL is Twilio's API.
const DefaultBaseURL = "https://api.twilio.com"

// Config configures the account. Empty AccountSID, AuthToken or From leave both channels unavailable.
type Config struct {
	AccountSID string
	AuthToken  vault.Secret
	From       string // the Twilio number, E.164
	BaseURL    string // default DefaultBaseURL; tests point it at a local server
	HTTP       *http.Client
	// Media, when set and ready, turns escalation calls into voice conversations on a Media Stream
	// instead of <Say> + keypad.
	Media MediaStreams
}

// MediaStreams is the voice gateway as calls need it.
type MediaStreams interface {
	// Ready returns nil when calls can be conversations (speech engines and a public URL configured).
	Ready() error
	// Prepare readies the voice session of call m and returns the wss:// stream URL and the <Parameter>s
	// that authenticate the stream.
	Prepare(ctx context.Context, m comm.OutboundMessage) (url string, params map[string]string, err error)
}

// Client talks to one Twilio account.
type Client struct{ cfg Config }

// New returns a client for cfg.
func New(cfg Config) *Client {
	cfg.BaseURL, cfg.HTTP = comm.Endpoint(cfg.BaseURL, DefaultBaseURL, cfg.HTTP)
	return &Client{cfg: cfg}
}

// SMS is the SMS channel.
func (c *Client) SMS() comm.Sender { return smsSender{c} }

// Voice is the phone channel: a call that speaks the escalation and asks for 1 (approve) or 2 (reject).
func (c *Client) Voice() comm.Sender { return voiceSender{c} }

func (c *Client) available(channel string) error {
	var missing []string
	if c.cfg.AccountSID == "" {
		missing = append(missing, "IT0_TWILIO_ACCOUNT_SID")
	}
	if c.cfg.AuthToken.IsZero() {
		missing = append(missing, "IT0_TWILIO_AUTH_TOKEN")
	}
	if c.cfg.From == "" {
		missing = append(missing, "IT0_TWILIO_PHONE_NUMBER")
	}
	if len(missing) > 0 {
		return comm.Unavailable(channel, missing...)
	}
	return nil
}

// apiError is Twilio's error body.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// post sends form to resource (Messages.json, Calls.json) and returns the created resource's sid.
func (c *Client) post(ctx context.Context, resource string, form url.Values) (string, error) {
	u := fmt.Sprintf("%s/2010-04-01/Accounts/%s/%s", c.cfg.BaseURL, url.PathEscape(c.cfg.AccountSID), resource)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(c.cfg.AccountSID, c.cfg.AuthToken.Reveal())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return "", comm.NetError("twilio "+resource, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e apiError
		json.Unmarshal(body, &e)
		return "", comm.HTTPError(resp, 0, fmt.Errorf("twilio %s: error %d: %s", resource, e.Code, e.Message))
	}
	var ok struct {
		SID    string `json:"sid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &ok); err != nil || ok.SID == "" {
		return "", fmt.Errorf("twilio %s: unexpected answer (no sid)", resource)
	}
	return ok.SID, nil
}

type smsSender struct{ c *Client }

func (s smsSender) Channel() string  { return comm.ChannelSMS }
func (s smsSender) Available() error { return s.c.available(comm.ChannelSMS) }

// Send posts Messages.json with To, From and Body (clipped to Twilio's 1600 characters).
func (s smsSender) Send(ctx context.Context, m comm.OutboundMessage) (string, error) {
	body := []rune(m.Text)
	if len(body) > 1600 {
		body = append(body[:1599], '…')
	}
	return s.c.post(ctx, "Messages.json", url.Values{"To": {m.To}, "From": {s.c.cfg.From}, "Body": {string(body)}})
}

type voiceSender struct{ c *Client }

func (v voiceSender) Channel() string  { return comm.ChannelPhone }
func (v voiceSender) Available() error { return v.c.available(comm.ChannelPhone) }

// Mode says how calls go: a voice conversation, or <Say> + keypad when the gateway is not ready (and why).
func (v voiceSender) Mode() string {
	if v.c.cfg.Media == nil {
		return "keypad: <Say> and 1/2 on the keypad (the voice module is not running)"
	}
	if err := v.c.cfg.Media.Ready(); err != nil {
		return "keypad: <Say> and 1/2 on the keypad (" + err.Error() + ")"
	}
	return "conversation: the agent speaks and understands spoken answers (Media Streams)"
}

// Send posts Calls.json with inline TwiML: a Media Stream conversation when the voice gateway is ready
// (the keypad script follows it, in case the stream fails), else the speech and a keypad digit.
func (v voiceSender) Send(ctx context.Context, m comm.OutboundMessage) (string, error) {
	twiml := TwiML(m)
	if md := v.c.cfg.Media; md != nil && m.Data["voice_session"] != "" && md.Ready() == nil {
		u, params, err := md.Prepare(ctx, m)
		if err != nil {
			return "", fmt.Errorf("prepare the voice session: %w", err)
		}
		twiml = StreamTwiML(u, params, m)
	}
	return v.c.post(ctx, "Calls.json", url.Values{"To": {m.To}, "From": {v.c.cfg.From}, "Twiml": {twiml}, "Timeout": {"30"}})
}

// StreamTwiML connects the call to a bidirectional Media Stream at streamURL with params (sorted by
// name). When the stream ends without IT0 hanging up (it failed), the keypad script of m follows.
func StreamTwiML(streamURL string, params map[string]string, m comm.OutboundMessage) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="%s">`, html.EscapeString(streamURL))
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, `<Parameter name="%s" value="%s"/>`, html.EscapeString(k), html.EscapeString(params[k]))
	}
	b.WriteString(`</Stream></Connect>`)
	fallback := strings.TrimPrefix(TwiML(m), `<?xml version="1.0" encoding="UTF-8"?><Response>`)
	b.WriteString(fallback)
	return b.String()
}

// Hangup ends call callSID (POST Calls/{sid}.json with Status=completed).
func (c *Client) Hangup(ctx context.Context, callSID string) error {
	if err := c.available(comm.ChannelPhone); err != nil {
		return err
	}
	_, err := c.post(ctx, "Calls/"+url.PathEscape(callSID)+".json", url.Values{"Status": {"completed"}})
	return err
}

// TwiML is the call's script: the speech inside a <Gather> of one digit posted to m.GatherURL (when set),
// then the speech once more.
func TwiML(m comm.OutboundMessage) string {
	lang := html.EscapeString(m.Language)
	say := fmt.Sprintf(`<Say language="%s">%s</Say>`, lang, html.EscapeString(m.Speech))
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Response>`)
	if m.GatherURL != "" {
		fmt.Fprintf(&b, `<Gather numDigits="1" timeout="10" method="POST" action="%s">%s</Gather>`, html.EscapeString(m.GatherURL), say)
	}
	b.WriteString(say)
	b.WriteString(`</Response>`)
	return b.String()
}

// Reply is the TwiML answer to an inbound webhook: a message back (SMS) or speech (a call's keypad).
func Reply(text string, voice bool) string {
	if text == "" {
		return `<?xml version="1.0" encoding="UTF-8"?><Response/>`
	}
	verb := "Message"
	if voice {
		verb = "Say"
	}
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Response><%s>%s</%s></Response>`, verb, html.EscapeString(text), verb)
}

// Signature computes X-Twilio-Signature for a form POST to fullURL: HMAC-SHA1 keyed by the auth token over
// the URL followed by each parameter's name and value, sorted by name (then value), Base64-encoded.
func Signature(authToken, fullURL string, form map[string][]string) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		vs := append([]string(nil), form[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ValidateSignature reports whether signature is Twilio's for a POST of form to fullURL (the URL as
// configured in Twilio). Like Twilio's own helpers, it accepts the URL with or without its default port.
func (c *Client) ValidateSignature(fullURL string, form map[string][]string, signature string) bool {
	if c.cfg.AuthToken.IsZero() || signature == "" {
		return false
	}
	for _, u := range urlVariants(fullURL) {
		if hmac.Equal([]byte(Signature(c.cfg.AuthToken.Reveal(), u, form)), []byte(signature)) {
			return true
		}
	}
	return false
}

func urlVariants(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	out := []string{raw}
	def := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	switch port := u.Port(); {
	case port == "" && def != "":
		v := *u
		v.Host = u.Host + ":" + def
		out = append(out, v.String())
	case port == def:
		v := *u
		v.Host = u.Hostname()
		out = append(out, v.String())
	}
	return out
}
