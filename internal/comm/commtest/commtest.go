// Package commtest runs stand-ins for comm's providers on loopback, for tests of the modules that send:
// a real SMTP server (emailtest's) with STARTTLS and AUTH, and one HTTP server that answers
// Twilio's, Telegram's and WeCom's documented endpoints and records what it was sent.
package commtest

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/email"
	"github.com/it0/it0/internal/comm/email/emailtest"
	"github.com/it0/it0/internal/comm/telegram"
	"github.com/it0/it0/internal/comm/twilio"
	"github.com/it0/it0/internal/comm/wecom"
)

// Credentials the stand-ins accept.
const (
	TwilioSID      = "AC123"
	TwilioToken    = "twilio-auth-token"
	TwilioNumber   = "+15005550006"
	TelegramToken  = "123456:ABC-bot-token"
	TelegramSecret = "hook_secret-1"
	WeComKey       = "robot-key"
)

// SMTPServer is emailtest's real SMTP server with AUTH PLAIN as emailtest.User/emailtest.Password and a
// certificate of its test CA, for the modules that send mail.
type SMTPServer struct{ *emailtest.Server }

// StartSMTP starts an SMTP server, stopped when the test ends; implicit selects TLS from the first byte.
func StartSMTP(tb testing.TB, implicit bool) *SMTPServer {
	tb.Helper()
	mode := emailtest.StartTLS
	if implicit {
		mode = emailtest.Implicit
	}
	return &SMTPServer{emailtest.Start(tb, emailtest.Options{TLS: mode})}
}

// Config is an email.Config for this server (mode: email.TLSStartTLS or email.TLSImplicit).
func (s *SMTPServer) Config(mode string) email.Config {
	return email.Config{Host: s.Host, Port: s.Port, Username: emailtest.User, Password: emailtest.Password, From: "IT0 <it0@example.com>",
		TLS: mode, TLSConfig: &tls.Config{RootCAs: s.Pool}}
}

// Sent is one request the provider server took.
type Sent struct {
	Channel string // sms, phone, telegram, wecom
	To      string
	Body    string // the SMS body, the call's TwiML, the IM text
	At      time.Time
}

// Provider answers like Twilio (Messages.json, Calls.json, a hangup on Calls/{sid}.json), the Telegram Bot API (sendMessage,
// answerCallbackQuery) and the WeCom group robot, checking their credentials, and records every send with
// the time of its clock.
type Provider struct {
	URL string
	now func() time.Time

	mu    sync.Mutex
	sent  []Sent
	seq   int
	wait  chan struct{} // closed and replaced on every send
	calls map[string]int
	fails []failure
	hangs []string // the SIDs of the calls ended (Calls/{sid}.json with Status=completed)
}

// TwilioCallSID is the SID the provider gives every call it places.
const TwilioCallSID = "CA0123456789abcdef0123456789abcdef"

// failure is a canned error answer for the next Twilio requests.
type failure struct {
	status     int
	retryAfter string
}

// FailTwilio makes the next n Twilio requests fail with status (429 or 5xx, as Twilio answers them),
// with Retry-After retryAfter when not empty.
func (p *Provider) FailTwilio(n, status int, retryAfter string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range n {
		p.fails = append(p.fails, failure{status, retryAfter})
	}
}

// NewProvider starts the server, stopped when the test ends. now stamps each send (a fake clock, or
// time.Now in benchmarks).
func NewProvider(tb testing.TB, now func() time.Time) *Provider {
	p := &Provider{now: now, wait: make(chan struct{}), calls: map[string]int{}}
	srv := httptest.NewServer(p)
	tb.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *Provider) record(s Sent) {
	p.mu.Lock()
	s.At = p.now()
	p.sent = append(p.sent, s)
	p.seq++
	close(p.wait)
	p.wait = make(chan struct{})
	p.mu.Unlock()
}

// Sent returns the sends so far, of channel when given.
func (p *Provider) Sent(channel string) []Sent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Sent
	for _, s := range p.sent {
		if channel == "" || s.Channel == channel {
			out = append(out, s)
		}
	}
	return out
}

// Calls counts requests to a Telegram method ("answerCallbackQuery").
func (p *Provider) Calls(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[method]
}

// Hangups returns the SIDs of the calls IT0 ended, in order.
func (p *Provider) Hangups() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.hangs)
}

// Changed returns a channel closed at the next send.
func (p *Provider) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wait
}

// ServeHTTP answers one provider request.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch path := r.URL.Path; {
	case strings.HasPrefix(path, "/2010-04-01/Accounts/"+TwilioSID+"/"):
		if u, pw, ok := r.BasicAuth(); !ok || u != TwilioSID || pw != TwilioToken {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"code":20003,"message":"Authenticate","status":401}`)
			return
		}
		p.mu.Lock()
		var fail *failure
		if len(p.fails) > 0 {
			fail, p.fails = &p.fails[0], p.fails[1:]
		}
		p.mu.Unlock()
		if fail != nil {
			if fail.retryAfter != "" {
				w.Header().Set("Retry-After", fail.retryAfter)
			}
			w.WriteHeader(fail.status)
			fmt.Fprintf(w, `{"code":20429,"message":"Too Many Requests","status":%d}`, fail.status)
			return
		}
		r.ParseForm()
		if rest, ok := strings.CutPrefix(path, "/2010-04-01/Accounts/"+TwilioSID+"/Calls/"); ok {
			sid := strings.TrimSuffix(rest, ".json")
			if r.PostForm.Get("Status") != "completed" || sid != TwilioCallSID {
				w.WriteHeader(404)
				fmt.Fprintf(w, `{"code":20404,"message":"The requested resource %s was not found","status":404}`, path)
				return
			}
			p.mu.Lock()
			p.hangs = append(p.hangs, sid)
			p.mu.Unlock()
			fmt.Fprintf(w, `{"sid":%q,"status":"completed"}`, sid)
			return
		}
		if r.PostForm.Get("From") != TwilioNumber || !comm.ValidPhone(r.PostForm.Get("To")) {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`)
			return
		}
		if strings.HasSuffix(path, "/Messages.json") {
			p.record(Sent{Channel: comm.ChannelSMS, To: r.PostForm.Get("To"), Body: r.PostForm.Get("Body")})
			w.WriteHeader(201)
			fmt.Fprint(w, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}`)
			return
		}
		p.record(Sent{Channel: comm.ChannelPhone, To: r.PostForm.Get("To"), Body: r.PostForm.Get("Twiml")})
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"sid":%q,"status":"queued"}`, TwilioCallSID)
	case strings.HasPrefix(path, "/bot"+TelegramToken+"/"):
		method := strings.TrimPrefix(path, "/bot"+TelegramToken+"/")
		var body struct {
			ChatID int64  `json:"chat_id"`
			Text   string `json:"text"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		p.mu.Lock()
		p.calls[method]++
		p.mu.Unlock()
		if method == "sendMessage" {
			p.record(Sent{Channel: comm.ChannelTelegram, To: fmt.Sprint(body.ChatID), Body: body.Text})
			fmt.Fprintf(w, `{"ok":true,"result":{"message_id":77,"chat":{"id":%d,"type":"private"},"date":1767225600}}`, body.ChatID)
			return
		}
		fmt.Fprint(w, `{"ok":true,"result":true}`)
	case path == "/cgi-bin/webhook/send" && r.URL.Query().Get("key") == WeComKey:
		var body struct {
			Markdown struct {
				Content string `json:"content"`
			} `json:"markdown"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		p.record(Sent{Channel: comm.ChannelWeCom, Body: body.Markdown.Content})
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok"}`)
	default:
		w.WriteHeader(404)
		fmt.Fprint(w, `{"ok":false,"error_code":404,"description":"Not Found","errcode":404}`)
	}
}

// Twilio is a client of this server's Twilio.
func (p *Provider) Twilio() *twilio.Client {
	return twilio.New(twilio.Config{AccountSID: TwilioSID, AuthToken: TwilioToken, From: TwilioNumber, BaseURL: p.URL})
}

// Telegram is a client of this server's bot.
func (p *Provider) Telegram() *telegram.Client {
	return telegram.New(telegram.Config{Token: TelegramToken, WebhookSecret: TelegramSecret, BaseURL: p.URL})
}

// WeCom is a client of this server's group robot.
func (p *Provider) WeCom() *wecom.Client {
	return wecom.New(wecom.Config{WebhookKey: WeComKey, BaseURL: p.URL})
}
