package comm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sender sends on one channel through one provider.
type Sender interface {
	// Channel is the channel it serves (ChannelSMS…).
	Channel() string
	// Available returns nil when the provider is configured, else an error naming the missing setting.
	Available() error
	// Send delivers m and returns the provider's id for it. A *SendError with Temporary set (HTTP 5xx,
	// 429, a network failure) is retried later; any other error fails the message.
	Send(ctx context.Context, m OutboundMessage) (providerID string, err error)
}

// OutboundMessage is one message to one address, rendered for its channel.
type OutboundMessage struct {
	TenantID string
	To       string // the contact's address on the channel
	Subject  string
	Text     string // plain text (SMS, IM, speech, the text part of email)
	HTML     string // email only; empty = text only
	// Actions are the answers offered: Telegram inline buttons, push data, email links.
	Actions []Action
	// Data travels with pushes (FCM data, the in-app event): string values only.
	Data map[string]string
	// Speech is what a phone call says (its TwiML <Say>); Gather asks for 1 (approve) or 2 (reject) when
	// GatherURL is set.
	Speech    string
	Language  string // BCP 47 for speech: zh-CN or en-US
	GatherURL string
	Key       string // idempotency key
}

// Action is one answer a recipient can give with a tap or a click.
type Action struct {
	Label string
	// Data is the callback payload (Telegram callback_data, ≤64 bytes), e.g. "y:<approval id>".
	Data string
	// URL is a signed answer link.
	URL string
}

// ErrAddressGone is wrapped by a send error when the provider says the address no longer exists (FCM's
// UNREGISTERED device token): the address is removed from the contact so that nothing is sent to it again.
var ErrAddressGone = errors.New("the address no longer exists")

// SendError is a provider's refusal or failure.
type SendError struct {
	Status     int           // the provider's HTTP status, 0 for network errors
	Temporary  bool          // worth retrying: 5xx, 429, network
	RetryAfter time.Duration // the provider's Retry-After, if it said
	Err        error
}

// Error says what the provider answered.
func (e *SendError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("HTTP %d: %v", e.Status, e.Err)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// HTTPError classifies a provider's non-2xx answer: 429 and 5xx are temporary, with Retry-After (seconds)
// when the response carries it; retryAfter overrides it when the provider puts it in the body.
func HTTPError(resp *http.Response, retryAfter time.Duration, err error) *SendError {
	e := &SendError{Status: resp.StatusCode, Err: err}
	e.Temporary = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	if retryAfter > 0 {
		e.RetryAfter = retryAfter
	}
	return e
}

// NetError wraps a transport failure of op (the request never got an answer): temporary. The URL is
// dropped from a *url.Error, since some providers put credentials in it (Telegram's bot token, WeCom's
// robot key).
func NetError(op string, err error) *SendError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &SendError{Temporary: true, Err: fmt.Errorf("%s: %w", op, err)}
}

// IsTemporary reports whether err is worth retrying, and after how long the provider asked to wait.
func IsTemporary(err error) (bool, time.Duration) {
	var se *SendError
	if errors.As(err, &se) {
		return se.Temporary, se.RetryAfter
	}
	return false, 0
}

// NewHTTPClient is the HTTP client providers use by default: timeout per request, and enough idle
// connections per host that an escalation step reaching many contacts at once reuses them instead of
// opening a connection per message (net/http keeps only 2 by default).
func NewHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Timeout: timeout, Transport: t}
}

// Endpoint fills a provider's defaults: base (without a trailing slash, def when empty) and hc (a
// NewHTTPClient with a 15 s timeout when nil).
func Endpoint(base, def string, hc *http.Client) (string, *http.Client) {
	if base == "" {
		base = def
	}
	if hc == nil {
		hc = NewHTTPClient(15 * time.Second)
	}
	return strings.TrimRight(base, "/"), hc
}

// ErrUnavailable is returned by Available when a provider is not configured.
var ErrUnavailable = errors.New("channel not configured")

// Unavailable says which settings a channel lacks.
func Unavailable(channel string, settings ...string) error {
	return fmt.Errorf("%w: %s needs %s", ErrUnavailable, channel, strings.Join(settings, ", "))
}
